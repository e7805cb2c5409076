public import Foundation
public import MassAutograd
import MassModels
import MassWeights

/// BERT's embeddings and encoder layers with every weight a trainable `Variable`, named as the checkpoint names
/// them after `prefix` ("bert." inside BertForSequenceClassification, "" in a sentence-transformers folder).
public final class TrainableBert {
    public let config: BertConfiguration
    public let prefix: String
    /// The padding token's id: its embedding row gets no gradient (`padding_idx`).
    public let padId: Int32
    /// Dropout on embeddings, attention outputs and hidden states (BERT's `hidden_dropout_prob`); 0 turns it off.
    public var dropout: Float
    /// The parameters in `named_parameters()` order.
    public let parameters: [(name: String, variable: Variable)]
    private let byName: [String: Variable]

    /// The layers of the checkpoint this encoder's layers were read from, in order (all of them unless `layers`
    /// chose some: a student initialised from its teacher's layers).
    public let sourceLayers: [Int]

    /// Reads `config.json` of `directory` and the encoder's weights from `file`; with `layers`, only those layers
    /// of the checkpoint (strictly increasing), renumbered from 0.
    public init(directory: URL, file: SafeTensorsFile, prefix: String, dropout: Float = 0, layers: [Int]? = nil)
        throws
    {
        let configFile = directory.appendingPathComponent("config.json")
        let data: Data
        do { data = try Data(contentsOf: configFile) } catch {
            throw ModelError(.missingFile, "\(configFile.path): cannot read (\(error.localizedDescription))")
        }
        var config: BertConfiguration
        do { config = try JSONDecoder().decode(BertConfiguration.self, from: data) } catch {
            throw ModelError(.badConfig, "\(configFile.path): not a BERT config.json (\(error))")
        }
        try config.validate(file: configFile.path)
        let sourceLayers = layers ?? Array(0..<config.numHiddenLayers)
        guard !sourceLayers.isEmpty, sourceLayers.allSatisfy({ (0..<config.numHiddenLayers).contains($0) }),
            zip(sourceLayers, sourceLayers.dropFirst()).allSatisfy({ $0 < $1 })
        else {
            throw ModelError(
                .badConfig,
                "layers \(sourceLayers): the layers to keep must be strictly increasing, from 0 to \(config.numHiddenLayers - 1)"
            )
        }
        config.numHiddenLayers = sourceLayers.count
        self.sourceLayers = sourceLayers
        self.config = config
        self.prefix = prefix
        let extra = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        padId = Int32(extra?["pad_token_id"] as? Int ?? 0)
        self.dropout = dropout
        var parameters: [(name: String, variable: Variable)] = []
        let stored = Self.parameterNames(layers: sourceLayers, prefix: prefix)
        for (name, source) in zip(Self.parameterNames(layers: Array(0..<sourceLayers.count), prefix: prefix), stored) {
            parameters.append((name, try Variable(parameter: try file.tensor(source))))
        }
        self.parameters = parameters
        byName = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.variable) })
        try check()
    }

    /// The checkpoint names of the embeddings and `layers` in `named_parameters()` order.
    static func parameterNames(layers: [Int], prefix: String) -> [String] {
        var names = ["word_embeddings", "position_embeddings", "token_type_embeddings"].map {
            "\(prefix)embeddings.\($0).weight"
        }
        names += ["\(prefix)embeddings.LayerNorm.weight", "\(prefix)embeddings.LayerNorm.bias"]
        for l in layers {
            let p = "\(prefix)encoder.layer.\(l)."
            for part in [
                "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm",
            ] {
                names += [p + part + ".weight", p + part + ".bias"]
            }
        }
        return names
    }

    /// Every weight has the shape the configuration implies.
    private func check() throws {
        let (h, i) = (config.hiddenSize, config.intermediateSize)
        var expected: [String: [Int]] = [
            "\(prefix)embeddings.word_embeddings.weight": [config.vocabSize, h],
            "\(prefix)embeddings.position_embeddings.weight": [config.maxPositionEmbeddings, h],
            "\(prefix)embeddings.token_type_embeddings.weight": [config.typeVocabSize, h],
        ]
        for l in 0..<config.numHiddenLayers {
            let p = "\(prefix)encoder.layer.\(l)."
            for part in [
                "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
            ] {
                expected[p + part + ".weight"] = [h, h]
            }
            expected[p + "intermediate.dense.weight"] = [i, h]
            expected[p + "output.dense.weight"] = [h, i]
        }
        for (name, shape) in expected where byName[name]!.shape != shape {
            throw ModelError(.badConfig, "model.safetensors: '\(name)' has shape \(byName[name]!.shape), not \(shape)")
        }
    }

    /// A parameter by its name after the prefix ("encoder.layer.0.output.dense.weight").
    public func parameter(_ name: String) -> Variable { byName[prefix + name]! }

    /// The last layer's token states [batch · length, hidden] of a padded batch: token ids, type ids and mask, each
    /// [batch][length]; `generator` draws the dropout masks.
    public func hidden(
        ids: [[Int32]], typeIds: [[Int32]], mask: [[Bool]], generator: inout SeededGenerator
    ) -> Variable {
        let batch = ids.count
        let length = ids.first?.count ?? 0
        precondition(ids.allSatisfy { $0.count == length } && length <= config.maxPositionEmbeddings)
        var x =
            Variable.embedding(ids.flatMap { $0 }, parameter("embeddings.word_embeddings.weight"), paddingIndex: padId)
            + Variable.embedding(
                (0..<batch).flatMap { _ in (0..<Int32(length)).map { $0 } },
                parameter("embeddings.position_embeddings.weight"))
            + Variable.embedding(typeIds.flatMap { $0 }, parameter("embeddings.token_type_embeddings.weight"))
        x = x.layerNorm(
            parameter("embeddings.LayerNorm.weight"), parameter("embeddings.LayerNorm.bias"), eps: config.layerNormEps)
        x = x.dropout(dropout, generator: &generator)
        for l in 0..<config.numHiddenLayers {
            let q = "encoder.layer.\(l)."
            func dense(_ part: String, _ input: Variable) -> Variable {
                input.linear(parameter(q + part + ".weight"), parameter(q + part + ".bias"))
            }
            func norm(_ part: String, _ input: Variable) -> Variable {
                input.layerNorm(
                    parameter(q + part + ".LayerNorm.weight"), parameter(q + part + ".LayerNorm.bias"),
                    eps: config.layerNormEps)
            }
            let context = Variable.attention(
                dense("attention.self.query", x), dense("attention.self.key", x), dense("attention.self.value", x),
                heads: config.numAttentionHeads, mask: mask)
            x = norm(
                "attention.output", dense("attention.output.dense", context).dropout(dropout, generator: &generator) + x
            )
            let inner = dense("intermediate.dense", x).gelu()
            x = norm("output", dense("output.dense", inner).dropout(dropout, generator: &generator) + x)
        }
        return x
    }
}

