public import Foundation
import Logging
public import MassModels
public import MassRegistry
import Synchronization

/// What the request being served carries through the runtime, set by the server around each request: its
/// headers (for sticky routing); the version the manager chose, which the server reads back as the response's
/// label; the charge for the work it queues (tokens, images, audio seconds: known exactly once the input is
/// tokenized or decoded, before compute), which may refuse it; and the time it waited and was computed.
public final class RequestRouting: Sendable {
    @TaskLocal public static var current: RequestRouting?

    public let header: @Sendable (String) -> String?
    /// Called with a usage kind and amount before the work is queued; throws to refuse the request.
    let charge: @Sendable (String, Double) throws -> Void
    /// The request's flow in each model's fair queue (its tenant, weight and class).
    public let flow: SchedulingFlow
    private let state = Mutex<(served: ServedIdentity?, queue: Double, compute: Double)>((nil, 0, 0))

    public init(
        header: @escaping @Sendable (String) -> String?,
        charge: @escaping @Sendable (String, Double) throws -> Void = { _, _ in }, flow: SchedulingFlow = .anonymous
    ) {
        self.header = header
        self.charge = charge
        self.flow = flow
    }

    /// The version that served the request.
    public var servedBy: ServedIdentity? { state.withLock { $0.served } }
    func record(_ identity: ServedIdentity) { state.withLock { $0.served = identity } }

    /// Seconds the request's work waited in queues and was computed (summed over its model calls).
    public var timing: (queue: Double, compute: Double) { state.withLock { ($0.queue, $0.compute) } }
    func add(queue: Double = 0, compute: Double = 0) {
        state.withLock {
            $0.queue += queue
            $0.compute += compute
        }
    }
}

/// A registry model as this server serves it: its resolved deployment, the loaded versions it needs, and the
/// weighted routes over them. Replaced whole when the deployment changes, so a request sees one plan or the
/// next, never a mix.
struct DeployedModel: Sendable {
    let plan: ResolvedDeployment
    let versions: [Int: any ServedModel]
    /// The shadow's mirror, when the deployment has one (kept across changes that leave the shadow alone).
    let mirror: ShadowMirror?
    private let routes: [(model: any ServedModel, upTo: Double)]
    private let total: Double

    init(plan: ResolvedDeployment, versions: [Int: any ServedModel], mirror: ShadowMirror?) {
        self.plan = plan
        self.versions = versions
        self.mirror = mirror
        var running = 0.0
        var routes: [(any ServedModel, Double)] = []
        for route in plan.routes where route.weight > 0 {
            guard let model = versions[route.version] else { continue }
            running += route.weight
            // A route to the shadow's own version is not mirrored to itself.
            let served =
                mirror.map { route.version == $0.shadowVersion ? model : ShadowServing.wrap(model, $0) } ?? model
            routes.append((served, running))
        }
        self.routes = routes
        total = running
    }

    /// A route by weight: by the sticky header's value when the deployment names one and the request has it
    /// (the same key lands on the same route while the weights stand), else at random.
    func route(_ header: ((String) -> String?)?) -> (any ServedModel)? {
        guard let last = routes.last else { return nil }
        guard routes.count > 1 else { return last.model }
        let point: Double
        if let name = plan.stickyHeader, let key = header?(name), !key.isEmpty {
            point = Double(Self.fnv1a(key) % 1_000_000) / 1_000_000 * total
        } else {
            point = Double.random(in: 0..<total)
        }
        return routes.first { point < $0.upTo }?.model ?? last.model
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}

extension ModelManager {
    /// How the registry looks from this server: nil when it was read at the last poll, else why not (the
    /// server keeps serving what it has loaded and reports itself degraded).
    public var registryProblem: String? { registryState.withLock { $0.problem } }

    /// The shadow report of a registry model's deployment (nil: it has no shadow on this server).
    public func shadowReport(_ name: String) -> ShadowReport? {
        guard let deployed = deployed.withLock({ $0[name] }), let mirror = deployed.mirror else { return nil }
        return mirror.report(primary: Array(Set(deployed.plan.routes.map(\.version))).sorted())
    }

