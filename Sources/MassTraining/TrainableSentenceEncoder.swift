public import Foundation
public import MassAutograd
import MassModels
import MassTensor
public import MassTokenizers
import MassWeights

/// A sentence-transformers folder's encoder (BERT family, mean pooling) with every weight trainable, and its
/// tokenizer: what fine-tuning and distillation train. Optionally only some of the folder's layers (a student
/// initialised from its teacher). Saves back as a sentence-transformers folder the inference code serves
/// unchanged.
public final class TrainableSentenceEncoder {
    public let bert: TrainableBert
    public let tokenizer: Tokenizer
    /// The folder's tensors that are not trained (the unused pooler), written back unchanged on save.
    private let frozen: [(name: String, shape: [Int], values: [Float])]

    public var parameters: [(name: String, variable: Variable)] { bert.parameters }
    public var dropout: Float {
        get { bert.dropout }
        set { bert.dropout = newValue }
    }

    /// Loads the encoder of the sentence-transformers folder `directory`; with `layers`, only those of its layers
    /// (strictly increasing), renumbered from 0.
    public init(directory: URL, dropout: Float = 0, layers: [Int]? = nil) throws {
        let pooling = directory.appendingPathComponent("1_Pooling/config.json")
        if let data = try? Data(contentsOf: pooling),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            json["pooling_mode_mean_tokens"] as? Bool != true
        {
            throw ModelError(.unsupported, "\(pooling.path): only mean pooling is trained")
        }
        let file = try SafeTensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
        bert = try TrainableBert(directory: directory, file: file, prefix: "", dropout: dropout, layers: layers)
        tokenizer = try Tokenizer(contentsOf: directory.appendingPathComponent("tokenizer.json"))
        frozen = try file.names.filter { $0.hasPrefix("pooler.") }.map { name in
            let t = try file.tensor(name).toFloat32()
            return (name, t.shape, t.array)
        }
    }

    /// Token ids and type ids of each text, at most `maxLength` tokens, padded into one batch with its mask.
    public func batch(_ texts: [String], maxLength: Int) -> (ids: [[Int32]], typeIds: [[Int32]], mask: [[Bool]]) {
        let encodings = texts.map { tokenizer.encode($0, maxLength: maxLength) }
        let length = encodings.map(\.ids.count).max() ?? 0
        let ids = encodings.map { $0.ids + [Int32](repeating: bert.padId, count: length - $0.ids.count) }
        let types = encodings.map { $0.typeIds + [Int32](repeating: 0, count: length - $0.typeIds.count) }
        let mask = encodings.map { e in (0..<length).map { $0 < e.ids.count } }
        return (ids, types, mask)
    }

    /// The mean of the token states [batch, hidden] of a padded batch (not normalised).
    public func pooled(ids: [[Int32]], typeIds: [[Int32]], mask: [[Bool]], generator: inout SeededGenerator)
        -> Variable
    {
        bert.hidden(ids: ids, typeIds: typeIds, mask: mask, generator: &generator).meanPooled(mask: mask)
    }

    /// Writes the encoder to `directory` as a sentence-transformers folder: `source`'s other files linked or
    /// copied, `model.safetensors` replaced, and `config.json` rewritten when the encoder kept fewer layers.
    /// `excluding` names more of `source`'s files to leave out.
    public func save(
        to directory: URL, copyingFrom source: URL, metadata: [String: String], excluding: Set<String> = []
    ) throws {
        // Strictly increasing layers of the source: as many as it has means all of them.
        let rewritesConfig = (try? Self.layerCount(source)) != bert.sourceLayers.count
        try Checkpoint.copyFolder(
            source, to: directory,
            except: excluding.union(["model.safetensors"]).union(rewritesConfig ? ["config.json"] : []))
        if rewritesConfig {
            let file = source.appendingPathComponent("config.json")
            guard var json = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any] else {
                throw ModelError(.badConfig, "\(file.path): not a JSON object")
            }
            json["num_hidden_layers"] = bert.sourceLayers.count
            try Checkpoint.writeAtomically(
                JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]),
                to: directory.appendingPathComponent("config.json"))
        }
        let tensors =
            parameters.map { ($0.name, $0.variable.shape, $0.variable.value) }
            + frozen.map { ($0.name, $0.shape, $0.values) }
        try Checkpoint.writeAtomically(
            SafeTensorsWriter.encode(tensors, metadata: ["format": "pt"].merging(metadata) { $1 }),
            to: directory.appendingPathComponent("model.safetensors"))
    }

    /// `num_hidden_layers` of a folder's config.json.
    public static func layerCount(_ folder: URL) throws -> Int? {
        let json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: folder.appendingPathComponent("config.json")))
        return (json as? [String: Any])?["num_hidden_layers"] as? Int
    }
}
