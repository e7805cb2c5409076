public import Foundation
public import MassTensor

/// What the registry reads of a model folder to pick its architecture: the files it holds and, when it has a
/// `config.json`, the checkpoint's own `model_type` and `architectures` (Hugging Face's keys).
public struct ModelFolder: Sendable {
    public let directory: URL
    public let files: Set<String>
    public let modelType: String?
    public let architectures: [String]

    public init(directory: URL) throws {
        self.directory = directory
        // An unreadable folder holds no files: the architecture's own loader then says what it is missing.
        files = Set((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
        struct Keys: Decodable {
            let model_type: String?
            let architectures: [String]?
        }
        if files.contains("config.json") {
            let keys = try ConfigLoading.decode(Keys.self, at: directory.appendingPathComponent("config.json"))
            modelType = keys.model_type
            architectures = keys.architectures ?? []
        } else {
            modelType = nil
            architectures = []
        }
    }

    public func has(suffix: String) -> Bool { files.contains { $0.hasSuffix(suffix) } }
}

/// The architectures Mass runs, each declared once in its own file (`Bert.swift`, `WhisperTranscriber.swift`,
/// `ImageClassifier.swift`) and listed here: a new architecture is one file and one line.
public struct ArchitectureRegistry: Sendable {
    public struct Entry: Sendable {
        /// The name `mass.json`'s `architecture` key may force, e.g. "bert".
        public let name: String
        public let tasks: Set<ModelTask>
        /// Whether a folder holds this architecture (its `model_type`, its files).
        public let matches: @Sendable (ModelFolder) -> Bool
        /// The precisions its layers can run in (`mass.json`'s `precision`).
        public let precisions: Set<Linear.Precision>
        /// Builds the model for one of `tasks`, its linear layers in one of `precisions`.
        public let load: @Sendable (ModelFolder, ModelTask, Linear.Precision) throws -> any TaskModel

        public init(
            name: String, tasks: Set<ModelTask>, precisions: Set<Linear.Precision> = [.float32],
            matches: @escaping @Sendable (ModelFolder) -> Bool,
            load: @escaping @Sendable (ModelFolder, ModelTask, Linear.Precision) throws -> any TaskModel
        ) {
            self.name = name
            self.tasks = tasks
            self.precisions = precisions
            self.matches = matches
            self.load = load
        }

        /// `load`, after checking that the architecture runs in `precision`.
        func build(_ folder: ModelFolder, _ task: ModelTask, _ precision: Linear.Precision) throws -> any TaskModel {
            guard precisions.contains(precision) else {
                throw ModelError(
                    .unsupported,
                    "architecture '\(name)' runs in \(precisions.map(\.rawValue).sorted().joined(separator: ", ")), not \(precision.rawValue)"
                )
            }
            return try load(folder, task, precision)
        }
    }

    public let entries: [Entry]

    public init(_ entries: [Entry]) { self.entries = entries }

    public static let standard = ArchitectureRegistry([
        BertModel.architecture,
        MPNetModel.architecture,
        WhisperTranscriber.architecture,
        ImageClassifier.architecture,
    ])

    /// Loads the model of `directory` for `task` in `precision`: the entry named `architecture` when given, else
    /// the first entry that serves the task and matches the folder. Errors name what was found and what is
    /// supported.
    public func load(
        _ directory: URL, task: ModelTask, architecture: String? = nil, precision: Linear.Precision = .float32
    ) throws -> any TaskModel {
        let folder = try ModelFolder(directory: directory)
        let candidates = entries.filter { $0.tasks.contains(task) }
        if let architecture {
            guard let entry = entries.first(where: { $0.name == architecture }) else {
                throw ModelError(
                    .unsupported,
                    "architecture '\(architecture)' is unknown (known: \(entries.map(\.name).joined(separator: ", ")))")
            }
            guard entry.tasks.contains(task) else {
                throw ModelError(
                    .unsupported, "architecture '\(architecture)' does not serve task '\(task.rawValue)'")
            }
            return try entry.build(folder, task, precision)
        }
        // One architecture for the task and no model_type to say otherwise: its loader's error (the file it
        // misses) says more than "no match".
        if candidates.count == 1, folder.modelType == nil, !candidates[0].matches(folder) {
            return try candidates[0].build(folder, task, precision)
        }
        guard let entry = candidates.first(where: { $0.matches(folder) }) else {
            let found = folder.modelType.map { "model_type '\($0)'" } ?? "no config.json model_type"
            throw ModelError(
                .unsupported,
                "\(directory.path): no architecture for task '\(task.rawValue)' matches this folder (\(found)); task '\(task.rawValue)' is served by: \(candidates.map(\.name).joined(separator: ", "))"
            )
        }
        return try entry.build(folder, task, precision)
    }
}
