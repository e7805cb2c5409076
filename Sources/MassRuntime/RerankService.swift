import Foundation
public import MassModels

/// What the rerank routes need of a served model: a relevance logit per (query, text) pair.
public protocol RerankServing: ServedModel {
    /// One logit per text, in order. With `truncate` false a pair over the model's length is `.inputTooLong`.
    func rerank(query: String, texts: [String], truncate: Bool) async throws -> [Float]
}

/// Serves one cross-encoder (`BertForSequenceClassification` with one label): each (query, text) pair is encoded
/// with the tokenizer's pair template and scored by the same batched head as text classification.
public final class RerankService: BatchedServedModel, RerankServing {
    public static let taskEntry = TaskRegistry.Entry(task: .rerank) { model, context in
        guard let classifier = model as? SequenceClassifier else { throw TaskRegistry.mismatch(model, .rerank) }
        return RerankService(classifier: classifier, context: context)
    }

    public let batcher: BatchingService<SequenceScoringBatch>
    public var classifier: SequenceClassifier { batcher.model.classifier }
    public var task: ModelTask { .rerank }
    public var inputs: [TensorSpec] { [TensorSpec("query", "BYTES", [1]), TensorSpec("texts", "BYTES", [-1])] }
    public var outputs: [TensorSpec] { [TensorSpec("logits", "FP32", [-1]), TensorSpec("scores", "FP32", [-1])] }

    public init(classifier: SequenceClassifier, context: ServingContext) {
        batcher = BatchingService(
            model: SequenceScoringBatch(classifier: classifier), config: context.config, name: context.identity.name,
            version: context.identity.version, metrics: context.metrics, threads: context.threads)
    }

    public func warmUp() async throws { _ = try await rerank(query: "warm-up", texts: ["warm-up"], truncate: true) }

    public func rerank(query: String, texts: [String], truncate: Bool) async throws -> [Float] {
        let classifier = self.classifier
        let encodings = try SequenceScoringBatch.encode {
            try texts.map { try classifier.encode(pair: query, $0, truncate: truncate) }
        }
        return try await batcher.submit(encodings).map { $0[0] }
    }
}
