import Foundation
// BERT encoder, after Hugging Face transformers `models/bert/modeling_bert.py` (BertModel, post-LayerNorm).
// Names: embeddings.{word,position,token_type}_embeddings, encoder.layer.N.attention.self.{query,key,value},
// attention.output.dense / LayerNorm, intermediate.dense, output.dense / LayerNorm — as in the checkpoint.
// The layers are `PostNormEncoder`'s (fused QKV, ragged batches without padding); this file owns the embeddings.
public import MassTensor
public import MassWeights

/// `config.json` of a BERT checkpoint (the keys the encoder needs).
public struct BertConfiguration: Codable, Sendable {
    public var modelType: String?
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var hiddenAct: String
    public var layerNormEps: Float
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var vocabSize: Int
    public var positionEmbeddingType: String?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size"
        case vocabSize = "vocab_size"
        case positionEmbeddingType = "position_embedding_type"
    }

    public var headDimension: Int { hiddenSize / numAttentionHeads }

    /// Rejects what the encoder does not implement, naming the key.
    public func validate(file: String) throws {
        func bad(_ key: String, _ why: String) -> ModelError { ModelError(.unsupported, "\(file): '\(key)' \(why)") }
        guard hiddenAct == "gelu" else {
            throw bad("hidden_act", "is '\(hiddenAct)'; only 'gelu' (erf) is implemented")
        }
        guard (positionEmbeddingType ?? "absolute") == "absolute" else {
            throw bad("position_embedding_type", "must be 'absolute'")
        }
        guard hiddenSize > 0, numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw bad("num_attention_heads", "must divide hidden_size")
        }
        guard hiddenSize % 8 == 0, intermediateSize > 0, numHiddenLayers > 0, maxPositionEmbeddings > 0,
            typeVocabSize > 0, vocabSize > 0
        else { throw bad("hidden_size", "must be a positive multiple of 8, and every size positive") }
    }
}

/// The BERT encoder with its weights in fp32 (or int8 from a compressed file), laid out for the kernels.
public final class BertModel: TextEncoder, @unchecked Sendable {  // weights are immutable after init
    public let config: BertConfiguration

    let wordEmbeddings, positionEmbeddings, tokenTypeEmbeddings, embeddingGamma, embeddingBeta: Tensor
    let encoder: PostNormEncoder

    public init(
        config: BertConfiguration, weights: any WeightSource, configFile: String = "config.json",
        precision: Linear.Precision = .float32
    ) throws {
        try config.validate(file: configFile)
        try BLAS.load()
        self.config = config
        let h = config.hiddenSize
        // Checkpoints saved from BertForX prefix every name with "bert.".
        let prefix = weights.names.contains("bert.embeddings.word_embeddings.weight") ? "bert." : ""
        func w(_ name: String, _ shape: [Int]) throws -> Tensor { try weights.float32(prefix + name, shape: shape) }
        wordEmbeddings = try w("embeddings.word_embeddings.weight", [config.vocabSize, h])
        positionEmbeddings = try w("embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, h])
        tokenTypeEmbeddings = try w("embeddings.token_type_embeddings.weight", [config.typeVocabSize, h])
        embeddingGamma = try w("embeddings.LayerNorm.weight", [h])
        embeddingBeta = try w("embeddings.LayerNorm.bias", [h])
        encoder = try PostNormEncoder(
            weights: weights, prefix: prefix, count: config.numHiddenLayers, hidden: h,
            intermediate: config.intermediateSize, heads: config.numAttentionHeads, eps: config.layerNormEps,
            precision: precision
        ) { i in
            let p = "encoder.layer.\(i)."
            return .init(
                query: p + "attention.self.query", key: p + "attention.self.key", value: p + "attention.self.value",
                out: p + "attention.output.dense", norm1: p + "attention.output.LayerNorm",
                up: p + "intermediate.dense", down: p + "output.dense", norm2: p + "output.LayerNorm")
        }
    }

    /// Runs the encoder on a ragged batch: `sequences[i]` are token ids (special tokens included, at most
    /// `max_position_embeddings` long) and `typeIds[i]`, when given, their segments (token type ids; all 0 without).
    /// Returns the last hidden state of all tokens, concatenated in order: [Σ lengths, hidden], valid until the
    /// workspace is used again. `observe(layer, states)`, when given, sees the hidden states after the embeddings
    /// (layer 0) and after each encoder layer.
    public func forward(
        _ sequences: [[Int32]], typeIds: [[Int32]]? = nil, workspace ws: EncoderWorkspace, pool: ComputePool,
        observe: ((Int, UnsafePointer<Float>) -> Void)? = nil
    ) throws -> UnsafePointer<Float> {
        let (total, longest, offsets) = try TextEncoderInput.check(
            sequences, vocabulary: config.vocabSize, maxLength: config.maxPositionEmbeddings)
        if let typeIds {
            guard typeIds.count == sequences.count, zip(typeIds, sequences).allSatisfy({ $0.count == $1.count }) else {
                throw ModelError(.invalidInput, "token type ids must match the token ids one for one")
            }
            if let bad = typeIds.lazy.flatMap({ $0 }).first(where: { $0 < 0 || Int($0) >= config.typeVocabSize }) {
                throw ModelError(
                    .invalidInput, "token type id \(bad) is outside 0..<\(config.typeVocabSize) (type_vocab_size)")
            }
        }
        encoder.reserve(ws, total: total, longest: longest, pool: pool)
        embed(sequences, typeIds: typeIds, offsets: offsets, into: ws.hidden, pool: pool)
        observe?(0, ws.hidden)
        encoder.run(lengths: sequences.map(\.count), offsets: offsets, ws: ws, pool: pool, observe: observe)
        return UnsafePointer(ws.hidden)
    }

    private func embed(
        _ sequences: [[Int32]], typeIds: [[Int32]]?, offsets: [Int], into x: UnsafeMutablePointer<Float>,
        pool: ComputePool
    ) {
        let h = config.hiddenSize
        pool.parallelFor(sequences.count) { s in
            for (t, id) in sequences[s].enumerated() {
                let row = x + (offsets[s] + t) * h
                row.update(from: wordEmbeddings.floats + Int(id) * h, count: h)
                Kernels.add(positionEmbeddings.floats + t * h, to: row, count: h)
                let type = typeIds.map { Int($0[s][t]) } ?? 0
                Kernels.add(tokenTypeEmbeddings.floats + type * h, to: row, count: h)
            }
            Kernels.layerNorm(
                x + offsets[s] * h, rows: sequences[s].count, cols: h, gamma: embeddingGamma.floats,
                beta: embeddingBeta.floats, eps: config.layerNormEps)
        }
    }
}

extension BertModel {
    public var hiddenSize: Int { config.hiddenSize }
    public var maxPositions: Int { config.maxPositionEmbeddings }

