import Synchronization

/// Wakes one waiting task when something arrives (a trial's report line), or lets it go after a timeout: the
/// job runner answers a report as soon as it is written instead of on its next poll. A signal with nobody
/// waiting is kept for the next wait.
final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        var timer: Task<Void, Never>?
        var generation = 0
    }

    private let state = Mutex(State())

    func signal() {
        let (waiter, timer) = state.withLock { state -> (CheckedContinuation<Void, Never>?, Task<Void, Never>?) in
            guard let waiter = state.waiter else {
                state.pending = true
                return (nil, nil)
            }
            defer { (state.waiter, state.timer) = (nil, nil) }
            return (waiter, state.timer)
        }
        timer?.cancel()
        waiter?.resume()
    }

    /// Returns when signalled (now, if a signal came since the last wait) or after `timeout`.
    func wait(timeout: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            state.withLock { state in
                if state.pending {
                    state.pending = false
                    return continuation.resume()
                }
                state.generation += 1
                state.waiter = continuation
                let generation = state.generation
                state.timer = Task {
                    try? await Task.sleep(for: timeout)
                    let expired = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                        guard state.generation == generation, let waiter = state.waiter else { return nil }
                        (state.waiter, state.timer) = (nil, nil)
                        return waiter
                    }
                    expired?.resume()
                }
            }
        }
    }
}
