public import Foundation
public import Logging
public import MassModels
public import MassRegistry
import MassTensor
public import ServiceLifecycle
import Synchronization

/// Owns the life of every model a server hosts: loading (the architecture registry builds the model, the task
/// registry serves it), warm-up, versions, reload, unload and the memory given back, and the CPU budget.
/// Run it in the server's `ServiceGroup`: on graceful shutdown it stops every model after the services started
/// after it (the HTTP server) have stopped, and returns once their accepted requests are answered.
///
/// Errors are `RuntimeError`s whose messages name files relative to the repository, never the server's absolute
/// paths (the log, at debug, keeps the detail).
///
/// CPU budget: every worker gets `cores / instance_count` compute threads (at least one). Models share the cores
/// by time: a worker's compute helpers spin only between the loops of a batch and sleep as soon as its queue is
/// empty (`BatchModel.rest`), so idle models cost nothing and three models on two cores do not run three pools
/// of spinning helpers.
public final class ModelManager: Service, Sendable {
    /// A model's state as the repository index reports it.
    public enum Slot: Sendable {
        case loading
        case ready([any ServedModel])  // ascending versions
        case unloaded
        case failed(String)
    }

    public let repository: ModelRepository
    public let architectures: ArchitectureRegistry
    public let tasks: TaskRegistry
    public let metrics: MetricsRegistry
    public let cores: Int
    /// The model registry whose deployments this server also serves (nil: the folder repository only).
    public let registry: ModelRegistry?
    /// How often the registry is polled for changes made elsewhere (another server, the CLI).
    public let registryPollInterval: Duration
    /// The server's environment: service-type models read their API key variables from it.
    let environment: [String: String]
    /// Calibration pairs, in the registry's database.
    public let pairStore: ServicePairStore?
    let logger: Logger
    let slots = Mutex<[String: Slot]>([:])
    /// Names with a load or unload in progress (one at a time per model).
    private let busy = Mutex<Set<String>>([])
    /// Registry models: their deployment and routing, by name.
    let deployed = Mutex<[String: DeployedModel]>([:])
    /// One registry sync at a time (the poll and admin changes), so the last to run applies the newest state.
    let syncing = AsyncLock()
    /// Registry state: the change counter last applied, and the error if the registry cannot be read.
    let registryState = Mutex<(counter: Int?, problem: String?, unloaded: Set<String>)>((nil, nil, []))

    public init(
        repository: ModelRepository, architectures: ArchitectureRegistry = .standard, tasks: TaskRegistry = .standard,
        metrics: MetricsRegistry = MetricsRegistry(), logger: Logger = Logger(label: "mass.models"),
        cores: Int = ProcessInfo.processInfo.activeProcessorCount, registry: ModelRegistry? = nil,
        registryPollInterval: Duration = .seconds(1), environment: [String: String] = [:]
    ) {
        self.environment = environment
        pairStore = registry.map { ServicePairStore(database: $0.database) }
        self.registry = registry
        self.registryPollInterval = registryPollInterval
        self.repository = repository
        self.architectures = architectures
        self.tasks = tasks
        self.metrics = metrics
        self.logger = logger
        self.cores = max(1, cores)
    }

    /// Loads and warms up every model of the repository; the first that fails stops the start-up with its error.
    public func loadAll() async throws {
        for name in try repository.modelNames() {
            let entry = try sanitized { try repository.entry(name) }
            slots.withLock { $0[name] = .loading }
            do {
                let versions = try await start(entry)
                slots.withLock { $0[name] = .ready(versions) }
            } catch {
                slots.withLock { $0[name] = .failed(String(describing: error)) }
                throw error
            }
        }
        try await loadRegistry()
        publishLoadedCount()
    }

