/// The dynamic batcher's decisions, as a pure state machine: no threads, no clocks. The runtime's actor shell
/// feeds it requests, cancellations and the time, and carries out what `next(now:idleWorkers:)` decides.
///
/// Policy: requests are served first come, first served. A batch leaves when it is full (`maxBatchSize`
/// requests or `maxBatchTokens` tokens), or when its oldest request has waited `maxQueueDelay`. A request over
/// the token budget on its own still runs, alone. The queue holds at most `maxQueueSize` requests: more are
/// refused at once (the server answers 429/503), never buffered. A request whose deadline passed, or whose
/// caller left (`cancel`), is dropped before compute.
public struct BatcherStateMachine<Item: Sendable>: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxBatchSize: Int
        public var maxBatchTokens: Int
        /// Seconds.
        public var maxQueueDelay: Double
        public var maxQueueSize: Int

        public init(maxBatchSize: Int, maxBatchTokens: Int, maxQueueDelay: Double, maxQueueSize: Int) {
            self.maxBatchSize = max(1, maxBatchSize)
            self.maxBatchTokens = max(1, maxBatchTokens)
            self.maxQueueDelay = max(0, maxQueueDelay)
            self.maxQueueSize = max(1, maxQueueSize)
        }
    }

    public struct Request: Sendable {
        public let id: UInt64
        public let item: Item
        public let tokens: Int
        public let enqueued: Double
        public let deadline: Double
    }

    /// What to do now.
    public struct Decision: Sendable {
        /// Requests to fail with `deadlineExceeded` (they were never computed).
        public var expired: [Request] = []
        /// A batch to hand to an idle worker, in arrival order.
        public var batch: [Request]? = nil
        /// When to ask again if nothing else happens first (the oldest request's delay or deadline).
        public var wakeAt: Double? = nil
    }

    public let limits: Limits
    private var queue: [Request] = []
    private var nextID: UInt64 = 1

    public init(limits: Limits) {
        self.limits = limits
    }

    public var queueDepth: Int { queue.count }

    /// Queues a request, or refuses it at once when the queue is full.
    public mutating func enqueue(_ item: Item, tokens: Int, now: Double, deadline: Double) -> Result<
        UInt64, RuntimeError
    > {
        guard queue.count < limits.maxQueueSize else {
            return .failure(
                RuntimeError(.queueFull, "the queue is full (\(limits.maxQueueSize) requests waiting); retry later"))
        }
        let id = nextID
        nextID += 1
        queue.append(Request(id: id, item: item, tokens: max(0, tokens), enqueued: now, deadline: deadline))
        return .success(id)
    }

    /// Removes a queued request whose caller went away. Returns false if it already left the queue.
    public mutating func cancel(_ id: UInt64) -> Bool {
        guard let index = queue.firstIndex(where: { $0.id == id }) else { return false }
        queue.remove(at: index)
        return true
    }

    /// Decides what to run at time `now` when `idleWorkers` workers are free; a batch holds at most `room`
    /// requests (a worker batching continuously has room for what its running batch lacks).
    public mutating func next(now: Double, idleWorkers: Int, room: Int = .max) -> Decision {
        var decision = Decision()
        decision.expired = queue.filter { $0.deadline <= now }
        if !decision.expired.isEmpty { queue.removeAll { $0.deadline <= now } }
        guard let oldest = queue.first else { return decision }
        let (count, tokens) = takeable(room: max(1, room))
        let full = count == limits.maxBatchSize || count < queue.count || tokens >= limits.maxBatchTokens
        let waitedEnough = now - oldest.enqueued >= limits.maxQueueDelay
        if idleWorkers > 0 && (full || waitedEnough) {
            decision.batch = Array(queue.prefix(count))
            queue.removeFirst(count)
        }
        if let first = queue.first {
            let earliestDeadline = queue.map(\.deadline).min()!
            decision.wakeAt = min(first.enqueued + limits.maxQueueDelay, earliestDeadline)
        }
        return decision
    }

    /// How many requests from the front fit one batch, and their tokens (at least one request).
    private func takeable(room: Int) -> (count: Int, tokens: Int) {
        var count = 0
        var tokens = 0
        for request in queue.prefix(min(room, limits.maxBatchSize)) {
            if count > 0 && tokens + request.tokens > limits.maxBatchTokens { break }
            count += 1
            tokens += request.tokens
        }
        return (count, tokens)
    }
}
