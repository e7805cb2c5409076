/// The dynamic batcher's decisions, as a pure state machine: no threads, no clocks. The runtime's actor shell
/// feeds it requests, cancellations and the time, and carries out what `next(now:idleWorkers:)` decides.
///
/// Policy: requests are served by start-time fair queuing over flows (tenants): each request gets a virtual
/// start tag, max(the virtual clock, its flow's last finish tag), and advances its flow's finish tag by
/// tokens / weight; batches take the smallest tags first, interactive requests before batch-class ones. One flow
/// alone is served first come, first served. A batch leaves when it is full (`maxBatchSize` requests or
/// `maxBatchTokens` tokens), or when its oldest request has waited `maxQueueDelay`; while requests of more than
/// one flow are active (they queued a request within the last `contentionWindow` seconds), a batch holds at most
/// `contendedBatchTokens` tokens, so that a light flow's next request never waits behind a long batch of a heavy
/// one: a light client with a few requests in flight is rarely in the queue at the moment a batch forms, so the
/// queue alone cannot tell that it is there. A request over the token budget on its own still runs, alone. The
/// queue holds at most `maxQueueSize` requests: more are refused at once (the server answers 429/503), never
/// buffered. A request whose deadline passed, or whose caller left (`cancel`), is dropped before compute.
public struct BatcherStateMachine<Item: Sendable>: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxBatchSize: Int
        public var maxBatchTokens: Int
        /// Seconds.
        public var maxQueueDelay: Double
        public var maxQueueSize: Int
        /// The token budget of a batch while more than one flow is active.
        public var contendedBatchTokens: Int
        /// Seconds: a flow that queued a request this recently is active.
        public var contentionWindow: Double

        public init(
            maxBatchSize: Int, maxBatchTokens: Int, maxQueueDelay: Double, maxQueueSize: Int,
            contendedBatchTokens: Int? = nil, contentionWindow: Double = 0.5
        ) {
            self.maxBatchSize = max(1, maxBatchSize)
            self.maxBatchTokens = max(1, maxBatchTokens)
            self.maxQueueDelay = max(0, maxQueueDelay)
            self.maxQueueSize = max(1, maxQueueSize)
            self.contendedBatchTokens = max(1, min(contendedBatchTokens ?? self.maxBatchTokens, self.maxBatchTokens))
            self.contentionWindow = max(0, contentionWindow)
        }
    }

    public typealias Flow = SchedulingFlow

    public struct Request: Sendable {
        public let id: UInt64
        public let item: Item
        public let tokens: Int
        public let enqueued: Double
        public let deadline: Double
        public let flow: String
        public let isBatch: Bool
        /// The virtual start tag (fair queuing order).
        public let tag: Double
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
    /// Waiting requests in service order: interactive before batch, then by tag, then by arrival.
    private var queue: [Request] = []
    private var nextID: UInt64 = 1
    /// The virtual clock: the tag of the last request taken into a batch.
    private var virtualTime = 0.0
    /// Each flow's last finish tag (flows whose tag the clock has passed are forgotten).
    private var finishTags: [String: Double] = [:]
    /// When each recently active flow last queued a request (flows quiet for `contentionWindow` are forgotten).
    private var lastSeen: [String: Double] = [:]

    public init(limits: Limits) {
        self.limits = limits
    }

    public var queueDepth: Int { queue.count }

    /// Queues a request, or refuses it at once when the queue is full.
    public mutating func enqueue(
        _ item: Item, tokens: Int, now: Double, deadline: Double, flow: Flow = .anonymous
    ) -> Result<UInt64, RuntimeError> {
        guard queue.count < limits.maxQueueSize else {
            return .failure(
                RuntimeError(.queueFull, "the queue is full (\(limits.maxQueueSize) requests waiting); retry later"))
        }
        let id = nextID
        nextID += 1
        lastSeen[flow.name] = now
        let start = max(virtualTime, finishTags[flow.name] ?? 0)
        finishTags[flow.name] = start + Double(max(1, tokens)) / flow.weight
        let request = Request(
            id: id, item: item, tokens: max(0, tokens), enqueued: now, deadline: deadline, flow: flow.name,
            isBatch: flow.isBatch, tag: start)
        // Insert in service order (after every request that goes first; ties keep arrival order).
        let index = queue.lastIndex { Self.precedes($0, request) }.map { $0 + 1 } ?? 0
        queue.insert(request, at: index)
        return .success(id)
    }

    private static func precedes(_ a: Request, _ b: Request) -> Bool {
        if a.isBatch != b.isBatch { return !a.isBatch }
        if a.tag != b.tag { return a.tag < b.tag }
        return a.id < b.id
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
        guard !queue.isEmpty else { return decision }
        let oldest = queue.map(\.enqueued).min()!
        // Forget flows gone quiet (rebuilding the table only when one has: this runs at every decision).
        if lastSeen.count > 1 && lastSeen.values.contains(where: { now - $0 > limits.contentionWindow }) {
            lastSeen = lastSeen.filter { now - $0.value <= limits.contentionWindow }
        }
        let contended = lastSeen.count > 1 || queue.contains { $0.flow != queue[0].flow }
        let budget = contended ? limits.contendedBatchTokens : limits.maxBatchTokens
        let (count, tokens) = takeable(room: max(1, room), budget: budget)
        let full = count == limits.maxBatchSize || count < queue.count || tokens >= budget
        let waitedEnough = now - oldest >= limits.maxQueueDelay
        if idleWorkers > 0 && (full || waitedEnough) {
            let batch = Array(queue.prefix(count))
            queue.removeFirst(count)
            virtualTime = max(virtualTime, batch.map(\.tag).max()!)
            finishTags = finishTags.filter { $0.value > virtualTime }
            decision.batch = batch.sorted { $0.id < $1.id }
        }
        if !queue.isEmpty {
            let earliestDeadline = queue.map(\.deadline).min()!
            decision.wakeAt = min(queue.map(\.enqueued).min()! + limits.maxQueueDelay, earliestDeadline)
        }
        return decision
    }

    /// How many requests from the front fit one batch, and their tokens (at least one request).
    private func takeable(room: Int, budget: Int) -> (count: Int, tokens: Int) {
        var count = 0
        var tokens = 0
        for request in queue.prefix(min(room, limits.maxBatchSize)) {
            if count > 0 && tokens + request.tokens > budget { break }
            count += 1
            tokens += request.tokens
        }
        return (count, tokens)
    }
}

/// Whose request it is, for fair queuing: the flow's name (a tenant), its weight, and its class.
public struct SchedulingFlow: Sendable, Equatable {
    public var name: String
    public var weight: Double
    /// Batch-class requests are served after every waiting interactive one.
    public var isBatch: Bool

    public init(name: String, weight: Double = 1, isBatch: Bool = false) {
        self.name = name
        self.weight = weight > 0 && weight.isFinite ? weight : 1
        self.isBatch = isBatch
    }

    /// Requests that name no tenant.
    public static let anonymous = SchedulingFlow(name: "")
}
