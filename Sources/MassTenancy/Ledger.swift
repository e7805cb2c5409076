import Foundation
import MassRegistry
import Synchronization

/// The limits that apply to one request: the tenant's plan, the plan's per-key and per-model scopes, and the
/// key's own plan. A scope's name identifies its counters (`tenant:acme`, `key:mass_1a2b3c4d`, ...).
struct Scope: Sendable {
    let name: String
    let limits: [PlanLimit]
    let maxConcurrent: Int?
    /// The units each kind costs in this scope's budget.
    let prices: @Sendable (String) -> Double
}

/// Exact accounting of every limit: one lock over all counters, and a request's reservation is taken or
/// refused whole (every scope, every kind) in one step under it. Counters are per window, aligned to the clock;
/// a new window starts from what the ledger (the usage table) already holds for it, when the server was given
/// that (`seed`).
final class Ledger: Sendable {
    struct CounterKey: Hashable, Sendable {
        let scope: String
        let kind: String
        let window: LimitWindow
    }

    struct Counter: Sendable {
        var start: Double
        var end: Double
        var used: Double
        var reserved: Double
    }

    private struct State: Sendable {
        var counters: [CounterKey: Counter] = [:]
        var inFlight: [String: Int] = [:]
        /// Totals already in the ledger for windows that began before this server did: key → (window start, used).
        var seeds: [CounterKey: (start: Double, used: Double)] = [:]
    }

    private let state = Mutex(State())
    let clock: @Sendable () -> Double

    init(clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) { self.clock = clock }

    /// Starts the counters of the current windows from totals recorded before this server started.
    func seed(_ key: CounterKey, start: Double, used: Double) {
        state.withLock { $0.seeds[key] = (start, used) }
    }

    /// One unit of a reservation: `amount` of a counter's window.
    struct Hold: Sendable {
        let key: CounterKey
        let start: Double
        let amount: Double
    }

    /// Takes a concurrency slot in every scope that limits it, or none.
    func enter(_ scopes: [Scope]) throws(TenancyError) {
        try state.withLock { (s: inout State) throws(TenancyError) in
            for scope in scopes {
                if let max = scope.maxConcurrent, s.inFlight[scope.name, default: 0] >= max {
                    throw TenancyError(
                        .rateLimited,
                        "\(Self.describe(scope.name)) has \(max) requests in flight, its limit; retry when one ends",
                        headers: [("Retry-After", "1")])
                }
            }
            for scope in scopes where scope.maxConcurrent != nil { s.inFlight[scope.name, default: 0] += 1 }
        }
    }

    func leave(_ scopes: [Scope]) {
        state.withLock { s in
            for scope in scopes where scope.maxConcurrent != nil { s.inFlight[scope.name, default: 1] -= 1 }
        }
    }

    /// Reserves `amount` of `kind` (and its price in units) in every scope, or nothing: throws the refusal of
    /// the first limit it would pass.
    func reserve(_ kind: String, _ amount: Double, in scopes: [Scope]) throws(TenancyError) -> [Hold] {
        let now = clock()
        return try state.withLock { (s: inout State) throws(TenancyError) -> [Hold] in
            var holds: [Hold] = []
            for scope in scopes {
                for limit in scope.limits {
                    let need = limit.kind == kind ? amount : limit.kind == "units" ? amount * scope.prices(kind) : 0
                    guard need > 0, let window = LimitWindow(limit.window) else { continue }
                    let key = CounterKey(scope: scope.name, kind: limit.kind, window: window)
                    let counter = Self.current(key, now, &s)
                    if counter.used + counter.reserved + need > limit.limit {
                        throw Self.refusal(scope.name, limit, counter, need: need, now: now)
                    }
                    holds.append(Hold(key: key, start: counter.start, amount: need))
                }
            }
            for hold in holds { s.counters[hold.key]!.reserved += hold.amount }
            return holds
        }
    }

    /// Ends holds: each one's reservation is removed and `used(hold)` is charged to its window, if that window
    /// is still the current one.
    func settle(_ holds: [Hold], used: (Hold) -> Double) {
        state.withLock { s in
            for hold in holds {
                guard var counter = s.counters[hold.key], counter.start == hold.start else { continue }
                counter.reserved = max(0, counter.reserved - hold.amount)
                counter.used += used(hold)
                s.counters[hold.key] = counter
            }
        }
    }

