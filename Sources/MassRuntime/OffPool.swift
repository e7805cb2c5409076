import Foundation
import MassTensor
import Synchronization

/// Runs heavy synchronous work (loading a model, tokenizing a large request, decoding audio) on a bounded set of
/// threads of its own, so that it never occupies one of the few threads of Swift's cooperative pool, and so that
/// a thousand concurrent requests do not start a thousand threads: work beyond the pool's threads waits in its
/// queue, first come first served. Threads start on demand, up to `threadLimit`, and stay.
public enum OffPool {
    /// Threads at most: every core twice over (the work is compute, but a model load should not wait behind a
    /// burst of tokenization).
    public static let threadLimit = max(4, 2 * ProcessInfo.processInfo.activeProcessorCount)

    private struct State: ~Copyable {
        var queue: [@Sendable () -> Void] = []
        var head = 0
        var threads = 0
        var idle = 0
    }

    private static let state = Mutex(State())
    private static let wakeup = NSCondition()

    /// Threads started so far (for tests and metrics).
    public static var threadCount: Int { state.withLock { $0.threads } }

    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result { try body() }) }
        }
    }

    private static func submit(_ job: @escaping @Sendable () -> Void) {
        wakeup.lock()
        let start = state.withLock { s -> Bool in
            s.queue.append(job)
            guard s.idle == 0, s.threads < threadLimit else { return false }
            s.threads += 1
            return true
        }
        wakeup.signal()
        wakeup.unlock()
        if start {
            NamedThread.start("mass-offpool", stackSize: 8 << 20) { loop() }
        }
    }

    private static func loop() {
        while true {
            wakeup.lock()
            var job: (@Sendable () -> Void)?
            while job == nil {
                job = state.withLock { s -> (@Sendable () -> Void)? in
                    guard s.head < s.queue.count else { return nil }
                    defer {
                        s.head += 1
                        if s.head > 64 && s.head * 2 > s.queue.count {
                            s.queue.removeFirst(s.head)
                            s.head = 0
                        }
                    }
                    return s.queue[s.head]
                }
                if job == nil {
                    state.withLock { $0.idle += 1 }
                    wakeup.wait()
                    state.withLock { $0.idle -= 1 }
                }
            }
            wakeup.unlock()
            job?()
        }
    }
}
