import Foundation
import MassRegistry
import MassTesting
import Testing

/// The job queue on both backends: claims in order, heartbeats, cancel, finishing, retries of crashed runs,
/// stale jobs taken back from a worker that stopped sending heartbeats, and (PostgreSQL) concurrent workers that
/// never take the same job.
@Suite(.serialized) struct JobQueueTests {
    typealias Backend = RegistryTests.Backend

    struct Fixture {
        let registry: ModelRegistry
        let queue: JobQueue
        let inner: RegistryTests.Fixture

        static func make(_ backend: Backend) async throws -> Fixture {
            let inner = try await RegistryTests.Fixture.make(backend)
            return Fixture(registry: inner.registry, queue: JobQueue(database: inner.registry.database), inner: inner)
        }

        func close() async { await inner.close() }
    }

    static let config = JSONValue.object(["task": .string("text-classification-head"), "seed": .int(7)])

    @Test(arguments: Backend.allCases) func claimsInOrderAndFinishes(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        defer { Task { await f.close() } }
        let first = try await f.queue.submit(kind: "train", config: Self.config, actor: "ana")
        let second = try await f.queue.submit(kind: "train", config: Self.config, maxAttempts: 1, actor: "ben")
        #expect(first.state == .queued && first.attempts == 0 && first.config == Self.config)
        #expect(try await f.queue.claim(worker: "w", kinds: ["tune"], staleAfter: .seconds(60)) == nil)
        let claimed = try #require(try await f.queue.claim(worker: "w1", kinds: ["train"], staleAfter: .seconds(60)))
        #expect(claimed.id == first.id && claimed.state == .running && claimed.worker == "w1" && claimed.attempts == 1)
        #expect(
            try await f.queue.heartbeat(first.id, worker: "w1", progress: "step 1/4", lines: ["a", "b"]) == .running)
        #expect(try await f.queue.job(first.id).progress == "step 1/4")
        // Another worker cannot report on it.
        await #expect(throws: RegistryError.self) {
            try await f.queue.heartbeat(first.id, worker: "w2", progress: nil)
        }
        let done = try await f.queue.finish(
            first.id, worker: "w1", state: .succeeded, result: .object(["test_accuracy": .double(0.75)]))
        #expect(done.state == .succeeded && done.finishedAt != nil && done.result?["test_accuracy"] == .double(0.75))
        let lines = try await f.queue.logs(first.id).map(\.line)
        #expect(lines == ["submitted by ana", "attempt 1 of 3 on worker w1", "a", "b", "finished: succeeded"])
        #expect(try await f.queue.logs(first.id, after: try await f.queue.logs(first.id)[2].id).map(\.line).count == 2)
        // Finished jobs do not run again nor cancel.
        await #expect(throws: RegistryError.self) {
            try await f.queue.finish(first.id, worker: "w1", state: .failed)
        }
        await #expect(throws: RegistryError.self) { try await f.queue.cancel(first.id, actor: "ana") }
        // A crash is retried while attempts remain; the second job has one.
        let next = try #require(try await f.queue.claim(worker: "w1", kinds: ["train"], staleAfter: .seconds(60)))
        #expect(next.id == second.id)
        let failed = try await f.queue.finish(
            second.id, worker: "w1", state: .failed, error: "killed by signal 9", retry: true)
        #expect(failed.state == .failed && failed.error == "killed by signal 9")
        #expect(try await f.queue.claim(worker: "w1", kinds: ["train"], staleAfter: .seconds(60)) == nil)
        #expect(try await f.queue.jobs().map(\.id) == [second.id, first.id])
        #expect(try await f.queue.jobs(states: [.failed]).map(\.id) == [second.id])
        await #expect(throws: RegistryError.self) { try await f.queue.job(999) }
        await #expect(throws: RegistryError.self) {
            try await f.queue.submit(kind: "train", config: Self.config, maxAttempts: 0, actor: "ana")
        }
    }

    @Test(arguments: Backend.allCases) func cancelsQueuedAndRunningJobs(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        defer { Task { await f.close() } }
        let queued = try await f.queue.submit(kind: "train", config: Self.config, actor: "ana")
        let running = try await f.queue.submit(kind: "train", config: Self.config, actor: "ana")
        _ = try await f.queue.cancel(queued.id, actor: "ana")
        #expect(try await f.queue.job(queued.id).state == .cancelled)
        let claimed = try #require(try await f.queue.claim(worker: "w", kinds: ["train"], staleAfter: .seconds(60)))
        #expect(claimed.id == running.id)
        #expect(try await f.queue.cancel(running.id, actor: "ben").state == .running)
        #expect(try await f.queue.heartbeat(running.id, worker: "w", progress: nil) == .cancelRequested)
        // A cancelled run is not retried, even when reported as a crash.
        let ended = try await f.queue.finish(running.id, worker: "w", state: .failed, error: "terminated", retry: true)
        #expect(ended.state == .failed)
        #expect(try await f.queue.logs(running.id).map(\.line).contains("cancel requested by ben"))
    }

    @Test(arguments: Backend.allCases) func takesBackJobsWhoseWorkerStoppedBeating(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        defer { Task { await f.close() } }
        let job = try await f.queue.submit(kind: "train", config: Self.config, maxAttempts: 2, actor: "ana")
        _ = try #require(try await f.queue.claim(worker: "dead", kinds: ["train"], staleAfter: .seconds(60)))
        try await Task.sleep(for: .milliseconds(1100))
        // Within a minute the job stays the dead worker's; after one second without heartbeats it is taken back.
        #expect(try await f.queue.claim(worker: "alive", kinds: ["train"], staleAfter: .seconds(60)) == nil)
        let again = try #require(try await f.queue.claim(worker: "alive", kinds: ["train"], staleAfter: .seconds(1)))
        #expect(again.id == job.id && again.worker == "alive" && again.attempts == 2)
        #expect(try await f.queue.logs(job.id).map(\.line).contains { $0.hasPrefix("worker dead sent no heartbeat") })
        // The dead worker, back, finds it is no longer its job.
        await #expect(throws: RegistryError.self) { try await f.queue.heartbeat(job.id, worker: "dead", progress: nil) }
        // Its last attempt lost too: failed, not queued a third time.
        try await Task.sleep(for: .milliseconds(1100))
        #expect(try await f.queue.claim(worker: "third", kinds: ["train"], staleAfter: .seconds(1)) == nil)
        let lost = try await f.queue.job(job.id)
        #expect(lost.state == .failed && lost.error?.contains("on its last attempt") == true)
    }

    /// Two workers claiming at once from one PostgreSQL queue: every job claimed exactly once.
    @Test func concurrentWorkersNeverShareAJob() async throws {
        let f = try await Fixture.make(.postgresql)
        defer { Task { await f.close() } }
        var submitted: [Int] = []
        for _ in 0..<24 {
            submitted.append(try await f.queue.submit(kind: "train", config: Self.config, actor: "a").id)
        }
        let queue = f.queue
        let claims = try await withThrowingTaskGroup(of: [Int].self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var mine: [Int] = []
                    while let job = try await queue.claim(
                        worker: "w\(worker)", kinds: ["train"], staleAfter: .seconds(60))
                    {
                        mine.append(job.id)
                    }
                    return mine
                }
            }
            var all: [[Int]] = []
            for try await mine in group { all.append(mine) }
            return all
        }
        let claimed = claims.flatMap { $0 }
        #expect(claimed.count == 24 && Set(claimed) == Set(submitted))
        #expect(try await f.queue.jobs(states: [.running]).allSatisfy { $0.attempts == 1 })
    }
}
