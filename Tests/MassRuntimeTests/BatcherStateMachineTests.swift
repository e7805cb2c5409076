import MassRuntime
import Testing

@Suite struct BatcherStateMachineTests {
    typealias Machine = BatcherStateMachine<String>

    func machine(size: Int = 4, tokens: Int = 100, delay: Double = 0.010, queue: Int = 8) -> Machine {
        Machine(limits: .init(maxBatchSize: size, maxBatchTokens: tokens, maxQueueDelay: delay, maxQueueSize: queue))
    }

    @Test func waitsForTheQueueDelayThenSendsWhatIsThere() throws {
        var m = machine()
        _ = m.enqueue("a", tokens: 5, now: 0, deadline: 10)
        _ = m.enqueue("b", tokens: 5, now: 0.002, deadline: 10)
        let early = m.next(now: 0.005, idleWorkers: 1)
        #expect(early.batch == nil)
        #expect(early.wakeAt == 0.010)
        let later = m.next(now: 0.010, idleWorkers: 1)
        #expect(later.batch?.map(\.item) == ["a", "b"])
        #expect(m.queueDepth == 0)
    }

    @Test func aFullBatchLeavesAtOnce() {
        var m = machine(size: 3)
        for (i, name) in ["a", "b", "c", "d"].enumerated() {
            _ = m.enqueue(name, tokens: 1, now: Double(i) * 1e-4, deadline: 10)
        }
        let d = m.next(now: 0.0004, idleWorkers: 1)
        #expect(d.batch?.map(\.item) == ["a", "b", "c"])
        #expect(m.queueDepth == 1)
    }

    @Test func tokenBudgetCutsTheBatch() {
        var m = machine(size: 10, tokens: 100)
        _ = m.enqueue("a", tokens: 60, now: 0, deadline: 10)
        _ = m.enqueue("b", tokens: 50, now: 0, deadline: 10)
        // 60 + 50 is over the budget: "a" leaves alone, without waiting for the delay.
        let first = m.next(now: 0, idleWorkers: 1)
        #expect(first.batch?.map(\.item) == ["a"])
        // A request over the budget by itself still runs, alone.
        var n = machine(size: 10, tokens: 100)
        _ = n.enqueue("huge", tokens: 500, now: 0, deadline: 10)
        _ = n.enqueue("small", tokens: 1, now: 0, deadline: 10)
        let alone = n.next(now: 0, idleWorkers: 1)
        #expect(alone.batch?.map(\.item) == ["huge"])
    }

    @Test func fullQueueIsRefusedAtOnce() {
        var m = machine(queue: 2)
        #expect((try? m.enqueue("a", tokens: 1, now: 0, deadline: 1).get()) != nil)
        #expect((try? m.enqueue("b", tokens: 1, now: 0, deadline: 1).get()) != nil)
        guard case .failure(let error) = m.enqueue("c", tokens: 1, now: 0, deadline: 1) else {
            Issue.record("the third request was accepted")
            return
        }
        #expect(error.code == .queueFull)
    }

    @Test func expiredAndCancelledRequestsAreNeverComputed() throws {
        var m = machine(size: 8)
        _ = m.enqueue("late", tokens: 1, now: 0, deadline: 0.005)
        let leaving = try m.enqueue("gone", tokens: 1, now: 0, deadline: 10).get()
        _ = m.enqueue("ok", tokens: 1, now: 0, deadline: 10)
        let first = m.cancel(leaving)
        let second = m.cancel(leaving)
        #expect(first && !second)
        let d = m.next(now: 0.020, idleWorkers: 1)
        #expect(d.expired.map(\.item) == ["late"])
        #expect(d.batch?.map(\.item) == ["ok"])
    }

    @Test func noIdleWorkerMeansNoBatch() {
        var m = machine(size: 1)
        _ = m.enqueue("a", tokens: 1, now: 0, deadline: 10)
        let busy = m.next(now: 1, idleWorkers: 0)
        #expect(busy.batch == nil)
        #expect(m.queueDepth == 1)
        let free = m.next(now: 1, idleWorkers: 1)
        #expect(free.batch?.count == 1)
    }
}
