import Foundation

/// A model repository on disk: `<root>/<name>/mass.json` plus numbered version folders (`1/`, `2/`, ...)
/// holding the artifact files as their authors ship them.
public struct ModelRepository: Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let config: ModelConfig
        /// Every numbered version folder found, ascending.
        public let availableVersions: [Int]
        /// The versions the version policy selects, ascending.
        public let servedVersions: [Int]
        public let directory: URL

        public func versionDirectory(_ version: Int) -> URL {
            directory.appendingPathComponent(String(version))
        }
    }

    public let root: URL

    public init(root: URL) {
        self.root = root
    }

    /// Model names: folders of the root that hold a mass.json, sorted.
    public func modelNames() throws -> [String] {
        let items: [String]
        do {
            items = try FileManager.default.contentsOfDirectory(atPath: root.path)
        } catch {
            throw RuntimeError(
                .badConfig, "model repository \(root.path) cannot be read: \(error.localizedDescription)")
        }
        return items.filter {
            FileManager.default.fileExists(
                atPath: root.appendingPathComponent($0).appendingPathComponent("mass.json").path)
        }.sorted()
    }

    /// Reads one model's configuration and versions.
    public func entry(_ name: String) throws -> Entry {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw RuntimeError(.modelNotFound, "'\(name)' is not a model name")
        }
        let directory = root.appendingPathComponent(name)
        let configURL = directory.appendingPathComponent("mass.json")
        guard let data = FileManager.default.contents(atPath: configURL.path) else {
            throw RuntimeError(
                .modelNotFound, "no model '\(name)' in the repository", detail: "no \(configURL.path)", param: "model")
        }
        let config = try ModelConfig.parse(data, file: "\(name)/mass.json")
        var versions = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .compactMap { item -> Int? in
                guard let v = Int(item), v >= 1, String(v) == item else { return nil }
                var isDirectory: ObjCBool = false
                let exists = FileManager.default.fileExists(
                    atPath: directory.appendingPathComponent(item).path, isDirectory: &isDirectory)
                return exists && isDirectory.boolValue ? v : nil
            }.sorted()
        // A service-type model has no files to hold: without version folders it is version 1.
        if versions.isEmpty, config.remote != nil { versions = [1] }
        let served: [Int]
        switch config.versionPolicy {
        case .all: served = versions
        case .latest(let n): served = Array(versions.suffix(n))
        case .specific(let wanted):
            let missing = wanted.filter { !versions.contains($0) }
            guard missing.isEmpty else {
                throw RuntimeError(
                    .badConfig,
                    "\(configURL.path): 'version_policy.specific' names version(s) \(missing.map(String.init).joined(separator: ", ")) but \(directory.path) has \(versions.isEmpty ? "no version folders" : versions.map(String.init).joined(separator: ", "))"
                )
            }
            served = wanted
        }
        guard !served.isEmpty else {
            throw RuntimeError(
                .badConfig, "\(directory.path) has no numbered version folder (e.g. \(directory.path)/1)")
        }
        return Entry(
            name: name, config: config, availableVersions: versions, servedVersions: served, directory: directory)
    }
}
