import Foundation
import MassModels
import MassRegistry
import NIOCore
import Synchronization

/// What every service-type model shares, whatever its task: the provider's client, the request's deadline, the
/// fallback chain, readiness (a provider that cannot be reached or whose breaker is open makes the model unready
/// with the reason, and is probed until it answers), and the drain on shutdown.
final class RemoteBackend: Sendable {
    /// The fallbacks a request already went through (a chain that loops back is cut).
    @TaskLocal static var visited: Set<String> = []

    let identity: ServedIdentity
    let config: ModelConfig
    let remote: RemoteConfig
    let client: RemoteClient
    let metrics: MetricsRegistry?
    /// Where calibration pairs go (nil: no registry).
    let pairs: ServicePairStore?
    private let resolve: (@Sendable (String) throws -> any ServedModel)?
    private let health: Health
    /// Requests, failures, units and latency since start (the services report).
    let counters = ServiceCounters()
    /// Sampled pairs being recorded now.
    private let recording = Mutex(0)
    static let maxRecordingAtOnce = 4

    /// Readiness and the drain, shared with the client's breaker callback.
    final class Health: Sendable {
        struct State {
            var reason: String?
            var stopped = false
            var active = 0
            var drained: [CheckedContinuation<Void, Never>] = []
            /// A probe loop runs (claimed before its task exists, cleared when it ends).
            var probingActive = false
            var probing: Task<Void, Never>?
            var probe: (@Sendable (ContinuousClock.Instant) async throws -> Void)?
            /// Starts the probes (the backend, once built).
            var unready: (@Sendable () -> Void)?
        }
        let state = Mutex(State())
    }

    init(context: ServingContext, remote: RemoteConfig) {
        identity = context.identity
        config = context.config
        self.remote = remote
        metrics = context.metrics
        pairs = context.pairs
        resolve = context.resolve
        let health = Health()
        self.health = health
        let name = context.identity.name
        let key = Self.key(remote.credential, directory: context.directory, environment: context.environment)
        client = RemoteClient(
            name: name, config: remote, key: key, metrics: context.metrics,
            onBreaker: { open, why in
                let unready = health.state.withLock { s in
                    s.reason = open ? "the provider's circuit breaker opened: \(why)" : nil
                    return open ? s.unready : nil
                }
                unready?()
            })
        if case .failure(let failure) = key { health.state.withLock { $0.reason = failure.description } }
        health.state.withLock { $0.unready = { [weak self] in self?.startProbing() } }
    }

    /// The API key: read once, when the model is loaded. A failure names the variable or file only.
    static func key(
        _ credential: RemoteConfig.Credential, directory: URL?, environment: [String: String]
    ) -> Result<String?, RemoteFailure> {
        switch credential {
        case .none: return .success(nil)
        case .environment(let variable):
            guard let value = environment[variable]?.trimmingCharacters(in: .whitespacesAndNewlines),
                !value.isEmpty
            else { return .failure(.credential("environment variable \(variable) is not set")) }
            return .success(value)
        case .file(let path):
            let url =
                path.hasPrefix("/")
                ? URL(fileURLWithPath: path)
                : (directory ?? URL(fileURLWithPath: ".")).appendingPathComponent(path)
            guard let data = FileManager.default.contents(atPath: url.path),
                let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
                !text.isEmpty
            else { return .failure(.credential("key file '\(path)' cannot be read or is empty")) }
            return .success(text)
        }
    }

    var unreadyReason: String? { health.state.withLock { $0.reason } }

    /// The deadline of the request being served: its class's timeout from now.
    func deadline() -> ContinuousClock.Instant {
        let batch = RequestRouting.current?.flow.isBatch ?? false
        let ms = batch ? config.batchRequestTimeoutMilliseconds : config.requestTimeoutMilliseconds
        return ContinuousClock.now.advanced(by: .milliseconds(ms))
    }

    /// Answers a request from the provider (`call`), else from the first fallback that can (`fallback`).
    /// A provider that refused the input (400, 413, 422) is the answer: no fallback.
    func answer<Value: Sendable, Serving>(
        _ call: (ContinuousClock.Instant) async throws -> Value,
        fallback: (Serving) async throws -> Value
    ) async throws -> Value {
        try enter()
        defer { leave() }
        let failure: RemoteFailure
        do {
            let started = ContinuousClock.now
            let value = try await call(deadline())
            let seconds = (ContinuousClock.now - started).inSeconds
            RequestRouting.current?.add(compute: seconds)
            counters.answered(milliseconds: seconds * 1000)
            return value
        } catch let f as RemoteFailure {
            failure = f
        }
        metrics?.add(
            "mass_remote_errors_total", labels: [("model", identity.name), ("reason", failure.reason)],
            help: "Requests a service-type model's provider could not answer, by reason.")
        guard !failure.isClientError else {
            counters.providerFailed(fellBack: false)
            throw failure.runtimeError(model: identity.name)
        }
        let visited = Self.visited.union([identity.name])
        for name in remote.fallback where !visited.contains(name) {
            guard let model = try? resolve?(name), let typed = model as? Serving else { continue }
            do {
                let value = try await Self.$visited.withValue(visited) { try await fallback(typed) }
                metrics?.add(
                    "mass_remote_fallbacks_total", labels: [("model", identity.name), ("to", name)],
                    help: "Requests of a service-type model answered by a fallback model.")
                counters.providerFailed(fellBack: true)
                return value
            } catch let e as RuntimeError where [.invalidInput, .inputTooLong].contains(e.code) {
                counters.providerFailed(fellBack: false)
                throw e
            } catch {
                continue
            }
        }
        counters.providerFailed(fellBack: false)
        throw failure.runtimeError(model: identity.name)
    }

