import Foundation
import MassModels
import MassTensor
import MassTokenizers
import Synchronization

/// What a model must provide to be served by `BatchingService`: how to run a batch of requests on one worker.
public protocol BatchModel: Sendable {
    /// One request's work (token sequences, prepared images).
    associatedtype Item: Sendable
    /// One request's answer.
    associatedtype Output: Sendable
    /// A worker's own compute resources (workspaces, thread pool), made on the worker's thread.
    associatedtype Lane

    func makeLane(threads: Int) -> Lane
    /// The request's weight against the batch budget (`max_batch_tokens`): tokens, images.
    func cost(of item: Item) -> Int
    /// Runs the requests of one batch; one output per item, in order.
    func run(_ items: [Item], lane: Lane) throws -> [Output]
    /// The queue is empty: the lane's compute helpers should sleep now rather than spin (`ComputePool.rest`).
    func rest(_ lane: Lane)
    /// The counter of work done (`mass_tokens_total`, `mass_images_total`) and its help text.
    var unitsMetric: (name: String, help: String) { get }
    /// What the request is charged under its tenant's plan: `tokens`, `images` or `audio_seconds`, and how many
    /// (nil: nothing metered).
    func usage(of item: Item) -> (kind: String, amount: Double)?
    /// Serves `batch` until every request in it has its answer. The default runs `run(_:lane:)` once; a model that
    /// batches continuously (speech) admits more requests between its steps and finishes each one when it is ready.
    func serve(_ batch: ServedBatch<Self>, lane: Lane)
}

extension BatchModel {
    public func usage(of item: Item) -> (kind: String, amount: Double)? { nil }

    public func serve(_ batch: ServedBatch<Self>, lane: Lane) {
        do {
            let outputs = try run(batch.items.map(\.item), lane: lane)
            for ((key, _), output) in zip(batch.items, outputs) { batch.finish(key, .success(output)) }
        } catch {
            for (key, _) in batch.items { batch.finish(key, .failure(error)) }
        }
    }
}

/// The requests a worker is serving, as a model sees them: the first ones, more on request (`admit`), and where
/// answers go (`finish`). Keys identify requests.
public final class ServedBatch<Model: BatchModel> {
    public let items: [(key: UInt64, item: Model.Item)]
    private let admitter: (Int) -> [(key: UInt64, item: Model.Item)]
    private let finisher: (UInt64, Result<Model.Output, any Error>) -> Void
    private let cancelled: (UInt64) -> Bool

    init(
        items: [(key: UInt64, item: Model.Item)], admit: @escaping (Int) -> [(key: UInt64, item: Model.Item)],
        finish: @escaping (UInt64, Result<Model.Output, any Error>) -> Void, cancelled: @escaping (UInt64) -> Bool
    ) {
        self.items = items
        admitter = admit
        finisher = finish
        self.cancelled = cancelled
    }

    /// Takes up to `room` more queued requests (none when the queue is empty), without waiting.
    public func admit(room: Int) -> [(key: UInt64, item: Model.Item)] { room > 0 ? admitter(room) : [] }
    /// Answers one request.
    public func finish(_ key: UInt64, _ result: Result<Model.Output, any Error>) { finisher(key, result) }
    /// Whether the request's caller went away while it was being computed.
    public func isCancelled(_ key: UInt64) -> Bool { cancelled(key) }
}

/// Serves one loaded model: requests from any task are queued, coalesced into batches by
/// `BatcherStateMachine`, and computed on the service's own worker threads (never on Swift's cooperative
/// pool). Each worker owns its lane (workspace and compute pool).
public final class BatchingService<Model: BatchModel>: Sendable {
    /// Counters for metrics and tests.
    public struct Statistics: Sendable, Equatable {
        public var batches = 0
        public var requests = 0
        public var largestBatch = 0
        public var expired = 0
    }

    private struct State: ~Copyable {
        var machine: BatcherStateMachine<Model.Item>
        /// Queued and running requests.
        var waiting: [UInt64: CheckedContinuation<Model.Output, any Error>] = [:]
        /// The routing of queued and running requests that have one (for their queue and compute times).
        var routing: [UInt64: RequestRouting] = [:]
        /// Running requests whose caller went away.
        var abandoned: Set<UInt64> = []
        var statistics = Statistics()
        var stopping = false
        var runningWorkers = 0
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    public let model: Model
    public let config: ModelConfig
    /// The model's name (in metrics labels too) and version.
    public let identity: ServedIdentity
    public var name: String { identity.name }
    private let metrics: MetricsRegistry?
    private let state: Mutex<State>
    private let wakeup = NSCondition()
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant

