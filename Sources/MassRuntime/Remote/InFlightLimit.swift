import Synchronization

/// A counting semaphore whose waiters give up at a deadline or when their task is cancelled: the bound on calls
/// in flight to one provider.
final class InFlightLimit: Sendable {
    private struct State {
        var available: Int
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
        var next: UInt64 = 0
        /// Waiters that expired before they were queued.
        var expired: Set<UInt64> = []
    }

    private let state: Mutex<State>

    init(_ limit: Int) {
        state = Mutex(State(available: limit))
    }

    /// Takes a slot without waiting; false when none is free.
    func tryAcquire() -> Bool {
        state.withLock { s in
            guard s.available > 0 else { return false }
            s.available -= 1
            return true
        }
    }

    /// Takes a slot, waiting until `deadline` at most; false when none freed in time or the task was cancelled.
    func acquire(until deadline: ContinuousClock.Instant) async -> Bool {
        if tryAcquire() { return true }
        let id = state.withLock { s -> UInt64 in
            s.next += 1
            return s.next
        }
        let timer = Task {
            guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil else { return }
            self.expire(id)
        }
        defer {
            timer.cancel()
            _ = state.withLock { $0.expired.remove(id) }
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let granted = state.withLock { s -> Bool? in
                    if s.expired.remove(id) != nil { return false }
                    if s.available > 0 {
                        s.available -= 1
                        return true
                    }
                    s.waiters.append((id, continuation))
                    return nil
                }
                if let granted { continuation.resume(returning: granted) }
            }
        } onCancel: {
            self.expire(id)
        }
    }

    func release() {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            guard !s.waiters.isEmpty else {
                s.available += 1
                return nil
            }
            return s.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: true)
    }

    private func expire(_ id: UInt64) {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            guard let index = s.waiters.firstIndex(where: { $0.id == id }) else {
                s.expired.insert(id)
                return nil
            }
            return s.waiters.remove(at: index).continuation
        }
        waiter?.resume(returning: false)
    }
}