    /// The resolved deployment of a registry model this server serves.
    public func deployment(_ name: String) -> ResolvedDeployment? { deployed.withLock { $0[name]?.plan } }

    /// Loads every registry model's deployment at start-up. A name that is also a folder of the repository is
    /// refused: one name, one source.
    func loadRegistry() async throws {
        guard let registry else { return }
        let counter = try await registry.changeCounter()
        let plans = try await registry.resolvedDeployments()
        let folders = Set(try repository.modelNames())
        if let clash = plans.first(where: { folders.contains($0.model) }) {
            throw RuntimeError(
                .badConfig,
                "model '\(clash.model)' is both a folder of the repository and a registered model; rename one")
        }
        for plan in plans {
            slots.withLock { $0[plan.model] = .loading }
            do {
                try await apply(plan)
            } catch {
                slots.withLock { $0[plan.model] = .failed(String(describing: error)) }
                throw error
            }
        }
        registryState.withLock { $0.counter = counter }
    }

    /// One poll: when the registry changed since the last one, every registry model is brought to its
    /// deployment. A model whose new versions fail to load (an altered file, a bad config) keeps serving its
    /// old plan; the failure is logged and the next change retries.
    func pollRegistry() async {
        guard let registry else { return }
        do {
            let counter = try await registry.changeCounter()
            let last = registryState.withLock { s -> Int? in
                s.problem = nil
                return s.counter
            }
            guard counter != last else { return }
            try await syncRegistry()
            registryState.withLock { $0.counter = counter }
        } catch {
            let message = (error as? RegistryError)?.message ?? String(describing: error)
            registryState.withLock { $0.problem = message }
            metrics.set("mass_registry_up", 0, help: "1 when the registry was read at the last poll.")
            logger.debug("registry unreachable; serving what is loaded", metadata: ["error": "\(error)"])
            return
        }
        metrics.set("mass_registry_up", 1, help: "1 when the registry was read at the last poll.")
    }

    /// Brings every registry model to its deployment now (after an admin change; the poll does the same).
    /// Answers the models whose deployment could not be applied, with why (they keep their previous one).
    @discardableResult
    public func syncRegistry() async throws -> [String: any Error] {
        guard registry != nil else { return [:] }
        return try await syncing.withLock { try await self.syncRegistryNow() }
    }

    private func syncRegistryNow() async throws -> [String: any Error] {
        guard let registry else { return [:] }
        let plans = try await registry.resolvedDeployments()
        let unloaded = registryState.withLock { $0.unloaded }
        var failures: [String: any Error] = [:]
        for plan in plans where !unloaded.contains(plan.model) {
            do {
                try await apply(plan)
            } catch {
                failures[plan.model] = error
                registryState.withLock { $0.problem = "\(plan.model): \(error)" }
                metrics.add(
                    "mass_deployment_failures_total", labels: [("model", plan.model)],
                    help: "Deployments that could not be applied (the previous one kept serving).")
                logger.debug(
                    "deployment not applied; the previous one keeps serving",
                    metadata: ["model": "\(plan.model)", "error": "\(error)"])
            }
        }
        // Models gone from the registry (deleted) stop serving.
        let current = Set(plans.map(\.model))
        let gone = deployed.withLock { d in d.keys.filter { !current.contains($0) } }
        for name in gone { _ = try? await unloadRegistryModel(name, remember: false) }
        publishLoadedCount()
        return failures
    }