    /// Checks the provider with one call (no retries); on failure the model is unready and probed every
    /// `probe_interval_ms` until the provider answers. The breaker opening starts the same probes.
    func check(_ probe: @escaping @Sendable (ContinuousClock.Instant) async throws -> Void) async {
        health.state.withLock { $0.probe = probe }
        if await !probeOnce() { startProbing() }
    }

    /// One probe; true when the provider answered.
    private func probeOnce() async -> Bool {
        guard let probe = health.state.withLock({ $0.probe }) else { return false }
        do {
            try await probe(ContinuousClock.now.advanced(by: .milliseconds(remote.callTimeoutMilliseconds)))
            health.state.withLock { $0.reason = nil }
            return true
        } catch {
            let reason = (error as? RemoteFailure)?.description ?? String(describing: error)
            health.state.withLock { $0.reason = reason }
            return false
        }
    }

    /// Probes until the provider answers (one loop at a time).
    private func startProbing() {
        let start = health.state.withLock { s -> Bool in
            guard !s.probingActive, !s.stopped else { return false }
            s.probingActive = true
            return true
        }
        guard start else { return }
        let interval = remote.probeIntervalMilliseconds
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(interval))
                guard let self, !Task.isCancelled else { return }
                let unready = self.health.state.withLock { !$0.stopped && $0.reason != nil }
                let answered = unready ? await self.probeOnce() : true
                if answered {
                    self.health.state.withLock {
                        $0.probingActive = false
                        $0.probing = nil
                    }
                    return
                }
            }
        }
        health.state.withLock { s in
            if s.stopped { task.cancel() } else if s.probingActive { s.probing = task }
        }
    }

    // MARK: Calibration pairs

    /// The local model that answers recorded inputs too: `name`, else the `record` block's candidate.
    func candidate<Serving>(_ name: String?, as _: Serving.Type) throws -> (String, Serving) {
        guard pairs != nil else {
            throw RuntimeError(.invalidInput, "recording pairs needs a registry (mass serve --registry)")
        }
        guard let name = name ?? remote.record?.candidate else {
            throw RuntimeError(
                .invalidInput, "name a 'candidate' (model '\(identity.name)' has no 'remote.record.candidate')",
                param: "candidate")
        }
        guard name != identity.name else {
            throw RuntimeError(
                .invalidInput, "the candidate must be another model than the service", param: "candidate")
        }
        guard let resolve else { throw RuntimeError(.modelUnavailable, "no other models are reachable") }
        let model = try resolve(name)
        guard let typed = model as? Serving else {
            throw RuntimeError(
                .wrongTask, "candidate '\(name)' serves task '\(model.task.rawValue)', not '\(config.task.rawValue)'",
                param: "candidate")
        }
        return (name, typed)
    }

    /// A call straight to the provider for recording pairs (never a fallback: a pair is the provider's answer),
    /// counted in the report like a served request; the value and the seconds it took.
    func direct<Value>(_ call: (ContinuousClock.Instant) async throws -> Value) async throws -> (
        value: Value, seconds: Double
    ) {
        let started = ContinuousClock.now
        do {
            let value = try await call(deadline())
            let seconds = (ContinuousClock.now - started).inSeconds
            counters.answered(milliseconds: seconds * 1000)
            return (value, seconds)
        } catch let failure as RemoteFailure {
            counters.providerFailed(fellBack: false)
            throw failure.runtimeError(model: identity.name)
        }
    }

    /// Writes pairs and counts them.
    func store(_ recorded: [ServicePair]) async throws {
        guard let pairs, let first = recorded.first else { return }
        try await pairs.record(recorded)
        metrics?.add(
            "mass_service_pairs_recorded_total", Double(recorded.count),
            labels: [("model", identity.name), ("candidate", first.candidate), ("origin", first.origin)],
            help: "Calibration pairs recorded: inputs answered by a service-type model and a local candidate.")
    }

    /// Records a sampled request (the provider answered it) at the `record` block's rate, after the response:
    /// at most a few at once; more are dropped and counted.
    func sample(_ record: @escaping @Sendable () async throws -> Void) {
        guard let rate = remote.record?.sampleRate, pairs != nil, rate > 0, Double.random(in: 0..<1) < rate else {
            return
        }
        let admitted = recording.withLock { n -> Bool in
            guard n < Self.maxRecordingAtOnce else { return false }
            n += 1
            return true
        }
        guard admitted else {
            metrics?.add(
                "mass_service_pairs_dropped_total", labels: [("model", identity.name)],
                help: "Sampled requests not recorded because recording was busy or failed.")
            return
        }
        Task.detached { [self] in
            defer { recording.withLock { $0 -= 1 } }
            do {
                try await record()
            } catch {
                metrics?.add(
                    "mass_service_pairs_dropped_total", labels: [("model", identity.name)],
                    help: "Sampled requests not recorded because recording was busy or failed.")
            }
        }
    }

    private func enter() throws {
        let stopped = health.state.withLock { s -> Bool in
            if !s.stopped { s.active += 1 }
            return s.stopped
        }
        if stopped { throw RuntimeError(.modelUnavailable, "model '\(identity.name)' is shutting down") }
    }

    private func leave() {
        let waiters = health.state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.active -= 1
            guard s.stopped, s.active == 0 else { return [] }
            defer { s.drained = [] }
            return s.drained
        }
        for waiter in waiters { waiter.resume() }
    }

    func shutdown() {
        let probing = health.state.withLock { s -> Task<Void, Never>? in
            s.stopped = true
            defer { s.probing = nil }
            return s.probing
        }
        probing?.cancel()
    }

    func waitUntilStopped() async {
        await withCheckedContinuation { continuation in
            let done = health.state.withLock { s -> Bool in
                guard s.active > 0 else { return true }
                s.drained.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
        await client.shutdown()
    }
}
