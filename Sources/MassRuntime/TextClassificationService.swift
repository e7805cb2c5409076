import Foundation
public import MassModels
import MassTensor
import MassTokenizers

/// A sequence-classification head as `BatchingService` runs it (text classification and rerank share it): a
/// request is its encodings (single texts or pairs, with type ids), its cost their tokens, and a batch runs every
/// encoding of its requests ragged through the encoder, then the pooler and classifier on their first tokens.
public struct SequenceScoringBatch: BatchModel {
    public let classifier: SequenceClassifier

    public final class Lane {
        let workspace = EncoderWorkspace()
        let pool: ComputePool
        init(threads: Int) { pool = ComputePool(threads: threads) }
    }

    public func makeLane(threads: Int) -> Lane { Lane(threads: threads) }
    public func rest(_ lane: Lane) { lane.pool.rest() }
    public func cost(of item: [Encoding]) -> Int { item.reduce(0) { $0 + $1.ids.count } }

    public func run(_ items: [[Encoding]], lane: Lane) throws -> [[[Float]]] {
        let logits = try classifier.logits(items.flatMap { $0 }, workspace: lane.workspace, pool: lane.pool)
        var offset = 0
        return items.map { item in
            defer { offset += item.count }
            return Array(logits[offset..<(offset + item.count)])
        }
    }

    public func usage(of item: [Encoding]) -> (kind: String, amount: Double)? {
        ("tokens", Double(cost(of: item)))
    }
    public var unitsMetric: (name: String, help: String) { ("mass_tokens_total", "Tokens processed.") }
}

/// One input of a text classifier: a text, or a pair of texts (the pair template, type ids 0 and 1).
public enum TextClassificationInput: Sendable, Equatable {
    case text(String)
    case pair(String, String)
}

/// What the text-classification routes need of a served model.
public protocol TextClassificationServing: ServedModel {
    /// Label names in logit order.
    var labels: [String] { get }
    /// Whether each label is scored on its own (sigmoid) rather than against the others (softmax).
    var multiLabel: Bool { get }
    /// Logits per input. With `truncate` false an input over the model's length is `.inputTooLong`.
    func classify(_ inputs: [TextClassificationInput], truncate: Bool) async throws -> [[Float]]
}

extension TextClassificationServing {
    /// Probabilities of one row of logits: softmax, or a sigmoid per label for multi-label models.
    public func scores(_ logits: [Float]) -> [Float] { SequenceClassifier.scores(logits, multiLabel: multiLabel) }
}

/// Serves one loaded sequence-classification model (`BertForSequenceClassification` with `id2label`).
public final class TextClassificationService: BatchedServedModel, TextClassificationServing {
    public static let taskEntry = TaskRegistry.Entry(task: .textClassification) { model, context in
        guard let classifier = model as? SequenceClassifier else {
            throw TaskRegistry.mismatch(model, .textClassification)
        }
        var adapter: LogitAdapter?
        if let file = context.config.adapter, let directory = context.directory {
            adapter = try LogitAdapter.load(directory.appendingPathComponent(file), file: file)
            guard adapter?.scale.count == classifier.labels.count else {
                throw RuntimeError(
                    .badConfig,
                    "\(file) maps \(adapter?.scale.count ?? 0) labels; the model has \(classifier.labels.count)")
            }
        }
        return TextClassificationService(classifier: classifier, context: context, adapter: adapter)
    }

    public let batcher: BatchingService<SequenceScoringBatch>
    public var classifier: SequenceClassifier { batcher.model.classifier }
    public var task: ModelTask { .textClassification }
    public var labels: [String] { classifier.labels }
    public var multiLabel: Bool { classifier.problemType == .multiLabel }
    public var inputs: [TensorSpec] { [TensorSpec("text", "BYTES", [-1])] }
    public var outputs: [TensorSpec] {
        [TensorSpec("logits", "FP32", [-1, labels.count]), TensorSpec("probabilities", "FP32", [-1, labels.count])]
    }

    /// The calibration map applied to the logits (mass.json `adapter`).
    public let adapter: LogitAdapter?

    public init(classifier: SequenceClassifier, context: ServingContext, adapter: LogitAdapter? = nil) {
        self.adapter = adapter
        batcher = BatchingService(
            model: SequenceScoringBatch(classifier: classifier), config: context.config, name: context.identity.name,
            version: context.identity.version, metrics: context.metrics, threads: context.threads)
    }

    public func warmUp() async throws { _ = try await classify([.text("warm-up")], truncate: true) }

    public func classify(_ inputs: [TextClassificationInput], truncate: Bool) async throws -> [[Float]] {
        let classifier = self.classifier
        let encodings = try SequenceScoringBatch.encode {
            try inputs.map { input in
                switch input {
                case .text(let text): try classifier.encode(text, truncate: truncate)
                case .pair(let a, let b): try classifier.encode(pair: a, b, truncate: truncate)
                }
            }
        }
        let logits = try await batcher.submit(encodings)
        return try adapter?.apply(logits) ?? logits
    }
}

extension SequenceScoringBatch {
    /// Runs tokenization, turning a model's input errors into the runtime's.
    static func encode(_ body: () throws -> [Encoding]) throws -> [Encoding] {
        do {
            return try body()
        } catch let error as ModelError {
            throw RuntimeError(error.code == .inputTooLong ? .inputTooLong : .invalidInput, error.message)
        }
    }
}
