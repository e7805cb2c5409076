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
    /// The counter of work done (`mass_tokens_total`, `mass_images_total`) and its help text.
    var unitsMetric: (name: String, help: String) { get }
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
        var waiting: [UInt64: CheckedContinuation<Model.Output, any Error>] = [:]
        var statistics = Statistics()
        var stopping = false
        var runningWorkers = 0
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    public let model: Model
    public let config: ModelConfig
    /// The model's name in metrics labels.
    public let name: String
    private let metrics: MetricsRegistry?
    private let state: Mutex<State>
    private let wakeup = NSCondition()
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant

    /// Starts `config.instanceCount` worker threads sharing `threads` cores. The workers keep the service alive
    /// until `shutdown()` has been called and the queue has drained.
    public init(
        model: Model, config: ModelConfig, name: String = "model", metrics: MetricsRegistry? = nil,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.model = model
        self.config = config
        self.name = name
        self.metrics = metrics
        start = clock.now
        state = Mutex(
            State(
                machine: BatcherStateMachine(
                    limits: .init(
                        maxBatchSize: config.batching.maxBatchSize, maxBatchTokens: config.batching.maxBatchTokens,
                        maxQueueDelay: config.batching.maxQueueDelayMilliseconds / 1000,
                        maxQueueSize: config.maxQueueSize))))
        let instances = max(1, config.instanceCount)
        state.withLock { $0.runningWorkers = instances }
        for index in 0..<instances {
            let thread = Thread { [self] in workerLoop(threads: max(1, threads / instances)) }
            thread.name = "mass-worker-\(index)"
            thread.start()
        }
    }

    /// Seconds since the service started (the state machine's clock).
    private var now: Double {
        let d = clock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    public var statistics: Statistics { state.withLock { $0.statistics } }
    public var queueDepth: Int { state.withLock { $0.machine.queueDepth } }

    /// Queues one request and returns its output. Throws `RuntimeError.queueFull` at once when the queue is
    /// full, `.deadlineExceeded` when the request waited longer than `request_timeout_ms`, and
    /// `CancellationError` when the calling task is cancelled before compute.
    public func submit(_ item: Model.Item) async throws -> Model.Output {
        let cost = model.cost(of: item)
        let idBox = Mutex<UInt64?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Model.Output, any Error>) in
                let now = self.now
                let outcome: Swift.Result<UInt64, RuntimeError> = state.withLock { s in
                    if s.stopping { return .failure(RuntimeError(.queueFull, "the server is shutting down")) }
                    let r = s.machine.enqueue(
                        item, tokens: cost, now: now, deadline: now + config.requestTimeoutMilliseconds / 1000)
                    if case .success(let id) = r { s.waiting[id] = continuation }
                    return r
                }
                switch outcome {
                case .success(let id):
                    idBox.withLock { $0 = id }
                    publishQueueDepth()
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
            let continuation: CheckedContinuation<Model.Output, any Error>? = state.withLock { s in
                s.machine.cancel(id) ? s.waiting.removeValue(forKey: id) : nil
            }
            if continuation != nil {
                fail(reason: "cancelled")
                publishQueueDepth()
            }
            continuation?.resume(throwing: CancellationError())
        }
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
        while true {
            // The decision is taken under `wakeup` so that an enqueue's broadcast cannot slip in between the
            // check and the wait.
            wakeup.lock()
            let now = self.now
            let (decision, expired, stop):
                (BatcherStateMachine<Model.Item>.Decision, [CheckedContinuation<Model.Output, any Error>], Bool) =
                    state.withLock { s in
                        let d = s.machine.next(now: now, idleWorkers: 1)
                        let gone = d.expired.compactMap { s.waiting.removeValue(forKey: $0.id) }
                        s.statistics.expired += gone.count
                        return (d, gone, s.stopping && s.machine.queueDepth == 0 && d.batch == nil)
                    }
            if decision.batch == nil && !stop && expired.isEmpty {
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
            if let batch = decision.batch { run(batch, lane: lane) }
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
        defer {
            metrics?.observe(
                "mass_inference_duration_seconds", now - started, labels: [("model", name)],
                help: "Time of one model call (a batch).")
            let units = model.unitsMetric
            metrics?.add(
                units.name, Double(batch.reduce(0) { $0 + $1.tokens }), labels: [("model", name)], help: units.help)
        }
        let continuations = state.withLock { s in
            s.statistics.batches += 1
            s.statistics.requests += batch.count
            s.statistics.largestBatch = max(s.statistics.largestBatch, batch.count)
            return batch.map { s.waiting.removeValue(forKey: $0.id) }
        }
        do {
            let outputs = try model.run(batch.map(\.item), lane: lane)
            for (output, continuation) in zip(outputs, continuations) { continuation?.resume(returning: output) }
        } catch {
            fail(reason: "model_error")
            for continuation in continuations { continuation?.resume(throwing: error) }
        }
    }
}
