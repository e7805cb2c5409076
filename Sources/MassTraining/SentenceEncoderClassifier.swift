public import Foundation
public import MassAutograd
import MassModels
import MassTensor
public import MassTokenizers
import MassWeights

/// A sentence-transformers encoder (BERT family, mean pooling) with a linear classification head on its pooled
/// embedding, every weight trainable: full fine-tuning of the encoder for a classification task. Saves the
/// fine-tuned encoder as a sentence-transformers folder (served as an embedding model unchanged) and the head
/// beside it.
public final class SentenceEncoderClassifier {
    public let body: TrainableSentenceEncoder
    public let headWeight: Variable
    public let headBias: Variable

    public var encoder: TrainableBert { body.bert }
    public var tokenizer: Tokenizer { body.tokenizer }
    public var parameters: [Variable] { encoder.parameters.map(\.variable) + [headWeight, headBias] }

    /// Loads the encoder of a sentence-transformers folder and starts a head for `classes` labels (PyTorch's
    /// nn.Linear initialisation, from `seed`); `head` (weights `out.weight`, `out.bias`, e.g. a frozen-encoder
    /// run's) starts it from trained values instead.
    public init(
        directory: URL, classes: Int, seed: UInt64, dropout: Float = 0.1,
        head: [(name: String, shape: [Int], values: [Float])]? = nil
    ) throws {
        body = try TrainableSentenceEncoder(directory: directory, dropout: dropout)
        let width = body.bert.config.hiddenSize
        if let head, head.count == 2, head[0].shape == [classes, width], head[1].shape == [classes] {
            headWeight = Variable(head[0].values, shape: head[0].shape, requiresGrad: true)
            headBias = Variable(head[1].values, shape: head[1].shape, requiresGrad: true)
        } else {
            var generator = SeededGenerator(seed: seed)
            let bound = 1 / Float(width).squareRoot()
            headWeight = Variable(
                (0..<(classes * width)).map { _ in Float.random(in: -bound...bound, using: &generator) },
                shape: [classes, width], requiresGrad: true)
            headBias = Variable([Float](repeating: 0, count: classes), shape: [classes], requiresGrad: true)
        }
    }

    /// Token ids and type ids of each text, at most `maxLength` tokens, padded into one batch with its mask.
    public func batch(_ texts: [String], maxLength: Int) -> (ids: [[Int32]], typeIds: [[Int32]], mask: [[Bool]]) {
        body.batch(texts, maxLength: maxLength)
    }

    /// The logits [batch, classes] of a padded batch: mean-pooled token states through the head.
    public func logits(
        ids: [[Int32]], typeIds: [[Int32]], mask: [[Bool]], generator: inout SeededGenerator
    ) -> Variable {
        body.pooled(ids: ids, typeIds: typeIds, mask: mask, generator: &generator)
            .dropout(encoder.dropout, generator: &generator).linear(headWeight, headBias)
    }

    /// Writes the fine-tuned encoder to `directory` as a sentence-transformers folder (the source's other files
    /// copied, `model.safetensors` replaced) and the head as `head.safetensors` (its input the mean-pooled token
    /// states; with `mass.labels` in `metadata` the folder serves as a text classifier).
    public func save(to directory: URL, copyingFrom source: URL, metadata: [String: String]) throws {
        try body.save(
            to: directory, copyingFrom: source, metadata: metadata, excluding: ["head.safetensors", "mass.json"])
        try Checkpoint.writeAtomically(
            SafeTensorsWriter.encode(
                [("out.weight", headWeight.shape, headWeight.value), ("out.bias", headBias.shape, headBias.value)],
                metadata: metadata.merging(["mass.head_input": "mean_tokens"]) { $1 }),
            to: directory.appendingPathComponent("head.safetensors"))
    }
}
