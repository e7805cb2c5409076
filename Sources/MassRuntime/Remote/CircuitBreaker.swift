/// A circuit breaker over one provider, as a pure state machine: the caller passes the time (seconds on a
/// monotonic clock) and keeps it behind a lock.
///
/// Closed: every call goes through; outcomes are counted in per-second buckets over a sliding window. It opens when
/// the window holds at least `minimumCalls` calls of which `errorRate` or more failed, or after
/// `consecutiveFailures` failures in a row. Open: calls are refused until `openMilliseconds` passed. Half-open: up
/// to `halfOpenProbes` calls go through at once; the first success closes it (with an empty window), a failure
/// opens it again.
public struct CircuitBreaker: Sendable {
    public enum State: Sendable, Equatable {
        case closed
        case open(until: Double)
        case halfOpen(probes: Int)

        /// The gauge value: 0 closed, 1 half-open, 2 open.
        public var gauge: Double {
            switch self {
            case .closed: 0
            case .halfOpen: 1
            case .open: 2
            }
        }
    }

    public enum Admission: Sendable, Equatable {
        /// Go ahead; report the outcome with `record`.
        case call
        /// Go ahead as a half-open probe; report the outcome with `record(probe: true)`.
        case probe
        /// Refused: the breaker is open (or its probes are taken) for about this many more seconds.
        case refused(retryIn: Double)
    }

    public let policy: RemoteConfig.Breaker
    public private(set) var state = State.closed
    /// Times it opened.
    public private(set) var opened = 0
    private var consecutive = 0
    /// (second, calls, failures), oldest first.
    private var buckets: [(second: Int, calls: Int, failures: Int)] = []

    public init(policy: RemoteConfig.Breaker) {
        self.policy = policy
    }

    public mutating func admit(now: Double) -> Admission {
        switch state {
        case .closed:
            return .call
        case .open(let until):
            guard now >= until else { return .refused(retryIn: until - now) }
            state = .halfOpen(probes: 1)
            return .probe
        case .halfOpen(let probes):
            guard probes < policy.halfOpenProbes else { return .refused(retryIn: 0) }
            state = .halfOpen(probes: probes + 1)
            return .probe
        }
    }

    /// Reports a call's outcome. A probe's outcome decides the half-open state; a late outcome of a call admitted
    /// before the breaker opened only counts in the window.
    public mutating func record(success: Bool, probe: Bool = false, now: Double) {
        if probe, case .halfOpen = state {
            if success {
                state = .closed
                consecutive = 0
                buckets.removeAll()
            } else {
                trip(now: now)
            }
            return
        }
        count(success: success, now: now)
        guard case .closed = state, !success else { return }
        if consecutive >= policy.consecutiveFailures {
            trip(now: now)
            return
        }
        let (calls, failures) = buckets.reduce((0, 0)) { ($0.0 + $1.calls, $0.1 + $1.failures) }
        if calls >= policy.minimumCalls, Double(failures) >= policy.errorRate * Double(calls) {
            trip(now: now)
        }
    }

    /// A probe that was admitted but never made (the request was cancelled first): let another one through.
    public mutating func abandon(probe: Bool) {
        guard probe, case .halfOpen(let probes) = state else { return }
        state = .halfOpen(probes: max(0, probes - 1))
    }

    private mutating func trip(now: Double) {
        state = .open(until: now + policy.openMilliseconds / 1000)
        opened += 1
        consecutive = 0
        buckets.removeAll()
    }

    private mutating func count(success: Bool, now: Double) {
        consecutive = success ? 0 : consecutive + 1
        let second = Int(now.rounded(.down))
        let oldest = second - Int((policy.windowMilliseconds / 1000).rounded(.up)) + 1
        while let first = buckets.first, first.second < oldest { buckets.removeFirst() }
        if let last = buckets.indices.last, buckets[last].second == second {
            buckets[last].calls += 1
            buckets[last].failures += success ? 0 : 1
        } else {
            buckets.append((second, 1, success ? 0 : 1))
        }
    }
}
