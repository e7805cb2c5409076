public import Foundation
public import Logging
public import MassRegistry
public import ServiceLifecycle
import Synchronization

/// Authentication, limits and metering for one server, over the tenancy records of its registry database.
/// The keys and plans are held in memory (a request costs a hash and a lookup, no query) and reloaded when the
/// database's change counter moves: at once after a change made through this server, within `pollInterval`
/// after one made elsewhere (the CLI, another server).
public final class TenancyGate: Sendable {
    /// `auto`: keys are required when any exist, or when the server listens beyond loopback. `required`:
    /// always. `off`: never (a valid key is still metered).
    public enum Mode: String, Sendable {
        case auto, required, off
    }

    public let store: TenancyStore
    public let mode: Mode
    let loopbackOnly: Bool
    let ledger = Ledger()
    public let meter: UsageMeter
    let pollInterval: Duration
    let logger: Logger
    private let book = Mutex(KeyBook())
    private let reloading = AsyncLock()

    public init(
        store: TenancyStore, mode: Mode, loopbackOnly: Bool, pollInterval: Duration = .seconds(1),
        logger: Logger = Logger(label: "mass.tenancy")
    ) {
        self.store = store
        self.mode = mode
        self.loopbackOnly = loopbackOnly
        self.pollInterval = pollInterval
        self.logger = logger
        meter = UsageMeter(store: store)
    }

    /// Whether requests must carry a valid key.
    public var enforcing: Bool {
        switch mode {
        case .required: true
        case .off: false
        case .auto: !loopbackOnly || !book.withLock { $0.isEmpty }
        }
    }

    /// Reads the keys and plans again (after a change through this server; the poll does it for others).
    public func reload() async throws {
        try await reloading.withLock {
            let snapshot = try await store.snapshot()
            book.withLock { $0 = KeyBook(snapshot) }
        }
    }

    /// Loads the keys and plans, and starts the current window of every plan limit from the ledger (one read
    /// of the records since the earliest of those windows began).
    public func start() async throws {
        try await reload()
        let book = self.book.withLock { $0 }
        let now = Date().timeIntervalSince1970
        let windows = Set(
            book.entries.values.flatMap { entry in
                [entry.tenantPlan, entry.keyPlan].compactMap { $0 }.flatMap { plan in
                    (plan.spec.limits + (plan.spec.perKey?.limits ?? []) + plan.spec.models.values.flatMap(\.limits))
                        .compactMap { LimitWindow($0.window) }
                }
            })
        let starts = Dictionary(uniqueKeysWithValues: windows.map { ($0, $0.bounds(at: now).start) })
        guard let earliest = starts.values.min() else { return }
        let records = try await store.records(since: Int(earliest), until: Int(now) + 1)
        let byPrefix = Dictionary(book.entries.values.map { ($0.key.prefix, $0) }, uniquingKeysWith: { a, _ in a })
        var totals: [Ledger.CounterKey: Double] = [:]
        for record in records {
            guard let entry = byPrefix[record.keyPrefix] else { continue }
            let principal = Principal(key: entry.key, tenantPlan: entry.tenantPlan, keyPlan: entry.keyPlan)
            let succeeded = record.status < 400
            let amounts: [String: Double] = [
                "requests": 1, "tokens": succeeded ? Double(record.tokens) : 0,
                "audio_seconds": succeeded ? record.audioSeconds : 0, "images": succeeded ? Double(record.images) : 0,
            ]
            let at = Double(record.at) / 1000
            for scope in principal.scopes(model: record.model) {
                for limit in scope.limits {
                    guard let window = LimitWindow(limit.window), let begins = starts[window], at >= begins else {
                        continue
                    }
                    let key = Ledger.CounterKey(scope: scope.name, kind: limit.kind, window: window)
                    totals[key, default: 0] +=
                        limit.kind == "units"
                        ? amounts.reduce(0) { $0 + $1.value * scope.prices($1.key) } : amounts[limit.kind] ?? 0
                }
            }
        }
        for (key, used) in totals { ledger.seed(key, start: starts[key.window]!, used: used) }
    }

    /// The principal of a request's credentials (`Authorization`, `api-key`): nil for an anonymous request the
    /// server accepts (not enforcing); throws 401 when enforcing and the key is missing or not valid.
    public func authenticate(authorization: String?, apiKey: String?) throws(TenancyError) -> Principal? {
        let enforcing = self.enforcing
        let secret: String?
        do {
            secret = try KeyBook.secret(authorization: authorization, apiKey: apiKey)
        } catch {
            if enforcing { throw error }
            return nil
        }
        guard let secret else {
            guard enforcing else { return nil }
            if book.withLock({ $0.isEmpty }) {
                throw TenancyError(
                    .unauthenticated,
                    "this server requires an API key and has none: create one with 'mass keys create'")
            }
            throw TenancyError(
                .unauthenticated, "no API key: send 'Authorization: Bearer <key>' (or an 'api-key' header)")
        }
        let now = Int((Date().timeIntervalSince1970 * 1000).rounded())
        do {
            return try book.withLock { b throws(TenancyError) in try b.principal(secret: secret, now: now) }
        } catch {
            if enforcing { throw error }
            return nil
        }
    }

    /// Checks the principal's role for a route family (403).
    public func authorize(_ principal: Principal?, role: String) throws(TenancyError) {
        guard enforcing else { return }
        guard let principal else { throw TenancyError(.unauthenticated, "no API key") }
        guard principal.key.roles.contains(role) else {
            throw TenancyError(
                .forbidden,
                "API key \(principal.key.prefix) has no '\(role)' role (it has \(principal.key.roles.joined(separator: ", ")))"
            )
        }
    }

    /// The account of one request of `principal`.
    public func ticket(for principal: Principal) -> RequestTicket { RequestTicket(principal: principal, gate: self) }

    /// Polls the change counter and flushes the meter until shutdown; then flushes what is left.
    public func run() async {
        await withGracefulShutdownHandler {
            var seen = book.withLock { $0.version }
            var failures = 0
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                try? await Task.sleep(for: pollInterval)
                do {
                    try await meter.flush()
                    failures = 0
                } catch {
                    failures += 1
                    if failures == 1 || failures % 60 == 0 {
                        logger.debug(
                            "usage flush failed; records kept",
                            metadata: ["pending": "\(meter.pending)", "error": "\(error)"])
                    }
                }
                if let counter = try? await store.changeCounter(), counter != seen {
                    try? await reload()
                    seen = book.withLock { $0.version }
                }
            }
        } onGracefulShutdown: {
        }
        await drain()
    }

    /// Writes every buffered record (tries for up to 5 s if the database is away).
    public func drain() async {
        for attempt in 0..<50 {
            do {
                try await meter.flush()
                return
            } catch {
                if attempt == 49 {
                    logger.debug("usage records lost at shutdown", metadata: ["count": "\(meter.pending)"])
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

extension TenancyGate: Service {}
