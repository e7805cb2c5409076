import Foundation
// MPNet encoder, after Hugging Face transformers `models/mpnet/modeling_mpnet.py` (MPNetModel): BERT's
// post-LayerNorm layers (`PostNormEncoder`) with no token types, positions counted from `pad_token_id + 1`, and a
// relative position bias (T5-style buckets, shared by every layer) added to each head's attention scores.
// Names: embeddings.{word,position}_embeddings, embeddings.LayerNorm, encoder.relative_attention_bias,
// encoder.layer.N.attention.attn.{q,k,v,o}, attention.LayerNorm, intermediate.dense, output.dense / LayerNorm.
public import MassTensor
public import MassWeights

/// `config.json` of an MPNet checkpoint (the keys the encoder needs).
public struct MPNetConfiguration: Codable, Sendable {
    public var modelType: String?
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var hiddenAct: String
    public var layerNormEps: Float
    public var maxPositionEmbeddings: Int
    public var vocabSize: Int
    public var padTokenId: Int
    public var relativeAttentionNumBuckets: Int

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
        case maxPositionEmbeddings = "max_position_embeddings"
        case vocabSize = "vocab_size"
        case padTokenId = "pad_token_id"
        case relativeAttentionNumBuckets = "relative_attention_num_buckets"
    }

    /// Longest sequence the positions cover: they start after the padding index.
    public var maxLength: Int { maxPositionEmbeddings - padTokenId - 1 }

    func validate(file: String) throws {
        func bad(_ key: String, _ why: String) -> ModelError { ModelError(.unsupported, "\(file): '\(key)' \(why)") }
        guard hiddenAct == "gelu" else {
            throw bad("hidden_act", "is '\(hiddenAct)'; only 'gelu' (erf) is implemented")
        }
        guard hiddenSize > 0, numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0,
            (hiddenSize / numAttentionHeads) % 8 == 0
        else { throw bad("num_attention_heads", "must divide hidden_size into heads of a multiple of 8") }
        guard relativeAttentionNumBuckets >= 4, relativeAttentionNumBuckets % 4 == 0 else {
            throw bad("relative_attention_num_buckets", "must be a positive multiple of 4")
        }
        guard padTokenId >= 0, padTokenId < vocabSize, maxLength > 0 else {
            throw bad("pad_token_id", "must be a token id below max_position_embeddings - 1")
        }
        guard intermediateSize > 0, numHiddenLayers > 0 else {
            throw bad("num_hidden_layers", "every size must be positive")
        }
    }
}

/// The MPNet encoder (all-mpnet-base-v2 and its family), its weights laid out for the kernels.
public final class MPNetModel: TextEncoder, @unchecked Sendable {  // weights are immutable after init
    public let config: MPNetConfiguration
    let wordEmbeddings, positionEmbeddings, embeddingGamma, embeddingBeta: Tensor
    let encoder: PostNormEncoder