    /// Starts `config.instanceCount` worker threads sharing `threads` cores. The workers keep the service alive
    /// until `shutdown()` has been called and the queue has drained.
    public init(
        model: Model, config: ModelConfig, name: String = "model", version: Int = 1, metrics: MetricsRegistry? = nil,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.model = model
        self.config = config
        identity = ServedIdentity(name: name, version: version)
        self.metrics = metrics
        start = clock.now
        state = Mutex(
            State(
                machine: BatcherStateMachine(
                    limits: .init(
                        maxBatchSize: config.batching.maxBatchSize, maxBatchTokens: config.batching.maxBatchTokens,
                        maxQueueDelay: config.batching.maxQueueDelayMilliseconds / 1000,
                        maxQueueSize: config.maxQueueSize,
                        contendedBatchTokens: config.batching.contendedBatchTokens,
                        contentionWindow: config.batching.contentionWindowMilliseconds / 1000))))
        let instances = max(1, config.instanceCount)
        state.withLock { $0.runningWorkers = instances }
        for index in 0..<instances {
            NamedThread.start("mass-worker-\(index)") { [self] in workerLoop(threads: max(1, threads / instances)) }
        }
    }

    /// Seconds since the service started (the state machine's clock).
    private var now: Double {
        (clock.now - start).inSeconds
    }

    public var statistics: Statistics { state.withLock { $0.statistics } }
    public var queueDepth: Int { state.withLock { $0.machine.queueDepth } }

    /// Queues one request and returns its output. Throws `RuntimeError.queueFull` at once when the queue is
    /// full, `.deadlineExceeded` when the request waited longer than `request_timeout_ms`, and
    /// `CancellationError` when the calling task is cancelled before compute.
    public func submit(_ item: Model.Item) async throws -> Model.Output {
        let cost = model.cost(of: item)
        let routing = RequestRouting.current
        if let routing, let usage = model.usage(of: item) { try routing.charge(usage.kind, usage.amount) }
        let idBox = Mutex<UInt64?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Model.Output, any Error>) in
                let now = self.now
                let outcome: Swift.Result<UInt64, RuntimeError> = state.withLock { s in
                    if s.stopping { return .failure(RuntimeError(.queueFull, "the server is shutting down")) }
                    let flow = routing?.flow ?? .anonymous
                    let timeout =
                        flow.isBatch ? config.batchRequestTimeoutMilliseconds : config.requestTimeoutMilliseconds
                    let r = s.machine.enqueue(item, tokens: cost, now: now, deadline: now + timeout / 1000, flow: flow)
                    if case .success(let id) = r {
                        s.waiting[id] = continuation
                        if let routing { s.routing[id] = routing }
                    }
                    return r
                }
                switch outcome {
                case .success(let id):
                    idBox.withLock { $0 = id }
                    publishQueueDepth()
                    // Cancelled before the request was queued (the handler below found no id yet).
                    if Task.isCancelled { abandon(id) }
                    wakeup.lock()
                    wakeup.broadcast()
                    wakeup.unlock()
                case .failure(let error):
                    fail(reason: "queue_full")
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            guard let id = idBox.withLock({ $0 }) else { return }
            abandon(id)
        }
    }

    /// The caller of request `id` went away: a queued request is dropped at once (CancellationError), a running one
    /// is marked for the model to drop at its next step (`ServedBatch.isCancelled`).
    private func abandon(_ id: UInt64) {
        let continuation: CheckedContinuation<Model.Output, any Error>? = state.withLock { s in
            if s.machine.cancel(id) {
                s.routing[id] = nil
                return s.waiting.removeValue(forKey: id)
            }
            if s.waiting[id] != nil { s.abandoned.insert(id) }
            return nil
        }
        if continuation != nil {
            fail(reason: "cancelled")
            publishQueueDepth()
        }
        continuation?.resume(throwing: CancellationError())
    }

    private func publishQueueDepth() {
        metrics?.set(
            "mass_queue_depth", Double(queueDepth), labels: [("model", name)], help: "Requests waiting in the queue.")
    }

    /// Stops taking requests; queued ones are still computed. Workers exit when the queue is empty.
    public func shutdown() {
        state.withLock { $0.stopping = true }
        wakeup.lock()
        wakeup.broadcast()
        wakeup.unlock()
    }