    /// Polls the registry (when there is one) until the service group's graceful shutdown, then stops every
    /// model and returns once they drained.
    public func run() async throws {
        if registry != nil {
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.registryPollInterval)
                    if Task.isCancelled { break }
                    await self.pollRegistry()
                }
            }
        }
        try? await gracefulShutdown()
        await stopAll()
    }

    /// Stops every model: accepted requests are still answered.
    public func stopAll() async {
        let all = slots.withLock { s -> [any ServedModel] in
            s.values.flatMap { slot -> [any ServedModel] in if case .ready(let v) = slot { v } else { [] } }
        }
        for model in all { model.shutdown() }
        for model in all { await model.waitUntilStopped() }
    }

    /// Compute threads for each worker of a model.
    func threads(for config: ModelConfig) -> Int { max(1, cores / max(1, config.instanceCount)) }

    /// Builds and warms up a served model for each version the policy selects (loading runs off the
    /// cooperative pool). On failure the versions built so far are stopped.
    private func start(_ entry: ModelRepository.Entry) async throws -> [any ServedModel] {
        var served: [any ServedModel] = []
        do {
            for version in entry.servedVersions {
                served.append(
                    try await startVersion(
                        name: entry.name, version: version, directory: entry.versionDirectory(version),
                        config: entry.config))
            }
        } catch {
            for model in served { model.shutdown() }
            throw error
        }
        return served
    }

    /// Builds, serves and warms up one version of a model.
    func startVersion(name: String, version: Int, directory: URL, config: ModelConfig) async throws
        -> any ServedModel
    {
        let architectures = self.architectures
        let started = ContinuousClock.now
        let context = ServingContext(
            identity: ServedIdentity(name: name, version: version), config: config, metrics: metrics,
            threads: threads(for: config), directory: directory, environment: environment,
            resolve: { [weak self] other in
                guard let self else { throw RuntimeError(.modelUnavailable, "the server is stopping") }
                return try self.model(other)
            }, pairs: pairStore)
        let servedModel: any ServedModel
        if let remote = config.remote {
            servedModel = try sanitized { try RemoteModels.serve(remote, context: context) }
        } else {
            let model = try await sanitized {
                try await OffPool.run {
                    try architectures.load(
                        directory, task: config.task, architecture: config.architecture, precision: config.precision)
                }
            }
            servedModel = try sanitized { try tasks.serve(model, task: config.task, context: context) }
        }
        do {
            try await sanitized { try await servedModel.warmUp() }
        } catch {
            servedModel.shutdown()
            throw error
        }
        logger.debug(
            "model loaded",
            metadata: [
                "model": "\(name)", "version": "\(version)", "task": "\(config.task.rawValue)",
                "seconds": "\(ContinuousClock.now - started)",
            ])
        return servedModel
    }

    /// Runs `body`, turning its errors into `RuntimeError`s without the repository's absolute path; the log keeps
    /// the original.
    func sanitized<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw clean(error)
        }
    }

    private func sanitized<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw clean(error)
        }
    }

    private func clean(_ error: any Error) -> RuntimeError {
        let root = repository.root.standardizedFileURL.path
        let trees = registry.map { $0.store.root.appendingPathComponent("trees").standardizedFileURL.path }
        func relative(_ text: String) -> String {
            var text = text
            if let trees { text = text.replacingOccurrences(of: trees + "/", with: "registry:") }
            return text.replacingOccurrences(of: root + "/", with: "").replacingOccurrences(
                of: root, with: "<repository>")
        }
        logger.debug("model error", metadata: ["error": "\(error)"])
        if var e = error as? RuntimeError {
            e.detail = e.detail ?? (relative(e.message) == e.message ? nil : e.message)
            e.message = relative(e.message)
            return e
        }
        return RuntimeError(.loadFailed, relative(String(describing: error)), detail: String(describing: error))
    }

    // MARK: Lookup

    public func slot(_ name: String) -> Slot? { slots.withLock { $0[name] } }

    /// Every model with its state, sorted by name.
    public var allSlots: [(String, Slot)] { slots.withLock { $0.sorted { $0.key < $1.key } } }

    public var readyNames: [String] {
        allSlots.compactMap { name, slot in if case .ready = slot { return name } else { return nil } }
    }

    /// Ready when no model is loading and none failed to load (unloaded ones were unloaded on purpose).
    public var isReady: Bool {
        allSlots.allSatisfy { _, slot in
            switch slot {
            case .loading, .failed: false
            case .ready, .unloaded: true
            }
        }
    }

    /// The loaded versions of a model, ascending.
    public func versions(_ name: String) throws -> [any ServedModel] {
        switch slot(name) {
        case .ready(let versions): return versions
        case nil: throw RuntimeError(.modelNotFound, "unknown model '\(name)'", param: "model")
        case .loading: throw RuntimeError(.modelLoading, "model '\(name)' is loading")
        case .unloaded: throw RuntimeError(.modelUnavailable, "model '\(name)' is not loaded", param: "model")
        case .failed(let reason):
            throw RuntimeError(.modelUnavailable, "model '\(name)' is not available: \(reason)", param: "model")
        }
    }

    /// A loaded version of a model: the given one, or the latest when `version` is nil.
    public func model(_ name: String, version: String? = nil) throws -> any ServedModel {
        let chosen = try pick(name, version: version)
        RequestRouting.current?.record(chosen.identity)
        return chosen
    }

    private func pick(_ name: String, version: String?) throws -> any ServedModel {
        let versions = try versions(name)
        if version == nil, let routed = deployed.withLock({ $0[name] })?.route(RequestRouting.current?.header) {
            return routed
        }
        guard let version else {
            guard let latest = versions.last else {
                throw RuntimeError(.modelUnavailable, "model '\(name)' has no loaded version")
            }
            return latest
        }
        guard let found = versions.first(where: { String($0.identity.version) == version }) else {
            throw RuntimeError(.versionNotFound, "model '\(name)' has no loaded version '\(version)'")
        }
        return found
    }

    /// A loaded model as the task protocol a route serves (e.g. `any TextEmbeddingServing`); `.wrongTask` when
    /// the model serves another task.
    public func model<Serving>(
        _ name: String, version: String? = nil, as _: Serving.Type, serving wanted: ModelTask
    ) throws -> Serving {
        let found = try model(name, version: version)
        guard let typed = found as? Serving else {
            throw RuntimeError(
                .wrongTask,
                "model '\(name)' serves task '\(found.task.rawValue)'; this route serves \(wanted.rawValue) models",
                param: "model")
        }
        return typed
    }

    // MARK: Repository extension

    /// (Re)loads a model from the repository: a new mass.json and new version folders take effect. The old
    /// versions keep serving until the new ones are warmed up, then drain.
    public func load(_ name: String) async throws {
        if try await loadRegistryModel(name) { return }
        try claim(name)
        defer { release(name) }
        let entry: ModelRepository.Entry
        do {
            entry = try sanitized { try repository.entry(name) }
        } catch let error as RuntimeError where error.code == .badConfig {
            throw RuntimeError(.loadFailed, "failed to load '\(name)': \(error.message)", detail: error.detail)
        }
        let previous = slots.withLock { s -> Slot? in
            let old = s[name]
            if case .ready = old {} else { s[name] = .loading }
            return old
        }
        do {
            let versions = try await start(entry)
            slots.withLock { $0[name] = .ready(versions) }
        } catch let error as RuntimeError {
            slots.withLock { s in
                if case .ready = previous { s[name] = previous } else { s[name] = .failed(error.message) }
            }
            publishLoadedCount()
            throw RuntimeError(.loadFailed, "failed to load '\(name)': \(error.message)", detail: error.detail)
        }
        if case .ready(let old) = previous { await Self.stop(old) }
        publishLoadedCount()
    }

    /// Unloads a model: new requests get 404 at once, accepted ones are answered, then its memory is returned.
    public func unload(_ name: String) async throws {
        if try await unloadRegistryModel(name) { return }
        try claim(name)
        defer { release(name) }
        let previous = slots.withLock { s -> Slot? in
            let old = s[name]
            if old != nil { s[name] = .unloaded }
            return old
        }
        guard let previous else {
            _ = try sanitized { try repository.entry(name) }
            slots.withLock { $0[name] = .unloaded }
            return
        }
        if case .ready(let old) = previous { await Self.stop(old) }
        publishLoadedCount()
    }

    static func stop(_ versions: [any ServedModel]) async {
        for model in versions { model.shutdown() }
        for model in versions { await model.waitUntilStopped() }
        // The weights and workspaces are freed once the last request releases its reference; hand the
        // allocator's free pages back to the system so that the process's RSS drops.
        Task.detached {
            try? await Task.sleep(for: .milliseconds(50))
            Memory.releaseFreePages()
        }
    }

    func claim(_ name: String) throws {
        let claimed = busy.withLock { $0.insert(name).inserted }
        guard claimed else {
            throw RuntimeError(.conflict, "model '\(name)' is already being loaded or unloaded")
        }
    }

    func release(_ name: String) { _ = busy.withLock { $0.remove(name) } }

    func publishLoadedCount() {
        metrics.set("mass_models_loaded", Double(readyNames.count), help: "Models loaded and ready.")
    }
}
