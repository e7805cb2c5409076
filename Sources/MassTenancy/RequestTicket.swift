import Foundation
public import MassRegistry
import Synchronization

/// One request's account: what it holds (a concurrency slot, reserved units) from admission to its answer,
/// and what it used. `close` settles it, exactly once: the reservation becomes real usage when the request
/// succeeded and is released when it failed or was cancelled (the request itself still counts against request
/// rate limits).
public final class RequestTicket: Sendable {
    public let principal: Principal
    let gate: TenancyGate
    public let id: String
    /// Milliseconds since 1970.
    public let arrived: Int
    private struct State: Sendable {
        var model: String?
        var scopes: [Scope] = []
        var entered = false
        var holds: [(kind: String, amount: Double, holds: [Ledger.Hold])] = []
        var used: [String: Double] = [:]
        var closed = false
    }
    private let state = Mutex(State())

    init(principal: Principal, gate: TenancyGate) {
        self.principal = principal
        self.gate = gate
        id = UUID().uuidString.lowercased()
        arrived = Int((Date().timeIntervalSince1970 * 1000).rounded())
    }

    /// The request names `model`: checks the key's scope (403), takes concurrency slots and one request of every
    /// request-rate limit (429), all or nothing. Called once per request; a second call is a no-op.
    public func admit(model: String) throws(TenancyError) {
        guard principal.allows(model: model) else {
            throw TenancyError(
                .forbidden, "API key \(principal.key.prefix) may not call model '\(model)'")
        }
        let already = state.withLock { $0.model != nil }
        guard !already else { return }
        let scopes = principal.scopes(model: model)
        try gate.ledger.enter(scopes)
        do {
            let holds = try gate.ledger.reserve("requests", 1, in: scopes)
            state.withLock {
                $0.model = model
                $0.scopes = scopes
                $0.entered = true
                $0.holds.append(("requests", 1, holds))
            }
        } catch {
            gate.ledger.leave(scopes)
            throw error
        }
    }

    /// Reserves the work the request is about to queue (exact: counted after tokenizing or decoding).
    public func charge(_ kind: String, _ amount: Double) throws(TenancyError) {
        let scopes = state.withLock { $0.scopes }
        let holds = try gate.ledger.reserve(kind, amount, in: scopes)
        state.withLock {
            $0.holds.append((kind, amount, holds))
            $0.used[kind, default: 0] += amount
        }
    }

    public var model: String? { state.withLock { $0.model } }

    /// The remaining-limit headers of the request's scopes as they stand.
    public func headers() -> [(String, String)] {
        let scopes = state.withLock { $0.scopes }
        guard !scopes.isEmpty else { return [] }
        return RateHeaders.tightest(gate.ledger.standing(scopes), now: gate.ledger.clock())
    }

    /// Settles (status < 400) or releases the reservation, frees the slots and writes the usage record.
    /// Later calls do nothing.
    public func close(status: Int, route: String, version: Int?, queueSeconds: Double, computeSeconds: Double) {
        let taken: State? = state.withLock { s in
            guard !s.closed else { return nil }
            s.closed = true
            return s
        }
        guard let taken else { return }
        let succeeded = status < 400
        for (kind, _, holds) in taken.holds {
            gate.ledger.settle(holds) { hold in kind == "requests" || succeeded ? hold.amount : 0 }
        }
        if taken.entered { gate.ledger.leave(taken.scopes) }
        let used = succeeded ? taken.used : [:]
        let units = used.reduce(0) { $0 + principal.units($1.key, $1.value) }
        let record = UsageRecord(
            id: id, at: arrived, tenant: principal.tenant, keyPrefix: principal.key.prefix,
            model: taken.model ?? "", version: version, route: route, status: status, requests: 1,
            tokens: Int(used["tokens"] ?? 0), audioSeconds: used["audio_seconds"] ?? 0,
            images: Int(used["images"] ?? 0), units: units, queueMs: queueSeconds * 1000,
            computeMs: computeSeconds * 1000)
        gate.meter.add(record)
    }
}
