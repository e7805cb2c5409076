import Crypto
public import Foundation

/// A content-addressed store of model files: `blobs/sha256/ab/abcdef…` holds each distinct file once, whatever
/// model or version it belongs to. Files enter by `ingest` (hashed while copied, then renamed into place, so a
/// blob is whole or absent) and leave the store only through `collect`. A version's folder, as model loaders
/// expect it, is a tree of symbolic links to its blobs, built after every blob is verified.
public struct ArtifactStore: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    /// The path of the blob with this sha256.
    public func blob(_ sha256: String) -> URL {
        root.appendingPathComponent("blobs/sha256").appendingPathComponent(String(sha256.prefix(2)))
            .appendingPathComponent(sha256)
    }

    /// Copies every regular file under `folder` (dot-files skipped, symbolic links followed) into the store and
    /// answers what it holds, sorted by path. Files already stored are hashed but not copied again.
    public func ingest(folder: URL) throws -> [VersionFile] {
        let base = folder.resolvingSymlinksInPath().standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: base.path, isDirectory: &isDirectory), isDirectory.boolValue
        else { throw RegistryError(.invalid, "\(folder.path) is not a folder") }
        var files: [VersionFile] = []
        for relative in try Self.listFiles(base) {
            files.append(try ingest(file: base.appendingPathComponent(relative), as: relative))
        }
        guard !files.isEmpty else { throw RegistryError(.invalid, "\(folder.path) holds no files") }
        return files.sorted { $0.path < $1.path }
    }

    /// Copies one file into the store under its hash.
    public func ingest(file: URL, as path: String) throws -> VersionFile {
        let incoming = root.appendingPathComponent("incoming")
        try FileManager.default.createDirectory(at: incoming, withIntermediateDirectories: true)
        let temporary = incoming.appendingPathComponent(UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: temporary) }
        guard let input = InputStream(url: file) else {
            throw RegistryError(.invalid, "cannot read \(path)")
        }
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
            let output = FileHandle(forWritingAtPath: temporary.path)
        else { throw RegistryError(.unavailable, "cannot write to the artifact store") }
        let (digest, size) = try Self.hash(input, copyingTo: output, name: path)
        try output.close()
        let target = blob(digest)
        if FileManager.default.fileExists(atPath: target.path) {
            // Fresh again: `collect` leaves recent blobs alone, and this one is about to be referenced.
            try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: target.path)
        } else {
            try FileManager.default.createDirectory(
                at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            // rename(2) is atomic: a reader sees the whole blob or none. Losing a race to the same content is fine.
            if rename(temporary.path, target.path) != 0 && !FileManager.default.fileExists(atPath: target.path) {
                throw RegistryError(.unavailable, "cannot store \(path) in the artifact store (errno \(errno))")
            }
        }
        return VersionFile(path: path, sha256: digest, size: size)
    }

    /// Re-hashes every blob of a version and throws `.integrity` naming the first file that is missing, of the
    /// wrong size, or hashes differently from what was registered.
    public func verify(_ files: [VersionFile], model: String, version: Int) throws {
        for file in files {
            let url = blob(file.sha256)
            guard let input = InputStream(url: url), FileManager.default.fileExists(atPath: url.path) else {
                throw RegistryError(
                    .integrity,
                    "\(model) version \(version): '\(file.path)' (sha256 \(file.sha256)) is missing from the store")
            }
            let (digest, size) = try Self.hash(input, copyingTo: nil, name: file.path)
            guard digest == file.sha256, size == file.size else {
                throw RegistryError(
                    .integrity,
                    "\(model) version \(version): '\(file.path)' is altered: registered sha256 \(file.sha256) (\(file.size) bytes), stored file hashes to \(digest) (\(size) bytes)"
                )
            }
        }
    }

    /// Builds (or rebuilds) the folder of a version: `trees/<model>/<version>/<path>` linking to each blob.
    public func materialize(_ files: [VersionFile], model: String, version: Int) throws -> URL {
        let tree = root.appendingPathComponent("trees").appendingPathComponent(model)
            .appendingPathComponent(String(version))
        let staging = tree.deletingLastPathComponent().appendingPathComponent(".\(version)-\(UUID().uuidString)")
        let fm = FileManager.default
        try fm.createDirectory(at: staging, withIntermediateDirectories: true)
        for file in files {
            let link = staging.appendingPathComponent(file.path)
            try fm.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
            try fm.createSymbolicLink(at: link, withDestinationURL: blob(file.sha256))
        }
        try? fm.removeItem(at: tree)
        try fm.moveItem(at: staging, to: tree)
        return tree
    }

    /// Deletes blobs no version refers to (`keep`: every sha256 still registered) that are older than
    /// `minimumAge` (a registration in progress has stored its blobs but not yet committed the version that
    /// names them), and the trees of versions that are gone. Answers the bytes freed.
    @discardableResult
    public func collect(keep: Set<String>, trees: Set<String>, minimumAge: TimeInterval = 600) throws -> Int {
        let fm = FileManager.default
        var freed = 0
        let blobs = root.appendingPathComponent("blobs/sha256")
        for prefix in (try? fm.contentsOfDirectory(atPath: blobs.path)) ?? [] {
            let folder = blobs.appendingPathComponent(prefix)
            for name in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? [] where !keep.contains(name) {
                let url = folder.appendingPathComponent(name)
                let attributes = (try? fm.attributesOfItem(atPath: url.path)) ?? [:]
                let modified = attributes[.modificationDate] as? Date ?? .distantPast
                guard Date().timeIntervalSince(modified) >= minimumAge else { continue }
                freed += attributes[.size] as? Int ?? 0
                try fm.removeItem(at: url)
            }
        }
        let treeRoot = root.appendingPathComponent("trees")
        for model in (try? fm.contentsOfDirectory(atPath: treeRoot.path)) ?? [] {
            for version in (try? fm.contentsOfDirectory(atPath: treeRoot.appendingPathComponent(model).path)) ?? []
            where !trees.contains("\(model)/\(version)") {
                try fm.removeItem(at: treeRoot.appendingPathComponent(model).appendingPathComponent(version))
            }
        }
        return freed
    }

    static func listFiles(_ base: URL) throws -> [String] {
        let fm = FileManager.default
        var out: [String] = []
        func walk(_ relative: String) throws {
            let url = relative.isEmpty ? base : base.appendingPathComponent(relative)
            for name in try fm.contentsOfDirectory(atPath: url.path).sorted() where !name.hasPrefix(".") {
                let path = relative.isEmpty ? name : relative + "/" + name
                var isDirectory: ObjCBool = false
                guard fm.fileExists(atPath: base.appendingPathComponent(path).path, isDirectory: &isDirectory)
                else { continue }
                if isDirectory.boolValue { try walk(path) } else { out.append(path) }
            }
        }
        try walk("")
        return out
    }

    /// The sha256 (lowercase hex) of bytes in memory.
    public static func sha256(of data: Data) throws -> String {
        try hash(InputStream(data: data), copyingTo: nil, name: "data").0
    }

    /// The sha256 (lowercase hex) and size of a file, read in 1 MiB chunks.
    public static func sha256(of file: URL) throws -> (sha256: String, size: Int) {
        guard let input = InputStream(url: file) else {
            throw RegistryError(.invalid, "cannot read \(file.lastPathComponent)")
        }
        return try hash(input, copyingTo: nil, name: file.lastPathComponent)
    }

    private static func hash(_ input: InputStream, copyingTo output: FileHandle?, name: String) throws -> (
        String, Int
    ) {
        input.open()
        defer { input.close() }
        var hasher = SHA256()
        var size = 0
        let chunk = 1 << 20
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { buffer.deallocate() }
        while true {
            let n = input.read(buffer, maxLength: chunk)
            if n < 0 { throw RegistryError(.invalid, "cannot read \(name)") }
            if n == 0 { break }
            let bytes = UnsafeRawBufferPointer(start: buffer, count: n)
            hasher.update(bufferPointer: bytes)
            try output?.write(contentsOf: bytes)
            size += n
        }
        return (Hex.string(hasher.finalize()), size)
    }
}