    public func hiddenStates(
        _ sequences: [[Int32]], typeIds: [[Int32]]?, workspace: EncoderWorkspace, pool: ComputePool
    ) throws -> UnsafePointer<Float> {
        try forward(sequences, typeIds: typeIds, workspace: workspace, pool: pool)
    }

    public func forwardFlops(lengths: [Int]) -> Double {
        encoder.flops(lengths: lengths)
    }

    /// Loads the encoder of a `model_type` "bert" folder (its `config.json` and the weights read from it).
    public static func encoder(configFile: URL, weights: any WeightSource) throws -> any TextEncoder {
        try encoder(precision: .float32)(configFile, weights)
    }

    /// The loader of encoders whose linear layers run in `precision` (attention, LayerNorm and GELU stay fp32).
    public static func encoder(precision: Linear.Precision) -> TextEncoderLoader {
        { configFile, weights in try load(configFile: configFile, weights: weights, precision: precision) }
    }

    static func load(configFile: URL, weights: any WeightSource, precision: Linear.Precision) throws
        -> any TextEncoder
    {
        let config = try ConfigLoading.decode(BertConfiguration.self, at: configFile)
        if let type = config.modelType, type != "bert" {
            throw ModelError(.unsupported, "\(configFile.path): model_type '\(type)' is not a BERT encoder")
        }
        do {
            // An ONNX export: its initializers under BERT's names, by the graph's node names.
            let weights = try (weights as? ONNXModel).map(BertONNXWeights.init) ?? weights
            return try BertModel(config: config, weights: weights, configFile: configFile.path, precision: precision)
        } catch let error as WeightsError {
            throw ModelError(.badConfig, error.description, cause: error)
        }
    }

    /// BERT checkpoints (`model_type` "bert"): sentence embeddings from a sentence-transformers folder, and
    /// `BertForSequenceClassification` heads for text classification and, with one label, reranking.
    public static let architecture = ArchitectureRegistry.Entry(
        name: "bert", tasks: [.textEmbedding, .textClassification, .rerank], precisions: [.float32, .int8],
        matches: { $0.modelType == "bert" || ($0.modelType == nil && $0.files.contains("model.safetensors")) },
        load: { folder, task, precision in
            let encoder = BertModel.encoder(precision: precision)
            switch task {
            case .textEmbedding: return try SentenceEmbedder(directory: folder.directory, encoder: encoder)
            case .rerank:
                let model = try SequenceClassifier(directory: folder.directory, encoder: encoder)
                if case .sentence = model.head {
                    throw ModelError(
                        .unsupported,
                        "\(folder.directory.path): a reranker scores (query, passage) pairs; this classifier takes single texts"
                    )
                }
                guard model.labels.count == 1 else {
                    throw ModelError(
                        .unsupported,
                        "\(folder.directory.path): a reranker (cross-encoder) has one output; this head has \(model.labels.count) labels"
                    )
                }
                return model
            default: return try SequenceClassifier(directory: folder.directory, encoder: encoder)
            }
        })
}
