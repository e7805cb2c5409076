internal import CMassBLAS
import Foundation
import Synchronization

/// A fixed set of compute threads that run one parallel loop at a time.
///
/// Heavy compute never runs on Swift's cooperative pool or on libdispatch's: `parallelFor` runs chunk 0 on the
/// calling thread and the others on the pool's own helper threads, and returns when all are done.
/// A forward pass runs dozens of short loops, so helpers spin for a while before sleeping: a sleep/wake round
/// trip costs more than most of those loops. When the owner has no more work for now (a batch is answered), it
/// calls `rest()` and the helpers sleep at once instead of spinning: CPU that nobody asked for is a cost.
/// One pool belongs to one model worker; `parallelFor` must not be called from two threads at once.
public final class ComputePool: @unchecked Sendable {
    /// Number of threads that work on a loop, the caller included.
    public let threadCount: Int
    private let state: State

    /// Shared with the helper threads, which keep it alive after the pool is gone until they have exited.
    private final class State: @unchecked Sendable {
        /// Bumped (releasing) after `job` is set; helpers acquire it before reading `job`.
        let generation = Atomic<Int>(0)
        /// Helpers still running the current job.
        let pending = Atomic<Int>(0)
        let shuttingDown = Atomic<Bool>(false)
        /// Set by `rest()`: spinning helpers go to sleep now. Cleared by the next `parallelFor`.
        let resting = Atomic<Bool>(false)
        /// Written only by the caller of `parallelFor` while no helper runs a job.
        var job: ((Int) -> Void)?
        /// Guards sleeping; `sleepers` counts helpers blocked on `condition`.
        let condition = NSCondition()
        var sleepers = 0
    }

    /// Pools that pin their threads take consecutive cores from here, so that two models' pools start apart.
    private static let nextCore = Atomic<Int>(0)
    /// The core of the caller's thread when pinned (pinned at its first `parallelFor`), else nil.
    private let callerCore: Int?
    private var callerPinned = false

    /// `pinned`: each thread of the pool is bound to its own core (the caller's thread at its first
    /// `parallelFor`). A helper woken from sleep is otherwise often placed by the scheduler on the waking thread's
    /// core, where the two then take turns instead of running in parallel.
    public init(threads: Int, pinned: Bool = false) {
        threadCount = max(1, threads)
        state = State()
        let base = pinned && threadCount > 1 ? Self.nextCore.wrappingAdd(threadCount, ordering: .relaxed).oldValue : nil
        callerCore = base
        for index in 1..<threadCount {
            let state = self.state
            let core = base.map { $0 + index }
            NamedThread.start("mass-compute-\(index)", stackSize: 1 << 20) {
                if let core { _ = cmass_pin_current_thread(Int32(core)) }
                ComputePool.helperLoop(state: state, index: index)
            }
        }
    }

    deinit {
        state.shuttingDown.store(true, ordering: .releasing)
        state.condition.lock()
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
        if let callerCore, !callerPinned {
            _ = cmass_pin_current_thread(Int32(callerCore))
            callerPinned = true
        }
        withoutActuallyEscaping(body) { body in
            let chunk: (Int) -> Void = { worker in
                guard worker < workers else { return }
                for i in (worker * count / workers)..<((worker + 1) * count / workers) { body(i) }
            }
            state.job = chunk
            state.resting.store(false, ordering: .relaxed)
            state.pending.store(threadCount - 1, ordering: .relaxed)
            state.generation.add(1, ordering: .releasing)
            state.condition.lock()
            if state.sleepers > 0 { state.condition.broadcast() }
            state.condition.unlock()
            chunk(0)
            var spins = 0
            while state.pending.load(ordering: .acquiring) > 0 { Self.spinPause(&spins) }
            state.job = nil
        }
    }

    /// Tells the helpers that no loop follows soon: they stop spinning and sleep until the next `parallelFor`.
    /// Call it when a unit of work (a batch) is done; without it each helper spins for up to a few milliseconds.
    public func rest() {
        state.resting.store(true, ordering: .releasing)
    }

    /// Busy-waits cheaply (`pause`) at first, then yields the core: on 2 cores another process may need it.
    @inline(__always)
    private static func spinPause(_ spins: inout Int) {
        spins += 1
        if spins < 20_000 { cmass_cpu_relax() } else { sched_yield() }
    }

    private static func helperLoop(state: State, index: Int) {
        var seen = 0
        while true {
            // Spin first: the next loop of a forward pass usually starts within microseconds.
            var spins = 0
            while state.generation.load(ordering: .acquiring) == seen && !state.shuttingDown.load(ordering: .acquiring)
            {
                if spins < 40_000 && !state.resting.load(ordering: .acquiring) {
                    spinPause(&spins)
                    continue
                }
                state.condition.lock()
                state.sleepers += 1
                while state.generation.load(ordering: .acquiring) == seen
                    && !state.shuttingDown.load(ordering: .acquiring)
                {
                    state.condition.wait()
                }
                state.sleepers -= 1
                state.condition.unlock()
            }
            if state.shuttingDown.load(ordering: .acquiring) { return }
            seen = state.generation.load(ordering: .acquiring)
            var work = state.job
            work?(index)
            // Drop the reference before reporting done: the closure must not outlive `parallelFor`.
            work = nil
            state.pending.subtract(1, ordering: .releasing)
        }
    }
}