    /// Loads what `plan` needs that is not loaded (verifying every file), then swaps the routing in one step
    /// and stops the versions the plan no longer uses once their accepted requests are answered.
    func apply(_ plan: ResolvedDeployment, force: Bool = false) async throws {
        guard let registry else { return }
        let name = plan.model
        let current = deployed.withLock { $0[name] }
        if !force, let current, current.plan == plan { return }
        try claim(name)
        defer { release(name) }
        guard let task = ModelTask(rawValue: plan.task) else {
            throw RuntimeError(.badConfig, "registered model '\(name)' has task '\(plan.task)', unknown to this server")
        }
        var versions: [Int: any ServedModel] =
            force ? [:] : current?.versions.filter { plan.versions.contains($0.key) } ?? [:]
        var started: [any ServedModel] = []
        do {
            for version in plan.versions.sorted() where versions[version] == nil {
                // An altered or missing file is a RegistryError naming it (.integrity).
                let folder = try await registry.folder(name, version)
                let config = try Self.config(in: folder, task: task, name: name, version: version)
                let model = try await startVersion(name: name, version: version, directory: folder, config: config)
                started.append(model)
                versions[version] = model
            }
        } catch {
            for model in started { model.shutdown() }
            throw error
        }
        var mirror: ShadowMirror? = nil
        if let shadow = plan.shadow, let model = versions[shadow.version] {
            if let kept = current?.mirror, kept.shadowVersion == shadow.version, kept.sample == shadow.sample,
                kept.shadow === model
            {
                mirror = kept
            } else {
                mirror = ShadowMirror(model: name, shadow: model, sample: shadow.sample, metrics: metrics)
            }
        }
        let next = DeployedModel(plan: plan, versions: versions, mirror: mirror)
        let kept = Set(versions.values.map { ObjectIdentifier($0 as AnyObject) })
        let stale = (current.map { Array($0.versions.values) } ?? []).filter {
            !kept.contains(ObjectIdentifier($0 as AnyObject))
        }
        slots.withLock { s in
            deployed.withLock { $0[name] = next }
            s[name] = .ready(versions.keys.sorted().compactMap { versions[$0] })
        }
        logger.debug("deployment applied", metadata: ["model": "\(name)", "versions": "\(versions.keys.sorted())"])
        if !stale.isEmpty {
            // A request that looked its version up just before the swap still reaches it: stop after a grace.
            let old = stale
            Task {
                try? await Task.sleep(for: .seconds(1))
                await Self.stop(old)
            }
        }
    }

    /// The serving configuration of a registry version: its own mass.json when it has one (the task must
    /// agree with the registry's), else the task's defaults.
    static func config(in folder: URL, task: ModelTask, name: String, version: Int) throws -> ModelConfig {
        let file = folder.appendingPathComponent("mass.json")
        guard let data = FileManager.default.contents(atPath: file.path) else { return ModelConfig(task: task) }
        let config = try ModelConfig.parse(data, file: "registry:\(name)/\(version)/mass.json")
        guard config.task == task else {
            throw RuntimeError(
                .badConfig,
                "registry:\(name)/\(version)/mass.json says task '\(config.task.rawValue)'; the registry says '\(task.rawValue)'"
            )
        }
        return config
    }

    /// The repository extension's `load` for a registry model: its deployment, reloaded. Answers false when
    /// `name` is not a registry model.
    func loadRegistryModel(_ name: String) async throws -> Bool {
        guard let registry else { return false }
        // A folder of the repository never asks the registry (which may be down).
        let folder = repository.root.appendingPathComponent(name).appendingPathComponent("mass.json")
        if FileManager.default.fileExists(atPath: folder.path) { return false }
        let plans: [ResolvedDeployment]
        do {
            plans = try await registry.resolvedDeployments()
        } catch let error as RegistryError {
            throw RuntimeError(.modelUnavailable, error.message, detail: error.detail)
        }
        guard let plan = plans.first(where: { $0.model == name }) else { return false }
        registryState.withLock { _ = $0.unloaded.remove(name) }
        do {
            try await apply(plan, force: true)
        } catch let error as RuntimeError {
            throw RuntimeError(.loadFailed, "failed to load '\(name)': \(error.message)", detail: error.detail)
        }
        publishLoadedCount()
        return true
    }

    /// The repository extension's `unload` for a registry model. Answers false when it is not one.
    func unloadRegistryModel(_ name: String, remember: Bool = true) async throws -> Bool {
        guard let current = deployed.withLock({ $0[name] }) else { return false }
        try claim(name)
        defer { release(name) }
        slots.withLock { s in
            deployed.withLock { _ = $0.removeValue(forKey: name) }
            s[name] = remember ? .unloaded : nil
        }
        if remember { registryState.withLock { _ = $0.unloaded.insert(name) } }
        await Self.stop(Array(current.versions.values))
        publishLoadedCount()
        return true
    }
}
