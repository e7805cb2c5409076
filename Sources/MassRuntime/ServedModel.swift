public import Foundation
public import MassModels
public import MassRegistry

/// A tensor a served model takes or returns, as KServe's model metadata lists it (-1: any length).
public struct TensorSpec: Sendable, Equatable {
    public let name: String
    public let datatype: String
    public let shape: [Int]

    public init(_ name: String, _ datatype: String, _ shape: [Int]) {
        self.name = name
        self.datatype = datatype
        self.shape = shape
    }
}

/// Who a served model is: its name in the repository and its version.
public struct ServedIdentity: Sendable, Equatable {
    public let name: String
    public let version: Int

    public init(name: String, version: Int) {
        self.name = name
        self.version = version
    }
}

/// One loaded version of a model, whatever its task: what the model manager owns and the routes look up.
/// A route then asks for the task it serves (`as? any TextEmbeddingServing`); the per-task protocols live beside
/// each task's service (`EmbeddingService.swift`, ...).
public protocol ServedModel: AnyObject, Sendable {
    var identity: ServedIdentity { get }
    var task: ModelTask { get }
    var config: ModelConfig { get }
    /// The tensors KServe's metadata route lists (the model owns them: sizes come from its files).
    var inputs: [TensorSpec] { get }
    var outputs: [TensorSpec] { get }
    /// One real inference; the manager reports the model ready only after it.
    func warmUp() async throws
    /// Stops taking requests; accepted ones are still answered.
    func shutdown()
    /// Returns once every accepted request is answered and the workers have exited.
    func waitUntilStopped() async
    /// Why the model cannot answer now although it is loaded (a service-type model whose provider is down);
    /// nil when it can.
    var unreadyReason: String? { get }
}

extension ServedModel {
    public var unreadyReason: String? { nil }
}

/// The one service shell: a served model whose requests go through a `BatchingService`.
public protocol BatchedServedModel: ServedModel {
    associatedtype Batch: BatchModel
    var batcher: BatchingService<Batch> { get }
}

extension BatchedServedModel {
    public var identity: ServedIdentity { batcher.identity }
    public var config: ModelConfig { batcher.config }
    public var statistics: BatchingService<Batch>.Statistics { batcher.statistics }
    public var queueDepth: Int { batcher.queueDepth }
    public func shutdown() { batcher.shutdown() }
    public func waitUntilStopped() async { await batcher.waitUntilStopped() }
}

/// What a task's service is built with.
public struct ServingContext: Sendable {
    public let identity: ServedIdentity
    public let config: ModelConfig
    public let metrics: MetricsRegistry?
    /// Compute threads of each worker (the model manager's CPU budget).
    public let threads: Int
    /// The version's folder (a service-type model's key file is relative to it).
    public let directory: URL?
    /// The server's environment (a service-type model's key variable).
    public let environment: [String: String]
    /// Another model of the server by name (a service-type model's fallbacks).
    public let resolve: (@Sendable (String) throws -> any ServedModel)?
    /// Where calibration pairs go (nil: the server runs without a registry).
    public let pairs: ServicePairStore?

    public init(
        identity: ServedIdentity, config: ModelConfig, metrics: MetricsRegistry?, threads: Int,
        directory: URL? = nil, environment: [String: String] = [:],
        resolve: (@Sendable (String) throws -> any ServedModel)? = nil, pairs: ServicePairStore? = nil
    ) {
        self.pairs = pairs
        self.identity = identity
        self.config = config
        self.metrics = metrics
        self.threads = threads
        self.directory = directory
        self.environment = environment
        self.resolve = resolve
    }
}

/// The tasks the runtime serves: for each, how a loaded model becomes a served one. Adding a task is one service
/// file (its `BatchModel`, service and serving protocol) and one line here.
public struct TaskRegistry: Sendable {
    public struct Entry: Sendable {
        public let task: ModelTask
        public let serve: @Sendable (any TaskModel, ServingContext) throws -> any ServedModel

        public init(
            task: ModelTask, serve: @escaping @Sendable (any TaskModel, ServingContext) throws -> any ServedModel
        ) {
            self.task = task
            self.serve = serve
        }
    }

    public let entries: [ModelTask: Entry]

    public init(_ entries: [Entry]) {
        self.entries = Dictionary(entries.map { ($0.task, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public static let standard = TaskRegistry([
        EmbeddingService.taskEntry,
        TextClassificationService.taskEntry,
        RerankService.taskEntry,
        TranscriptionService.taskEntry,
        ClassificationService.taskEntry,
    ])

    /// The served model for a loaded one; throws when no entry serves the task or the model is of another kind.
    public func serve(_ model: any TaskModel, task: ModelTask, context: ServingContext) throws -> any ServedModel {
        guard let entry = entries[task] else {
            throw RuntimeError(.badConfig, "task '\(task.rawValue)' is not served by this build")
        }
        return try entry.serve(model, context)
    }

    /// The error of an entry handed a model it cannot serve (the architecture registry built another kind).
    public static func mismatch(_ model: any TaskModel, _ task: ModelTask) -> RuntimeError {
        RuntimeError(.badConfig, "a \(type(of: model)) cannot serve task '\(task.rawValue)'")
    }
}
