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

    // MARK: Fair queuing between flows (tenants)

    func drain(_ m: inout Machine, size: Int) -> [[String]] {
        var batches: [[String]] = []
        while let batch = m.next(now: 1, idleWorkers: 1).batch { batches.append(batch.map(\.item)) }
        return batches
    }

    @Test func oneFlowAloneIsFirstComeFirstServed() {
        var m = machine(size: 2, queue: 16)
        let flow = SchedulingFlow(name: "acme", weight: 3)
        for name in ["a", "b", "c", "d", "e"] {
            _ = m.enqueue(name, tokens: 1 + name.count, now: 0, deadline: 10, flow: flow)
        }
        #expect(drain(&m, size: 2) == [["a", "b"], ["c", "d"], ["e"]])
    }

    @Test func aLightFlowOvertakesAHeavyFlowsBacklog() {
        var m = machine(size: 2, tokens: 1000, queue: 64)
        let heavy = SchedulingFlow(name: "heavy")
        for i in 0..<20 { _ = m.enqueue("h\(i)", tokens: 10, now: 0, deadline: 10, flow: heavy) }
        _ = m.next(now: 1, idleWorkers: 1)  // h0 h1 run
        _ = m.enqueue("light", tokens: 10, now: 1, deadline: 10, flow: SchedulingFlow(name: "light"))
        let next = m.next(now: 1, idleWorkers: 1).batch?.map(\.item) ?? []
        #expect(next.contains("light"), "the light request waited behind the backlog: \(next)")
    }

    @Test func weightsShareTheModelInProportion() {
        var m = machine(size: 1, tokens: 1000, queue: 400)
        let gold = SchedulingFlow(name: "gold", weight: 3)
        let free = SchedulingFlow(name: "free", weight: 1)
        for i in 0..<100 {
            _ = m.enqueue("g\(i)", tokens: 10, now: 0, deadline: 10, flow: gold)
            _ = m.enqueue("f\(i)", tokens: 10, now: 0, deadline: 10, flow: free)
        }
        let first = drain(&m, size: 1).prefix(80).flatMap { $0 }
        let golds = first.filter { $0.hasPrefix("g") }.count
        #expect(golds == 60, "gold got \(golds) of the first 80 model calls; weight 3:1 gives 60")
    }

    @Test func batchClassWaitsForInteractive() {
        var m = machine(size: 1, queue: 16)
        _ = m.enqueue("nightly", tokens: 1, now: 0, deadline: 10, flow: SchedulingFlow(name: "etl", isBatch: true))
        _ = m.enqueue("chat", tokens: 1, now: 0.1, deadline: 10, flow: SchedulingFlow(name: "app"))
        #expect(drain(&m, size: 1) == [["chat"], ["nightly"]])
    }

    @Test func contentionShortensBatches() {
        var m = Machine(
            limits: .init(
                maxBatchSize: 32, maxBatchTokens: 1000, maxQueueDelay: 0, maxQueueSize: 64, contendedBatchTokens: 30))
        for i in 0..<10 { _ = m.enqueue("h\(i)", tokens: 10, now: 0, deadline: 10, flow: SchedulingFlow(name: "h")) }
        // Alone, the flow fills a batch up to the full budget.
        #expect(m.next(now: 0, idleWorkers: 1).batch?.count == 10)
        for i in 0..<10 { _ = m.enqueue("h\(i)", tokens: 10, now: 0, deadline: 10, flow: SchedulingFlow(name: "h")) }
        _ = m.enqueue("l", tokens: 10, now: 0, deadline: 10, flow: SchedulingFlow(name: "l"))
        // With a second flow waiting, a batch holds at most 30 tokens.
        #expect(m.next(now: 0, idleWorkers: 1).batch?.count == 3)
    }

    @Test func aRecentlyActiveFlowKeepsBatchesShortUntilItsWindowPasses() {
        var m = Machine(
            limits: .init(
                maxBatchSize: 32, maxBatchTokens: 1000, maxQueueDelay: 0, maxQueueSize: 64, contendedBatchTokens: 30,
                contentionWindow: 0.5))
        let heavy = SchedulingFlow(name: "h")
        _ = m.enqueue("l", tokens: 10, now: 0, deadline: 10, flow: SchedulingFlow(name: "l"))
        #expect(m.next(now: 0, idleWorkers: 1).batch?.map(\.item) == ["l"])
        // The light flow's request was answered and it is between requests: not in the queue, but active.
        for i in 0..<10 { _ = m.enqueue("h\(i)", tokens: 10, now: 0.1, deadline: 10, flow: heavy) }
        #expect(m.next(now: 0.1, idleWorkers: 1).batch?.count == 3)
        #expect(m.next(now: 0.5, idleWorkers: 1).batch?.count == 3)
        // Quiet for longer than the window: the heavy flow gets full batches again.
        #expect(m.next(now: 0.51, idleWorkers: 1).batch?.count == 4)
    }
}
