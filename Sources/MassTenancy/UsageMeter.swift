import Foundation
public import MassRegistry
import Synchronization

/// Usage records on their way to the ledger: `add` only appends to a buffer (serving never waits for the
/// database); `flush` writes what is buffered in one transaction, and puts it back if the write fails, to be
/// retried (records carry ids, so a write that succeeded but reported failure is not counted twice).
public final class UsageMeter: Sendable {
    let store: TenancyStore
    private let buffer = Mutex<[UsageRecord]>([])
    private let observers = Mutex<[@Sendable (UsageRecord) -> Void]>([])
    /// Bounds the buffer while the database is away; beyond it the oldest records are dropped and counted.
    let capacity: Int
    private let dropped = Atomic<Int>(0)

    init(store: TenancyStore, capacity: Int = 1_000_000) {
        self.store = store
        self.capacity = capacity
    }

    /// Also hands every record to `observer` (the server's per-tenant counters).
    public func observe(_ observer: @escaping @Sendable (UsageRecord) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    func add(_ record: UsageRecord) {
        let overflow = buffer.withLock { b -> Int in
            b.append(record)
            guard b.count > capacity else { return 0 }
            let extra = b.count - capacity
            b.removeFirst(extra)
            return extra
        }
        if overflow > 0 { dropped.add(overflow, ordering: .relaxed) }
        for observer in observers.withLock({ $0 }) { observer(record) }
    }

    public var pending: Int { buffer.withLock { $0.count } }
    public var droppedRecords: Int { dropped.load(ordering: .relaxed) }

    /// Writes what is buffered. Throws (after putting the records back) when the database refuses.
    public func flush() async throws {
        let batch = buffer.withLock { b in
            defer { b.removeAll(keepingCapacity: true) }
            return b
        }
        guard !batch.isEmpty else { return }
        do {
            try await store.record(batch)
        } catch {
            buffer.withLock { $0.insert(contentsOf: batch, at: 0) }
            throw error
        }
    }
}
