import Foundation

/// A fixed set of compute threads that run one parallel loop at a time.
///
/// Heavy compute never runs on Swift's cooperative pool or on libdispatch's: `parallelFor` runs chunk 0 on the
/// calling thread and the others on the pool's own helper threads, and returns when all are done.
/// One pool belongs to one model worker; `parallelFor` must not be called from two threads at once.
public final class ComputePool: @unchecked Sendable {
    /// Number of threads that work on a loop, the caller included.
    public let threadCount: Int
    private let state: State

    /// Shared with the helper threads, which keep it alive after the pool is gone until they have exited.
    private final class State: @unchecked Sendable {
        // Every field is guarded by `condition`.
        let condition = NSCondition()
        var generation = 0
        var pending = 0
        var job: ((Int) -> Void)?
        var shuttingDown = false
    }

    public init(threads: Int) {
        threadCount = max(1, threads)
        state = State()
        for index in 1..<threadCount {
            let state = self.state
            let thread = Thread { ComputePool.helperLoop(state: state, index: index) }
            thread.name = "mass-compute-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    deinit {
        state.condition.lock()
        state.shuttingDown = true
        state.condition.broadcast()
        state.condition.unlock()
    }

    /// Runs `body(i)` for every `i` in `0..<count`, spread over the pool's threads in contiguous chunks.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        let workers = min(threadCount, count)
        if workers == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let chunk: (Int) -> Void = { worker in
                guard worker < workers else { return }
                for i in (worker * count / workers)..<((worker + 1) * count / workers) { body(i) }
            }
            let c = state.condition
            c.lock()
            state.job = chunk
            state.pending = threadCount - 1
            state.generation += 1
            c.broadcast()
            c.unlock()
            chunk(0)
            c.lock()
            while state.pending > 0 { c.wait() }
            state.job = nil
            c.unlock()
        }
    }

    private static func helperLoop(state: State, index: Int) {
        var seen = 0
        let c = state.condition
        while true {
            c.lock()
            while state.generation == seen && !state.shuttingDown { c.wait() }
            if state.shuttingDown {
                c.unlock()
                return
            }
            seen = state.generation
            var work = state.job
            c.unlock()
            work?(index)
            // Drop the reference before reporting done: the closure must not outlive `parallelFor`.
            work = nil
            c.lock()
            state.pending -= 1
            if state.pending == 0 { c.broadcast() }
            c.unlock()
        }
    }
}