    public init(
        config: MPNetConfiguration, weights: any WeightSource, configFile: String = "config.json",
        precision: Linear.Precision = .float32
    ) throws {
        try config.validate(file: configFile)
        try BLAS.load()
        self.config = config
        let h = config.hiddenSize
        // Checkpoints saved from MPNetForX prefix every name with "mpnet.".
        let prefix = weights.names.contains("mpnet.embeddings.word_embeddings.weight") ? "mpnet." : ""
        func w(_ name: String, _ shape: [Int]) throws -> Tensor { try weights.float32(prefix + name, shape: shape) }
        wordEmbeddings = try w("embeddings.word_embeddings.weight", [config.vocabSize, h])
        positionEmbeddings = try w("embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, h])
        embeddingGamma = try w("embeddings.LayerNorm.weight", [h])
        embeddingBeta = try w("embeddings.LayerNorm.bias", [h])
        let buckets = try w(
            "encoder.relative_attention_bias.weight", [config.relativeAttentionNumBuckets, config.numAttentionHeads])
        encoder = try PostNormEncoder(
            weights: weights, prefix: prefix, count: config.numHiddenLayers, hidden: h,
            intermediate: config.intermediateSize, heads: config.numAttentionHeads, eps: config.layerNormEps,
            precision: precision,
            relativeBias: Self.relativeBias(buckets, heads: config.numAttentionHeads, span: config.maxLength)
        ) { i in
            let p = "encoder.layer.\(i)."
            return .init(
                query: p + "attention.attn.q", key: p + "attention.attn.k", value: p + "attention.attn.v",
                out: p + "attention.attn.o", norm1: p + "attention.LayerNorm", up: p + "intermediate.dense",
                down: p + "output.dense", norm2: p + "output.LayerNorm")
        }
    }

    /// MPNet's bucket of a relative position (key − query), as `MPNetEncoder.relative_position_bucket` computes it:
    /// half the buckets for keys before the query, half after; exact distances below a quarter of the buckets,
    /// logarithmic up to `maxDistance`, the last bucket beyond. The logarithm is taken in float32, as PyTorch
    /// does, so the boundaries fall where the reference's do.
    public static func bucket(_ relative: Int, buckets: Int, maxDistance: Int = 128) -> Int {
        let half = buckets / 2
        let n = -relative
        let side = n < 0 ? half : 0
        let distance = abs(n)
        let exact = half / 2
        guard distance >= exact else { return side + distance }
        let ratio = Float(distance) / Float(exact)
        let scaled = Foundation.log(ratio) / Float(Foundation.log(Double(maxDistance) / Double(exact)))
        let large = exact + Int(scaled * Float(half - exact))
        return side + min(large, half - 1)
    }

    /// Per head, the bias for every distance −(span − 1) … span − 1: the learned value of its bucket.
    static func relativeBias(_ table: Tensor, heads: Int, span: Int) -> PostNormEncoder.RelativeBias {
        let buckets = table.shape[0]
        let width = 2 * span - 1
        let values = Tensor(zeros: [heads, width])
        for index in 0..<width {
            let b = bucket(index - (span - 1), buckets: buckets)
            for head in 0..<heads { values.floats[head * width + index] = table.floats[b * heads + head] }
        }
        return .init(values: values, span: span)
    }

    /// Runs the encoder on a ragged batch of token ids (special tokens included, at most `maxLength` long):
    /// the last hidden states of all tokens, concatenated in order, valid until the workspace is used again.
    public func forward(
        _ sequences: [[Int32]], workspace ws: EncoderWorkspace, pool: ComputePool,
        observe: ((Int, UnsafePointer<Float>) -> Void)? = nil
    ) throws -> UnsafePointer<Float> {
        let (total, longest, offsets) = try TextEncoderInput.check(
            sequences, vocabulary: config.vocabSize, maxLength: config.maxLength)
        encoder.reserve(ws, total: total, longest: longest, pool: pool)
        embed(sequences, offsets: offsets, into: ws.hidden, pool: pool)
        observe?(0, ws.hidden)
        encoder.run(lengths: sequences.map(\.count), offsets: offsets, ws: ws, pool: pool, observe: observe)
        return UnsafePointer(ws.hidden)
    }

    /// Word plus position embeddings, then LayerNorm. Positions count the non-padding tokens from
    /// `pad_token_id + 1`; a padding token takes position `pad_token_id` (the reference's
    /// `create_position_ids_from_input_ids`).
    private func embed(
        _ sequences: [[Int32]], offsets: [Int], into x: UnsafeMutablePointer<Float>, pool: ComputePool
    ) {
        let h = config.hiddenSize
        let pad = config.padTokenId
        pool.parallelFor(sequences.count) { s in
            var counted = 0
            for (t, id) in sequences[s].enumerated() {
                let row = x + (offsets[s] + t) * h
                row.update(from: wordEmbeddings.floats + Int(id) * h, count: h)
                var position = pad
                if Int(id) != pad {
                    counted += 1
                    position = pad + counted
                }
                Kernels.add(positionEmbeddings.floats + position * h, to: row, count: h)
            }
            Kernels.layerNorm(
                x + offsets[s] * h, rows: sequences[s].count, cols: h, gamma: embeddingGamma.floats,
                beta: embeddingBeta.floats, eps: config.layerNormEps)
        }
    }
}

extension MPNetModel {
    public var hiddenSize: Int { config.hiddenSize }
    public var maxPositions: Int { config.maxLength }

    public func hiddenStates(
        _ sequences: [[Int32]], typeIds: [[Int32]]?, workspace: EncoderWorkspace, pool: ComputePool
    ) throws -> UnsafePointer<Float> {
        // MPNet has no token types: a pair is told apart by its separators alone.
        try forward(sequences, workspace: workspace, pool: pool)
    }

    public func forwardFlops(lengths: [Int]) -> Double { encoder.flops(lengths: lengths) }

    /// The loader of encoders whose linear layers run in `precision`.
    public static func encoder(precision: Linear.Precision) -> TextEncoderLoader {
        { configFile, weights in
            let config = try ConfigLoading.decode(MPNetConfiguration.self, at: configFile)
            guard config.modelType == "mpnet" else {
                throw ModelError(
                    .unsupported,
                    "\(configFile.path): model_type '\(config.modelType ?? "<missing>")' is not an MPNet encoder")
            }
            do {
                return try MPNetModel(
                    config: config, weights: weights, configFile: configFile.path, precision: precision)
            } catch let error as WeightsError {
                throw ModelError(.badConfig, error.description, cause: error)
            }
        }
    }

    /// MPNet checkpoints (`model_type` "mpnet"): sentence embeddings from a sentence-transformers folder, and
    /// text classification with a head `mass train` trained on them (`head.safetensors`).
    /// (`MPNetForSequenceClassification`'s head is RoBERTa's, not the BERT pooler `SequenceClassifier` reads.)
    public static let architecture = ArchitectureRegistry.Entry(
        name: "mpnet", tasks: [.textEmbedding, .textClassification], precisions: [.float32, .int8],
        matches: { $0.modelType == "mpnet" },
        load: { folder, task, precision in
            let encoder = MPNetModel.encoder(precision: precision)
            guard task == .textClassification else {
                return try SentenceEmbedder(directory: folder.directory, encoder: encoder)
            }
            guard folder.files.contains("head.safetensors") else {
                throw ModelError(
                    .unsupported,
                    "\(folder.directory.path): an MPNet text classifier is a sentence encoder with a head.safetensors (mass train)"
                )
            }
            return try SequenceClassifier(directory: folder.directory, encoder: encoder)
        })
}