/// A BERT sequence classifier (Hugging Face `BertForSequenceClassification`: BertModel, the tanh pooler over the
/// [CLS] token, a linear head) whose every weight is a trainable `Variable`, for fine-tuning on Mass's engine. It
/// reads and names its weights as the checkpoint does (`bert.encoder.layer.0.attention.self.query.weight`, ...),
/// so a trained model is saved in the same layout and served by the inference code unchanged.
public final class BertClassifier {
    public let encoder: TrainableBert
    public var config: BertConfiguration { encoder.config }
    /// The parameters in the checkpoint's order (PyTorch's `named_parameters()`).
    public let parameters: [(name: String, variable: Variable)]
    private let byName: [String: Variable]
    public let labelCount: Int
    public var dropout: Float {
        get { encoder.dropout }
        set { encoder.dropout = newValue }
    }

    /// Loads `config.json` and `model.safetensors` of a `save_pretrained` folder.
    public init(directory: URL, dropout: Float = 0) throws {
        let file = try SafeTensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
        encoder = try TrainableBert(directory: directory, file: file, prefix: "bert.", dropout: dropout)
        var parameters = encoder.parameters
        for name in ["bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"] {
            parameters.append((name, try Variable(parameter: try file.tensor(name))))
        }
        self.parameters = parameters
        byName = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.variable) })
        labelCount = byName["classifier.bias"]!.count
        let h = encoder.config.hiddenSize
        for (name, shape) in [("bert.pooler.dense.weight", [h, h]), ("classifier.weight", [labelCount, h])]
        where byName[name]!.shape != shape {
            throw ModelError(.badConfig, "model.safetensors: '\(name)' has shape \(byName[name]!.shape), not \(shape)")
        }
    }

    public func parameter(_ name: String) -> Variable { byName[name]! }

    /// The logits [batch, labels] of a padded batch: token ids, type ids and mask, each [batch][length] (every
    /// sequence padded to one length); `generator` draws the dropout masks.
    public func logits(
        ids: [[Int32]], typeIds: [[Int32]], mask: [[Bool]], generator: inout SeededGenerator
    ) -> Variable {
        let x = encoder.hidden(ids: ids, typeIds: typeIds, mask: mask, generator: &generator)
        let pooled = x.firstTokens(batch: ids.count).linear(
            parameter("bert.pooler.dense.weight"), parameter("bert.pooler.dense.bias")
        ).tanh()
        return pooled.dropout(dropout, generator: &generator).linear(
            parameter("classifier.weight"), parameter("classifier.bias"))
    }
}
