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
    public let encoder: TrainableBert
    public let tokenizer: Tokenizer
    public let headWeight: Variable
    public let headBias: Variable
    /// The encoder's tensors that are not trained (the unused pooler), written back unchanged on save.
    private let frozen: [(name: String, shape: [Int], values: [Float])]

    public var parameters: [Variable] { encoder.parameters.map(\.variable) + [headWeight, headBias] }

    /// Loads the encoder of a sentence-transformers folder and starts a head for `classes` labels (PyTorch's
    /// nn.Linear initialisation, from `seed`); `head` (weights `out.weight`, `out.bias`, e.g. a frozen-encoder
    /// run's) starts it from trained values instead.
    public init(
        directory: URL, classes: Int, seed: UInt64, dropout: Float = 0.1,
        head: [(name: String, shape: [Int], values: [Float])]? = nil
    ) throws {
        let pooling = directory.appendingPathComponent("1_Pooling/config.json")
        if let data = try? Data(contentsOf: pooling),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            json["pooling_mode_mean_tokens"] as? Bool != true
        {
            throw ModelError(.unsupported, "\(pooling.path): only mean pooling is trained")
        }
        let file = try SafeTensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
        encoder = try TrainableBert(directory: directory, file: file, prefix: "", dropout: dropout)
        tokenizer = try Tokenizer(contentsOf: directory.appendingPathComponent("tokenizer.json"))
        frozen = try file.names.filter { $0.hasPrefix("pooler.") }.map { name in
            let t = try file.tensor(name).toFloat32()
            return (name, t.shape, t.array)
        }
        let width = encoder.config.hiddenSize
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
        let encodings = texts.map { tokenizer.encode($0, maxLength: maxLength) }
        let length = encodings.map(\.ids.count).max() ?? 0
        let ids = encodings.map { $0.ids + [Int32](repeating: encoder.padId, count: length - $0.ids.count) }
        let types = encodings.map { $0.typeIds + [Int32](repeating: 0, count: length - $0.typeIds.count) }
        let mask = encodings.map { e in (0..<length).map { $0 < e.ids.count } }
        return (ids, types, mask)
    }

    /// The logits [batch, classes] of a padded batch: mean-pooled token states through the head.
    public func logits(
        ids: [[Int32]], typeIds: [[Int32]], mask: [[Bool]], generator: inout SeededGenerator
    ) -> Variable {
        encoder.hidden(ids: ids, typeIds: typeIds, mask: mask, generator: &generator).meanPooled(mask: mask)
            .dropout(encoder.dropout, generator: &generator).linear(headWeight, headBias)
    }

    /// Writes the fine-tuned encoder to `directory` as a sentence-transformers folder (the source's other files
    /// copied, `model.safetensors` replaced) and the head as `head.safetensors` (its input the mean-pooled token
    /// states; with `mass.labels` in `metadata` the folder serves as a text classifier).
    public func save(to directory: URL, copyingFrom source: URL, metadata: [String: String]) throws {
        try Checkpoint.copyFolder(
            source, to: directory, except: ["model.safetensors", "head.safetensors", "mass.json"])
        let tensors =
            encoder.parameters.map { ($0.name, $0.variable.shape, $0.variable.value) }
            + frozen.map { ($0.name, $0.shape, $0.values) }
        try Checkpoint.writeAtomically(
            SafeTensorsWriter.encode(tensors, metadata: ["format": "pt"].merging(metadata) { $1 }),
            to: directory.appendingPathComponent("model.safetensors"))
        try Checkpoint.writeAtomically(
            SafeTensorsWriter.encode(
                [("out.weight", headWeight.shape, headWeight.value), ("out.bias", headBias.shape, headBias.value)],
                metadata: metadata.merging(["mass.head_input": "mean_tokens"]) { $1 }),
            to: directory.appendingPathComponent("head.safetensors"))
    }
}
