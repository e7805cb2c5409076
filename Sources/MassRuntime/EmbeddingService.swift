import Foundation
public import MassModels
import MassTokenizers

/// A sentence-embedding model as `BatchingService` runs it: a request is its token sequences, its cost their
/// tokens, and a batch is all sequences of its requests, ragged.
public struct TextEmbeddingBatch: BatchModel {
    public let embedder: SentenceEmbedder

    public func makeLane(threads: Int) -> WorkerCompute { WorkerCompute(threads: threads) }
    public func cost(of item: [[Int32]]) -> Int { item.reduce(0) { $0 + $1.count } }

    public func run(_ items: [[[Int32]]], lane: WorkerCompute) throws -> [[[Float]]] {
        let embeddings = try lane.embed(items.flatMap { $0 }, model: embedder)
        var offset = 0
        return items.map { sequences in
            defer { offset += sequences.count }
            return Array(embeddings[offset..<(offset + sequences.count)])
        }
    }

    public var unitsMetric: (name: String, help: String) { ("mass_tokens_total", "Tokens processed.") }
}

/// Serves one loaded sentence-embedding model: texts are tokenized, then queued and batched by a
/// `BatchingService` on the service's own worker threads.
public final class EmbeddingService: Sendable {
    public struct Result: Sendable {
        public let embeddings: [[Float]]
        /// Tokens per input, special tokens included (after truncation).
        public let tokenCounts: [Int]
    }

    public typealias Statistics = BatchingService<TextEmbeddingBatch>.Statistics

    /// Requests with more UTF-8 bytes than this are tokenized on a thread of their own, not the caller's task.
    static let inlineTokenizeLimit = 16 << 10

    public let batcher: BatchingService<TextEmbeddingBatch>
    public var model: SentenceEmbedder { batcher.model.embedder }
    public var config: ModelConfig { batcher.config }
    public var statistics: Statistics { batcher.statistics }
    public var queueDepth: Int { batcher.queueDepth }

    public init(
        model: SentenceEmbedder, config: ModelConfig, name: String = "model", metrics: MetricsRegistry? = nil,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        batcher = BatchingService(
            model: TextEmbeddingBatch(embedder: model), config: config, name: name, metrics: metrics, threads: threads)
    }

    /// Embeds `texts` (one request); errors as `BatchingService.submit`.
    public func embed(_ texts: [String]) async throws -> Result {
        let model = self.model
        let sequences =
            texts.reduce(0, { $0 + $1.utf8.count }) <= Self.inlineTokenizeLimit
            ? texts.map { model.tokenize($0).ids }
            : try await OffPool.run(name: "mass-tokenize") { texts.map { model.tokenize($0).ids } }
        let embeddings = try await batcher.submit(sequences)
        return Result(embeddings: embeddings, tokenCounts: sequences.map(\.count))
    }

    /// Stops taking requests; queued ones are still computed.
    public func shutdown() { batcher.shutdown() }

    /// Returns once the workers have finished the queue and exited.
    public func waitUntilStopped() async { await batcher.waitUntilStopped() }
}
