import Foundation
// BERT encoder, after Hugging Face transformers `models/bert/modeling_bert.py` (BertModel, post-LayerNorm).
// Names: embeddings.{word,position,token_type}_embeddings, encoder.layer.N.attention.self.{query,key,value},
// attention.output.dense / LayerNorm, intermediate.dense, output.dense / LayerNorm — as in the checkpoint.
// Differences from the reference, by design: query/key/value are fused into one [3H, H] matrix at load, and a
// batch is ragged (sequences concatenated, no padding): dense layers run on all tokens at once and attention
// runs per sequence, so no work is spent on padding and no mask is needed.
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
    func validate(file: String) throws {
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

/// The BERT encoder with its weights in fp32, laid out for the kernels.
public final class BertModel: TextEncoder, @unchecked Sendable {  // weights are immutable after init
    public let config: BertConfiguration

    struct Layer {
        let qkv, out, up, down: Linear
        let norm1Gamma, norm1Beta, norm2Gamma, norm2Beta: Tensor
    }

    let wordEmbeddings, positionEmbeddings, tokenTypeEmbeddings, embeddingGamma, embeddingBeta: Tensor
    let layers: [Layer]

    public init(
        config: BertConfiguration, weights: any WeightSource, configFile: String = "config.json",
        precision: Linear.Precision = .float32
    ) throws {
        try config.validate(file: configFile)
        try BLAS.load()
        self.config = config
        let h = config.hiddenSize
        let f = config.intermediateSize
        // Checkpoints saved from BertForX prefix every name with "bert.".
        let prefix = weights.names.contains("bert.embeddings.word_embeddings.weight") ? "bert." : ""
        func w(_ name: String, _ shape: [Int]) throws -> Tensor { try weights.float32(prefix + name, shape: shape) }
        wordEmbeddings = try w("embeddings.word_embeddings.weight", [config.vocabSize, h])
        positionEmbeddings = try w("embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, h])
        tokenTypeEmbeddings = try w("embeddings.token_type_embeddings.weight", [config.typeVocabSize, h])
        embeddingGamma = try w("embeddings.LayerNorm.weight", [h])
        embeddingBeta = try w("embeddings.LayerNorm.bias", [h])
        /// A dense layer of `names` stacked along the outputs (each [rows, k]): int8 when the file holds int8
        /// weights (`NAME.weight` I8 and `NAME.weight_scale`, a compressed model, `mass compress`), else float32
        /// run in `precision`.
        func dense(_ names: [String], rows: Int, k: Int) throws -> Linear {
            let biases = try names.map { try w($0 + ".bias", [rows]) }
            let bias = biases.count == 1 ? biases[0] : Self.concatenate(biases, shape: [rows * names.count])
            guard try weights.tensor(prefix + names[0] + ".weight").dtype == .int8 else {
                let parts = try names.map { try w($0 + ".weight", [rows, k]) }
                let weight = parts.count == 1 ? parts[0] : Self.concatenate(parts, shape: [rows * names.count, k])
                return try Linear(weight: weight, bias: bias, precision: precision)
            }
            var q: [Int8] = []
            var scales: [Float] = []
            for name in names {
                let t = try weights.tensor(prefix + name + ".weight")
                guard t.dtype == .int8, t.shape == [rows, k] else {
                    throw ModelError(
                        .badConfig,
                        "\(weights.origin): '\(prefix + name).weight' is \(t.dtype) \(t.shape), expected I8 \([rows, k])"
                    )
                }
                q += UnsafeBufferPointer(start: t.storage.pointer.assumingMemoryBound(to: Int8.self), count: rows * k)
                let scale = try w(name + ".weight_scale", [rows]).array
                guard scale.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                    throw ModelError(.badConfig, "\(weights.origin): '\(prefix + name).weight_scale' is not positive")
                }
                scales += scale
            }
            guard q.allSatisfy({ $0 != -128 }) else {
                throw ModelError(.badConfig, "\(weights.origin): int8 weights of '\(prefix + names[0])' use -128")
            }
            let matrix = q.withUnsafeBufferPointer {
                QuantizedMatrix(quantized: $0.baseAddress!, scales: scales, n: rows * names.count, k: k)
            }
            return try Linear(quantized: matrix, bias: bias)
        }
        layers = try (0..<config.numHiddenLayers).map { i in
            let p = "encoder.layer.\(i)."
            return Layer(
                qkv: try dense(["query", "key", "value"].map { p + "attention.self.\($0)" }, rows: h, k: h),
                out: try dense([p + "attention.output.dense"], rows: h, k: h),
                up: try dense([p + "intermediate.dense"], rows: f, k: h),
                down: try dense([p + "output.dense"], rows: h, k: f),
                norm1Gamma: try w(p + "attention.output.LayerNorm.weight", [h]),
                norm1Beta: try w(p + "attention.output.LayerNorm.bias", [h]),
                norm2Gamma: try w(p + "output.LayerNorm.weight", [h]),
                norm2Beta: try w(p + "output.LayerNorm.bias", [h]))
        }
    }

    private static func concatenate(_ parts: [Tensor], shape: [Int]) -> Tensor {
        let out = Tensor(zeros: shape)
        var offset = 0
        for part in parts {
            out.floats.advanced(by: offset).update(from: part.floats, count: part.count)
            offset += part.count
        }
        return out
    }

    /// Runs the encoder on a ragged batch: `sequences[i]` are token ids (special tokens included, at most
    /// `max_position_embeddings` long) and `typeIds[i]`, when given, their segments (token type ids; all 0 without). Returns the last hidden state of all tokens,
    /// concatenated in order: [Σ lengths, hidden], valid until the workspace is used again.
    /// `observe(layer, states)`, when given, sees the hidden states after the embeddings (layer 0) and after
    /// each encoder layer.
    public func forward(
        _ sequences: [[Int32]], typeIds: [[Int32]]? = nil, workspace ws: EncoderWorkspace, pool: ComputePool,
        observe: ((Int, UnsafePointer<Float>) -> Void)? = nil
    ) throws -> UnsafePointer<Float> {
        let total = sequences.reduce(0) { $0 + $1.count }
        let longest = sequences.map(\.count).max() ?? 0
        guard longest <= config.maxPositionEmbeddings else {
            throw ModelError(
                .invalidInput,
                "a sequence has \(longest) tokens; this model takes at most \(config.maxPositionEmbeddings)")
        }
        for ids in sequences {
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
                throw ModelError(.invalidInput, "token id \(bad) is outside the vocabulary (size \(config.vocabSize))")
            }
        }
        if let typeIds {
            guard typeIds.count == sequences.count, zip(typeIds, sequences).allSatisfy({ $0.count == $1.count }) else {
                throw ModelError(.invalidInput, "token type ids must match the token ids one for one")
            }
            if let bad = typeIds.lazy.flatMap({ $0 }).first(where: { $0 < 0 || Int($0) >= config.typeVocabSize }) {
                throw ModelError(
                    .invalidInput, "token type id \(bad) is outside 0..<\(config.typeVocabSize) (type_vocab_size)")
            }
        }
        ws.reserve(
            tokens: total, hidden: config.hiddenSize, intermediate: config.intermediateSize,
            headDimension: config.headDimension, maxLength: max(longest, 1), threads: pool.threadCount)
        var offsets: [Int] = []
        var offset = 0
        for ids in sequences {
            offsets.append(offset)
            offset += ids.count
        }
        embed(sequences, typeIds: typeIds, offsets: offsets, into: ws.hidden, pool: pool)
        observe?(0, ws.hidden)
        for (index, layer) in layers.enumerated() {
            encode(layer, sequences: sequences, offsets: offsets, total: total, ws: ws, pool: pool)
            observe?(index + 1, ws.hidden)
        }
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

    private func encode(
        _ layer: Layer, sequences: [[Int32]], offsets: [Int], total: Int, ws: EncoderWorkspace, pool: ComputePool
    ) {
        let h = config.hiddenSize
        let eps = config.layerNormEps
        let x = ws.hidden
        pool.apply(layer.qkv, x, rows: total, into: ws.qkv)
        attention(sequences: sequences, offsets: offsets, ws: ws, pool: pool)
        // x = LayerNorm(x + context·Woᵀ + bo): the GEMM accumulates onto the residual in place.
        pool.apply(layer.out, ws.context, rows: total, into: x, accumulate: true)
        pool.forRowRanges(total) { r0, r1 in
            Kernels.layerNorm(
                x + r0 * h, rows: r1 - r0, cols: h, gamma: layer.norm1Gamma.floats, beta: layer.norm1Beta.floats,
                eps: eps)
        }
        pool.apply(layer.up, x, rows: total, into: ws.intermediate, activation: .gelu)
        pool.apply(layer.down, ws.intermediate, rows: total, into: x, accumulate: true)
        pool.forRowRanges(total) { r0, r1 in
            Kernels.layerNorm(
                x + r0 * h, rows: r1 - r0, cols: h, gamma: layer.norm2Gamma.floats, beta: layer.norm2Beta.floats,
                eps: eps)
        }
    }

    /// Up to this many tokens, attention runs in `Kernels.attentionHead`; longer sequences go to OpenBLAS,
    /// whose blocked GEMM wins once the T×T products are large (measured with `mass bench embed`).
    static let directAttentionLimit = 64

    /// Scaled dot-product attention per (sequence, head), each sequence attending only to itself.
    private func attention(sequences: [[Int32]], offsets: [Int], ws: EncoderWorkspace, pool: ComputePool) {
        let h = config.hiddenSize
        let heads = config.numAttentionHeads
        let d = config.headDimension
        let scale = 1 / Float(d).squareRoot()
        let jobs = sequences.count * heads
        // Each pool thread takes a contiguous run of jobs and uses its own score buffer.
        let parts = min(pool.threadCount, jobs)
        pool.parallelFor(parts) { part in
            let scores = ws.scores[part]
            for job in (part * jobs / parts)..<((part + 1) * jobs / parts) {
                let (s, head) = job.quotientAndRemainder(dividingBy: heads)
                let t = sequences[s].count
                let base = ws.qkv + offsets[s] * 3 * h + head * d
                let out = ws.context + offsets[s] * h + head * d
                if t <= Self.directAttentionLimit {
                    Kernels.attentionHead(
                        q: base, k: base + h, v: base + 2 * h, ld: 3 * h, tokens: t, d: d, scale: scale,
                        scratch: scores, into: out, ldo: h)
                } else {
                    BLAS.sgemm(
                        transA: false, transB: true, m: t, n: t, k: d, alpha: scale, a: base, lda: 3 * h, b: base + h,
                        ldb: 3 * h, beta: 0, c: scores, ldc: t)
                    Kernels.softmaxRows(scores, rows: t, cols: t, ld: t)
                    BLAS.sgemm(
                        transA: false, transB: false, m: t, n: d, k: t, alpha: 1, a: scores, lda: t, b: base + 2 * h,
                        ldb: 3 * h, beta: 0, c: out, ldc: h)
                }
            }
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
        let h = Double(config.hiddenSize)
        let dense = 2.0 * Double(lengths.reduce(0, +)) * (4 * h * h + 2 * h * Double(config.intermediateSize))
        let attention = 4.0 * Double(lengths.reduce(0) { $0 + $1 * $1 }) * h
        return (dense + attention) * Double(config.numHiddenLayers)
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
