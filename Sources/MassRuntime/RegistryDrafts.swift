public import Foundation
public import MassModels
public import MassRegistry

/// What a model folder is, for registering it: the task (given, or from the folder's or its parent's
/// mass.json), the architecture the server would pick for it, and the weights' format.
public enum RegistryDrafts {
    public static func draft(
        folder: URL, task given: String?, source: VersionSource, parent: Int? = nil, dataset: String? = nil,
        trainingRun: String? = nil, description: String? = nil, tags: [String: String] = [:]
    ) throws -> VersionDraft {
        guard let chosen = given ?? taskFromMassJSON(folder) ?? taskFromFiles(folder) else {
            throw RegistryError(
                .invalid,
                "\(folder.lastPathComponent): give a task (no mass.json with a 'task' in the folder or its parent)")
        }
        guard let task = ModelTask(rawValue: chosen) else {
            throw RegistryError(
                .invalid,
                "unknown task '\(chosen)' (known: \(ModelTask.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        // A service-type model's version is its provider: its source is the provider's URL, its format "remote".
        if let url = remoteURL(folder), source.kind == "folder" {
            return VersionDraft(
                task: task.rawValue, architecture: nil, format: "remote",
                source: VersionSource(kind: "service", uri: url),
                parent: parent, dataset: dataset, trainingRun: trainingRun, description: description, tags: tags)
        }
        let architecture = (try? ModelFolder(directory: folder)).flatMap { f in
            ArchitectureRegistry.standard.entries.first { $0.tasks.contains(task) && $0.matches(f) }?.name
        }
        return VersionDraft(
            task: task.rawValue, architecture: architecture, format: format(folder), source: source, parent: parent,
            dataset: dataset, trainingRun: trainingRun, description: description, tags: tags)
    }

    static func taskFromMassJSON(_ folder: URL) -> String? {
        struct Keys: Decodable { let task: String? }
        for candidate in [folder, folder.deletingLastPathComponent()] {
            if let data = try? Data(contentsOf: candidate.appendingPathComponent("mass.json")),
                let task = (try? JSONDecoder().decode(Keys.self, from: data))?.task
            {
                return task
            }
        }
        return nil
    }

    /// The provider URL of a folder whose own mass.json has a `remote` block.
    static func remoteURL(_ folder: URL) -> String? {
        struct Keys: Decodable {
            struct Remote: Decodable { let url: String? }
            let remote: Remote?
        }
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("mass.json")) else { return nil }
        return (try? JSONDecoder().decode(Keys.self, from: data))?.remote?.url
    }

    /// The task a folder's files imply, for folders without mass.json (a hub repository): sentence-transformers
    /// modules → text-embedding (with a `head.safetensors`: text-classification); a `*ForSequenceClassification` head → text-classification; CTranslate2 Whisper
    /// files → speech-recognition.
    static func taskFromFiles(_ folder: URL) -> String? {
        let files = Set((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
        // A sentence encoder with a trained head (mass train) classifies.
        if files.contains("head.safetensors") { return ModelTask.textClassification.rawValue }
        if files.contains("modules.json") { return ModelTask.textEmbedding.rawValue }
        if files.contains("model.bin") && files.contains(where: { $0.hasPrefix("vocabulary.") }) {
            return ModelTask.speechRecognition.rawValue
        }
        if let folderInfo = try? ModelFolder(directory: folder),
            folderInfo.architectures.contains(where: { $0.hasSuffix("ForSequenceClassification") })
        {
            return ModelTask.textClassification.rawValue
        }
        return nil
    }

    /// The weights' format, from the file names.
    static func format(_ folder: URL) -> String? {
        let files = Set((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
        if files.contains("model.safetensors") { return "safetensors" }
        if files.contains("model.bin") && files.contains("vocabulary.txt") { return "ctranslate2" }
        if files.contains(where: { $0.hasSuffix(".onnx") }) { return "onnx" }
        if files.contains(where: { $0.hasSuffix(".pth") || $0.hasSuffix(".pt") }) { return "pytorch" }
        return nil
    }
}