    /// The counters of `scopes`' limits as they stand: for the rate-limit headers.
    func standing(_ scopes: [Scope]) -> [(limit: PlanLimit, counter: Counter)] {
        let now = clock()
        return state.withLock { s in
            var out: [(PlanLimit, Counter)] = []
            for scope in scopes {
                for limit in scope.limits {
                    guard let window = LimitWindow(limit.window) else { continue }
                    let key = CounterKey(scope: scope.name, kind: limit.kind, window: window)
                    out.append((limit, Self.current(key, now, &s)))
                }
            }
            return out
        }
    }

    private static func current(_ key: CounterKey, _ now: Double, _ s: inout State) -> Counter {
        if let counter = s.counters[key], now < counter.end, now >= counter.start { return counter }
        let (start, end) = key.window.bounds(at: now)
        let seeded = s.seeds[key].flatMap { $0.start == start ? $0.used : nil } ?? 0
        let counter = Counter(start: start, end: end, used: seeded, reserved: 0)
        s.counters[key] = counter
        return counter
    }

    private static func describe(_ scope: String) -> String {
        let parts = scope.split(separator: ":", maxSplits: 1)
        guard parts.count == 2 else { return scope }
        switch parts[0] {
        case "tenant": return "tenant '\(parts[1])'"
        case "key": return "key \(parts[1])"
        case "model": return "the tenant's use of model '\(parts[1].split(separator: "/").last ?? "")'"
        default: return scope
        }
    }

    /// A budget, or a quota of a day or longer, is `insufficient_quota`; shorter windows are rate limits.
    private static func refusal(_ scope: String, _ limit: PlanLimit, _ counter: Counter, need: Double, now: Double)
        -> TenancyError
    {
        let wait = max(0, counter.end - now)
        let long = LimitWindow(limit.window).map { w in if case .seconds(let n) = w { n >= 86400 } else { true } }
        let quota = limit.kind == "units" || long == true
        let used = counter.used + counter.reserved
        let what = limit.kind.replacingOccurrences(of: "_", with: " ")
        let message =
            need > limit.limit
            ? "this request needs \(RateHeaders.number(need)) \(what), over \(describe(scope))'s limit of \(RateHeaders.number(limit.limit)) per \(limit.window)"
            : "\(quota ? "Quota" : "Rate limit") reached for \(describe(scope)): \(what) per \(limit.window): limit \(RateHeaders.number(limit.limit)), used \(RateHeaders.number(used)), requested \(RateHeaders.number(need)); try again in \(RateHeaders.duration(wait))"
        var headers = RateHeaders.fields(limit, counter, now: now)
        headers.append(("Retry-After", String(max(1, Int(wait.rounded(.up))))))
        return TenancyError(quota ? .quotaExhausted : .rateLimited, message, headers: headers)
    }
}

/// The `x-ratelimit-*` headers, named like OpenAI's: `-requests`, `-tokens`, and Mass's `-audio-seconds`,
/// `-images`, `-units`.
enum RateHeaders {
    static func fields(_ limit: PlanLimit, _ counter: Ledger.Counter, now: Double) -> [(String, String)] {
        let name = limit.kind.replacingOccurrences(of: "_", with: "-")
        let remaining = max(0, limit.limit - counter.used - counter.reserved)
        return [
            ("x-ratelimit-limit-\(name)", number(limit.limit)),
            ("x-ratelimit-remaining-\(name)", number(remaining)),
            ("x-ratelimit-reset-\(name)", duration(max(0, counter.end - now))),
        ]
    }

    /// For each kind, the tightest of the standing limits (least remaining).
    static func tightest(_ standing: [(limit: PlanLimit, counter: Ledger.Counter)], now: Double) -> [(String, String)] {
        var best: [String: (PlanLimit, Ledger.Counter, Double)] = [:]
        for (limit, counter) in standing {
            let remaining = limit.limit - counter.used - counter.reserved
            if let current = best[limit.kind], current.2 <= remaining { continue }
            best[limit.kind] = (limit, counter, remaining)
        }
        return best.keys.sorted().flatMap { kind in fields(best[kind]!.0, best[kind]!.1, now: now) }
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.3f", value)
    }

    /// OpenAI's duration format: `850ms`, `12s`, `6m0s`, `1h2m3s`, `3d4h0m0s` (whole seconds rounded up).
    static func duration(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded(.up)))ms" }
        var s = Int(seconds.rounded(.up))
        let d = s / 86400
        s %= 86400
        let h = s / 3600
        s %= 3600
        let m = s / 60
        s %= 60
        if d > 0 { return "\(d)d\(h)h\(m)m\(s)s" }
        if h > 0 { return "\(h)h\(m)m\(s)s" }
        if m > 0 { return "\(m)m\(s)s" }
        return "\(s)s"
    }
}