    /// Returns once `shutdown()` was called and every worker has finished the queue and exited; the service's
    /// model is then no longer referenced by it.
    public func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s in
                if s.runningWorkers == 0 { return true }
                s.stopWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func workerExited() {
        let waiters = state.withLock { s in
            s.runningWorkers -= 1
            guard s.runningWorkers == 0 else { return [CheckedContinuation<Void, Never>]() }
            defer { s.stopWaiters = [] }
            return s.stopWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func workerLoop(threads: Int) {
        defer { workerExited() }
        let lane = model.makeLane(threads: threads)
        var rested = true
        while true {
            // The decision is taken under `wakeup` so that an enqueue's broadcast cannot slip in between the
            // check and the wait.
            wakeup.lock()
            let now = self.now
            let (decision, expired, stop):
                (BatcherStateMachine<Model.Item>.Decision, [CheckedContinuation<Model.Output, any Error>], Bool) =
                    state.withLock { s in
                        let d = s.machine.next(now: now, idleWorkers: 1)
                        let gone = d.expired.compactMap { r in
                            s.routing[r.id] = nil
                            return s.waiting.removeValue(forKey: r.id)
                        }
                        s.statistics.expired += gone.count
                        return (d, gone, s.stopping && s.machine.queueDepth == 0 && d.batch == nil)
                    }
            if decision.batch == nil && !stop && expired.isEmpty {
                if !rested {
                    model.rest(lane)
                    rested = true
                }
                let delay = decision.wakeAt.map { max(0, $0 - now) } ?? 1
                _ = wakeup.wait(until: Date(timeIntervalSinceNow: delay))
                wakeup.unlock()
                continue
            }
            wakeup.unlock()
            for _ in expired { fail(reason: "deadline_exceeded") }
            for c in expired {
                c.resume(throwing: RuntimeError(.deadlineExceeded, "the request waited longer than request_timeout_ms"))
            }
            if let batch = decision.batch {
                run(batch, lane: lane)
                rested = false
            }
            if stop { return }
        }
    }

    private func fail(reason: String) {
        metrics?.add(
            "mass_request_failures_total", labels: [("model", name), ("reason", reason)],
            help: "Requests that failed before or during compute, by reason.")
    }

    private func run(_ batch: [BatcherStateMachine<Model.Item>.Request], lane: Model.Lane) {
        let started = now
        observeStart(of: batch, at: started)
        defer {
            metrics?.observe(
                "mass_inference_duration_seconds", now - started, labels: [("model", name)],
                help: "Time of one model call (a batch; for continuously batched speech, a busy period).")
        }
        let costs = Mutex([UInt64: Int](uniqueKeysWithValues: batch.map { ($0.id, $0.tokens) }))
        let served = ServedBatch<Model>(
            items: batch.map { ($0.id, $0.item) },
            admit: { [self] room in
                let taken = admit(room: room)
                costs.withLock { for r in taken { $0[r.id] = r.tokens } }
                return taken.map { ($0.id, $0.item) }
            },
            finish: { [self] key, result in
                let (continuation, routing) = state.withLock { s in
                    s.abandoned.remove(key)
                    return (s.waiting.removeValue(forKey: key), s.routing.removeValue(forKey: key))
                }
                routing?.add(compute: now - started)
                switch result {
                case .success(let output):
                    let units = model.unitsMetric
                    let cost = costs.withLock { $0[key] ?? 0 }
                    metrics?.add(units.name, Double(cost), labels: [("model", name)], help: units.help)
                    continuation?.resume(returning: output)
                case .failure(let error):
                    fail(reason: error is CancellationError ? "cancelled" : "model_error")
                    continuation?.resume(throwing: error)
                }
            },
            cancelled: { [self] key in state.withLock { $0.abandoned.contains(key) } })
        model.serve(served, lane: lane)
        // A model that forgot a request must not leave its caller waiting.
        let forgotten = state.withLock { s in
            costs.withLock { c in
                c.keys.compactMap { key in
                    s.routing[key] = nil
                    return s.waiting.removeValue(forKey: key)
                }
            }
        }
        for continuation in forgotten {
            continuation.resume(throwing: RuntimeError(.modelFailed, "the model returned no answer for the request"))
        }
    }

    /// More queued requests for a running continuous batch (expired ones are failed on the way).
    private func admit(room: Int) -> [BatcherStateMachine<Model.Item>.Request] {
        let now = self.now
        let (batch, expired):
            ([BatcherStateMachine<Model.Item>.Request], [CheckedContinuation<Model.Output, any Error>]) =
                state.withLock { s in
                    guard !s.stopping || s.machine.queueDepth > 0 else { return ([], []) }
                    let d = s.machine.next(now: now, idleWorkers: 1, room: room)
                    let gone = d.expired.compactMap { r in
                        s.routing[r.id] = nil
                        return s.waiting.removeValue(forKey: r.id)
                    }
                    s.statistics.expired += gone.count
                    return (d.batch ?? [], gone)
                }
        for _ in expired { fail(reason: "deadline_exceeded") }
        for c in expired {
            c.resume(throwing: RuntimeError(.deadlineExceeded, "the request waited longer than request_timeout_ms"))
        }
        if !batch.isEmpty { observeStart(of: batch, at: now) }
        return batch
    }

    private func observeStart(of batch: [BatcherStateMachine<Model.Item>.Request], at started: Double) {
        state.withLock { s in
            s.statistics.batches += 1
            s.statistics.requests += batch.count
            s.statistics.largestBatch = max(s.statistics.largestBatch, batch.count)
        }
        let routes = state.withLock { s in batch.map { s.routing[$0.id] } }
        for (request, routing) in zip(batch, routes) { routing?.add(queue: started - request.enqueued) }
        if let metrics {
            for request in batch {
                metrics.observe(
                    "mass_queue_duration_seconds", started - request.enqueued, labels: [("model", name)],
                    help: "Time requests waited in the queue before compute.")
            }
            metrics.observe(
                "mass_batch_size", Double(batch.count), labels: [("model", name)],
                buckets: MetricsRegistry.batchBuckets,
                help: "Requests per model call.")
        }
        publishQueueDepth()
    }
}
