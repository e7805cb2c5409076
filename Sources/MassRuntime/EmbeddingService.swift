import Foundation
public import MassModels
import MassTokenizers

/// A sentence-embedding model as `BatchingService` runs it: a request is its token sequences, its cost their
/// tokens, and a batch is all sequences of its requests, ragged.
public struct TextEmbeddingBatch: BatchModel {
    public let embedder: SentenceEmbedder

    public func makeLane(threads: Int) -> WorkerCompute { WorkerCompute(threads: threads) }
    public func rest(_ lane: WorkerCompute) { lane.rest() }
    public func cost(of item: [[Int32]]) -> Int { item.reduce(0) { $0 + $1.count } }

    public func run(_ items: [[[Int32]]], lane: WorkerCompute) throws -> [[[Float]]] {
        let embeddings = try lane.embed(items.flatMap { $0 }, model: embedder)
        var offset = 0
        return items.map { sequences in
            defer { offset += sequences.count }
            return Array(embeddings[offset..<(offset + sequences.count)])
        }
    }

    public func usage(of item: [[Int32]]) -> (kind: String, amount: Double)? {
        ("tokens", Double(cost(of: item)))
    }
    public var unitsMetric: (name: String, help: String) { ("mass_tokens_total", "Tokens processed.") }
}

/// The embeddings of one request and its token counts.
public struct EmbeddingResult: Sendable {
    public let embeddings: [[Float]]
    /// Tokens per input, special tokens included (after truncation).
    public let tokenCounts: [Int]

    public init(embeddings: [[Float]], tokenCounts: [Int]) {
        self.embeddings = embeddings
        self.tokenCounts = tokenCounts
    }
}

/// What the embedding routes need of a served model.
public protocol TextEmbeddingServing: ServedModel {
    var dimension: Int { get }
    /// Embeds `texts` (one request); errors as `BatchingService.submit`.
    func embed(_ texts: [String]) async throws -> EmbeddingResult
}

/// Serves one loaded sentence-embedding model: texts are tokenized, then queued and batched by a
/// `BatchingService` on the service's own worker threads.
public final class EmbeddingService: BatchedServedModel, TextEmbeddingServing {
    public typealias Result = EmbeddingResult
    public typealias Statistics = BatchingService<TextEmbeddingBatch>.Statistics

    public static let taskEntry = TaskRegistry.Entry(task: .textEmbedding) { model, context in
        guard let embedder = model as? SentenceEmbedder else { throw TaskRegistry.mismatch(model, .textEmbedding) }
        var adapter: LinearAdapter?
        if let file = context.config.adapter, let directory = context.directory {
            adapter = try LinearAdapter.load(directory.appendingPathComponent(file), file: file)
            guard adapter?.inputDimension == embedder.dimension else {
                throw RuntimeError(
                    .badConfig,
                    "\(file) maps \(adapter?.inputDimension ?? 0)-value vectors; the model gives \(embedder.dimension)")
            }
        }
        return EmbeddingService(
            model: embedder, config: context.config, name: context.identity.name, version: context.identity.version,
            metrics: context.metrics, threads: context.threads, adapter: adapter)
    }

    /// Requests with more UTF-8 bytes than this are tokenized on a thread of their own, not the caller's task.
    static let inlineTokenizeLimit = 16 << 10

    public let batcher: BatchingService<TextEmbeddingBatch>
    public var model: SentenceEmbedder { batcher.model.embedder }
    public var task: ModelTask { .textEmbedding }
    public var dimension: Int { adapter?.outputDimension ?? model.dimension }
    public var inputs: [TensorSpec] { [TensorSpec("text", "BYTES", [-1])] }
    public var outputs: [TensorSpec] { [TensorSpec("embedding", "FP32", [-1, dimension])] }
    /// The calibration map applied to the model's vectors (mass.json `adapter`).
    public let adapter: LinearAdapter?

    public init(
        model: SentenceEmbedder, config: ModelConfig, name: String = "model", version: Int = 1,
        metrics: MetricsRegistry? = nil, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        adapter: LinearAdapter? = nil
    ) {
        self.adapter = adapter
        batcher = BatchingService(
            model: TextEmbeddingBatch(embedder: model), config: config, name: name, version: version,
            metrics: metrics, threads: threads)
    }

    public func warmUp() async throws { _ = try await embed(["warm-up"]) }

    public func embed(_ texts: [String]) async throws -> EmbeddingResult {
        let model = self.model
        let sequences =
            texts.reduce(0, { $0 + $1.utf8.count }) <= Self.inlineTokenizeLimit
            ? texts.map { model.tokenize($0).ids }
            : try await OffPool.run { texts.map { model.tokenize($0).ids } }
        var embeddings = try await batcher.submit(sequences)
        if let adapter { embeddings = try adapter.apply(embeddings) }
        return EmbeddingResult(embeddings: embeddings, tokenCounts: sequences.map(\.count))
    }
}
