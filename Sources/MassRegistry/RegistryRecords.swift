/// Where a version's files came from.
public struct VersionSource: Codable, Sendable, Equatable {
    /// `folder`, `wheel`, `hub` or `training`.
    public var kind: String
    /// The folder path, wheel name, hub repository or training run that produced the files.
    public var uri: String
    /// The hub revision (commit) or wheel version, when there is one.
    public var revision: String?

    public init(kind: String, uri: String, revision: String? = nil) {
        self.kind = kind
        self.uri = uri
        self.revision = revision
    }
}

/// One file of a version: its path inside the model folder, its sha256 and size.
public struct VersionFile: Codable, Sendable, Equatable {
    public var path: String
    public var sha256: String
    public var size: Int

    public init(path: String, sha256: String, size: Int) {
        self.path = path
        self.sha256 = sha256
        self.size = size
    }
}

/// A registered model: a name, its task, and its numbered versions.
public struct RegisteredModel: Codable, Sendable, Equatable {
    public var name: String
    public var task: String
    public var description: String?
    /// Milliseconds since 1970.
    public var createdAt: Int
    public var versions: [ModelVersion]
    /// Alias → version.
    public var aliases: [String: Int]
    /// The model's own tags (version tags are on each version).
    public var tags: [String: String]

    public func version(_ number: Int) -> ModelVersion? { versions.first { $0.version == number } }
}

/// An immutable version of a model: what it is, where it came from, its files.
public struct ModelVersion: Codable, Sendable, Equatable {
    public var model: String
    public var version: Int
    public var task: String
    public var architecture: String?
    /// `safetensors`, `ctranslate2`, `pytorch`, ... (the weights' file format).
    public var format: String?
    public var source: VersionSource
    /// The version this one was derived from (fine-tuned, compressed, distilled).
    public var parent: Int?
    public var dataset: String?
    public var trainingRun: String?
    public var description: String?
    public var createdAt: Int
    public var createdBy: String
    public var files: [VersionFile]
    public var tags: [String: String]
    /// Metrics attached after registration (accuracy, latency, agreement): the latest value of each.
    public var metrics: [String: Double]

    public var size: Int { files.reduce(0) { $0 + $1.size } }
}

/// One entry of a model's append-only history.
public struct RegistryEvent: Codable, Sendable, Equatable {
    public var id: Int
    public var model: String
    /// Milliseconds since 1970.
    public var at: Int
    public var actor: String
    /// `registered`, `alias_set`, `alias_deleted`, `tagged`, `promoted`, `rolled_back`, `metric`,
    /// `version_deleted`, `model_deleted`.
    public var kind: String
    public var version: Int?
    public var alias: String?
    /// For alias moves: the version the alias pointed to before (nil: it did not exist).
    public var fromVersion: Int?
    public var reason: String?
}

/// What `register` needs besides the files.
public struct VersionDraft: Sendable {
    public var task: String
    public var architecture: String?
    public var format: String?
    public var source: VersionSource
    public var parent: Int?
    public var dataset: String?
    public var trainingRun: String?
    public var description: String?
    public var tags: [String: String]

    public init(
        task: String, architecture: String? = nil, format: String? = nil, source: VersionSource,
        parent: Int? = nil, dataset: String? = nil, trainingRun: String? = nil, description: String? = nil,
        tags: [String: String] = [:]
    ) {
        self.task = task
        self.architecture = architecture
        self.format = format
        self.source = source
        self.parent = parent
        self.dataset = dataset
        self.trainingRun = trainingRun
        self.description = description
        self.tags = tags
    }
}
