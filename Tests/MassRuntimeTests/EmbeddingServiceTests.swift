import Foundation
import MassModels
import MassRuntime
import MassTesting
import Testing

/// The runtime with the real model: concurrent requests are batched, results equal the golden embeddings,
/// a full queue is refused at once, and shutdown finishes what was accepted.
@Suite(.serialized) struct EmbeddingServiceTests {
    static let model: SentenceEmbedder? = try? SentenceEmbedder(
        directory: MiniLMFixture.modelDirectory, encoder: BertModel.encoder)

    func service(_ json: String) throws -> EmbeddingService {
        let model = try #require(Self.model, "run 'make models' first")
        return EmbeddingService(model: model, config: try ModelConfig.parse(Data(json.utf8), file: "mass.json"))
    }

    @Test func concurrentRequestsAreBatchedAndExact() async throws {
        let service = try service(
            #"{"task": "text-embedding", "batching": {"max_batch_size": 16, "max_queue_delay_ms": 50}}"#)
        defer { service.shutdown() }
        let cases = try MiniLMFixture.load().cases
        let results = try await withThrowingTaskGroup(of: (Int, EmbeddingService.Result).self) { group in
            for (i, text) in cases.map(\.text).enumerated() {
                group.addTask {
                    let result = try await service.embed([text])  // awaited first: swiftlang/swift#91911
                    return (i, result)
                }
            }
            var out: [Int: EmbeddingService.Result] = [:]
            for try await (i, r) in group { out[i] = r }
            return out
        }
        for (i, c) in cases.enumerated() {
            let r = try #require(results[i])
            #expect(r.tokenCounts == [c.n_tokens])
            #expect(Comparison.maxAbsDiff(r.embeddings[0], c.embedding) <= 1e-4, "case \(c.id)")
        }
        let stats = service.statistics
        #expect(stats.requests == cases.count)
        #expect(stats.largestBatch > 1, "26 concurrent requests with a 50 ms queue delay should share batches")
    }

    @Test func fullQueueIsRefusedAtOnce() async throws {
        // One slot and a long queue delay (5 s, so that a loaded machine cannot outlast it): the first request
        // waits in the queue, the second is refused.
        let service = try service(
            #"{"task": "text-embedding", "max_queue_size": 1, "batching": {"max_queue_delay_ms": 5000}}"#)
        defer { service.shutdown() }
        async let first = service.embed(["hello"])
        // Wait (under test-suite load this can take a while) until the first request sits in the queue.
        for _ in 0..<800 where service.queueDepth == 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(service.queueDepth == 1)
        await #expect(throws: RuntimeError.self) { _ = try await service.embed(["world"]) }
        #expect(try await first.embeddings.count == 1)
    }

    /// A caller already gone when it submits is never computed (its cancellation came before the queue knew it).
    @Test func requestCancelledBeforeSubmittingIsNotComputed() async throws {
        let service = try service(#"{"task": "text-embedding", "batching": {"max_queue_delay_ms": 200}}"#)
        defer { service.shutdown() }
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await service.embed(["never computed"])
        }
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        try await Task.sleep(for: .milliseconds(400))
        #expect(service.statistics.batches == 0 && service.queueDepth == 0)
    }

    @Test func expiredRequestsAreDroppedBeforeCompute() async throws {
        let service = try service(
            #"{"task": "text-embedding", "request_timeout_ms": 5, "batching": {"max_queue_delay_ms": 100}}"#)
        defer { service.shutdown() }
        let error = await #expect(throws: RuntimeError.self) { _ = try await service.embed(["too slow"]) }
        #expect(error?.code == .deadlineExceeded)
        #expect(service.statistics.batches == 0)
    }
}
