// The post-LayerNorm Transformer encoder layers that BERT (`Bert.swift`) and MPNet (`MPNet.swift`) share, after
// Hugging Face transformers' BertLayer / MPNetLayer: x = LN(x + Attention(x)·Wo), x = LN(x + GELU(x·W1)·W2).
// Query, key and value are fused into one [3H, H] matrix at load. A batch is ragged (sequences concatenated, no
// padding): dense layers run on all tokens at once and attention per sequence, so no work is spent on padding and
// no mask is needed. MPNet adds a relative position bias to every attention score; BERT has none.
import MassTensor
import MassWeights

struct PostNormEncoder {
    struct Layer {
        let qkv, out, up, down: Linear
        let norm1Gamma, norm1Beta, norm2Gamma, norm2Beta: Tensor
    }

    /// The checkpoint names (without `.weight`/`.bias`) of one layer's modules.
    struct LayerNames {
        var query, key, value, out, norm1, up, down, norm2: String
    }

    /// An additive attention bias that depends only on the distance between key and query (MPNet's relative
    /// positions): per head, `2·span − 1` values, the one for query i and key j at `span − 1 + j − i`.
    struct RelativeBias {
        let values: Tensor  // [heads, 2·span − 1]
        let span: Int
    }

    let layers: [Layer]
    let hiddenSize, intermediateSize, heads: Int
    let eps: Float
    let relativeBias: RelativeBias?

    var headDimension: Int { hiddenSize / heads }

    init(
        weights: any WeightSource, prefix: String, count: Int, hidden h: Int, intermediate f: Int, heads: Int,
        eps: Float, precision: Linear.Precision, relativeBias: RelativeBias? = nil, names: (Int) -> LayerNames
    ) throws {
        hiddenSize = h
        intermediateSize = f
        self.heads = heads
        self.eps = eps
        self.relativeBias = relativeBias
        func w(_ name: String, _ shape: [Int]) throws -> Tensor { try weights.float32(prefix + name, shape: shape) }
        func dense(_ modules: [String], rows: Int, k: Int) throws -> Linear {
            try Self.dense(weights, prefix: prefix, modules: modules, rows: rows, k: k, precision: precision)
        }
        layers = try (0..<count).map { i in
            let n = names(i)
            return Layer(
                qkv: try dense([n.query, n.key, n.value], rows: h, k: h),
                out: try dense([n.out], rows: h, k: h),
                up: try dense([n.up], rows: f, k: h),
                down: try dense([n.down], rows: h, k: f),
                norm1Gamma: try w(n.norm1 + ".weight", [h]),
                norm1Beta: try w(n.norm1 + ".bias", [h]),
                norm2Gamma: try w(n.norm2 + ".weight", [h]),
                norm2Beta: try w(n.norm2 + ".bias", [h]))
        }
    }

    /// A dense layer of `modules` stacked along the outputs (each [rows, k]): int8 when the file holds int8
    /// weights (`NAME.weight` I8 and `NAME.weight_scale`, a compressed model, `mass compress`), else float32 run in
    /// `precision`.
    static func dense(
        _ weights: any WeightSource, prefix: String, modules: [String], rows: Int, k: Int,
        precision: Linear.Precision
    ) throws -> Linear {
        func w(_ name: String, _ shape: [Int]) throws -> Tensor { try weights.float32(prefix + name, shape: shape) }
        let biases = try modules.map { try w($0 + ".bias", [rows]) }
        let bias = biases.count == 1 ? biases[0] : concatenate(biases, shape: [rows * modules.count])
        guard try weights.tensor(prefix + modules[0] + ".weight").dtype == .int8 else {
            let parts = try modules.map { try w($0 + ".weight", [rows, k]) }
            let weight = parts.count == 1 ? parts[0] : concatenate(parts, shape: [rows * modules.count, k])
            return try Linear(weight: weight, bias: bias, precision: precision)
        }
        var q: [Int8] = []
        var scales: [Float] = []
        for name in modules {
            let t = try weights.tensor(prefix + name + ".weight")
            guard t.dtype == .int8, t.shape == [rows, k] else {
                throw ModelError(
                    .badConfig,
                    "\(weights.origin): '\(prefix + name).weight' is \(t.dtype) \(t.shape), expected I8 \([rows, k])")
            }
            q += UnsafeBufferPointer(start: t.storage.pointer.assumingMemoryBound(to: Int8.self), count: rows * k)
            let scale = try w(name + ".weight_scale", [rows]).array
            guard scale.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw ModelError(.badConfig, "\(weights.origin): '\(prefix + name).weight_scale' is not positive")
            }
            scales += scale
        }
        guard q.allSatisfy({ $0 != -128 }) else {
            throw ModelError(.badConfig, "\(weights.origin): int8 weights of '\(prefix + modules[0])' use -128")
        }
        let matrix = q.withUnsafeBufferPointer {
            QuantizedMatrix(quantized: $0.baseAddress!, scales: scales, n: rows * modules.count, k: k)
        }
        return try Linear(quantized: matrix, bias: bias)
    }

    static func concatenate(_ parts: [Tensor], shape: [Int]) -> Tensor {
        let out = Tensor(zeros: shape)
        var offset = 0
        for part in parts {
            out.floats.advanced(by: offset).update(from: part.floats, count: part.count)
            offset += part.count
        }
        return out
    }

    /// Floating-point operations of the layers over sequences of these lengths.
    func flops(lengths: [Int]) -> Double {
        let h = Double(hiddenSize)
        let dense = 2.0 * Double(lengths.reduce(0, +)) * (4 * h * h + 2 * h * Double(intermediateSize))
        let attention = 4.0 * Double(lengths.reduce(0) { $0 + $1 * $1 }) * h
        return (dense + attention) * Double(layers.count)
    }

    /// Makes room in `ws` for a batch of `total` tokens whose longest sequence has `longest`.
    func reserve(_ ws: EncoderWorkspace, total: Int, longest: Int, pool: ComputePool) {
        ws.reserve(
            tokens: total, hidden: hiddenSize, intermediate: intermediateSize, headDimension: headDimension,
            maxLength: max(longest, 1), threads: pool.threadCount)
    }

    /// Runs every layer over the embedded batch in `ws.hidden` (sequences of `lengths` tokens, starting at
    /// `offsets`), in place. `observe(layer, states)` sees the states after each layer (1-based).
    func run(
        lengths: [Int], offsets: [Int], ws: EncoderWorkspace, pool: ComputePool,
        observe: ((Int, UnsafePointer<Float>) -> Void)?
    ) {
        let total = lengths.reduce(0, +)
        for (index, layer) in layers.enumerated() {
            encode(layer, lengths: lengths, offsets: offsets, total: total, ws: ws, pool: pool)
            observe?(index + 1, ws.hidden)
        }
    }

    private func encode(
        _ layer: Layer, lengths: [Int], offsets: [Int], total: Int, ws: EncoderWorkspace, pool: ComputePool
    ) {
        let h = hiddenSize
        let x = ws.hidden
        pool.apply(layer.qkv, x, rows: total, into: ws.qkv)
        attention(lengths: lengths, offsets: offsets, ws: ws, pool: pool)
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
    private func attention(lengths: [Int], offsets: [Int], ws: EncoderWorkspace, pool: ComputePool) {
        let h = hiddenSize
        let d = headDimension
        let heads = heads
        let scale = 1 / Float(d).squareRoot()
        let jobs = lengths.count * heads
        // Each pool thread takes a contiguous run of jobs and uses its own score buffer.
        let parts = min(pool.threadCount, jobs)
        pool.parallelFor(parts) { part in
            let scores = ws.scores[part]
            for job in (part * jobs / parts)..<((part + 1) * jobs / parts) {
                let (s, head) = job.quotientAndRemainder(dividingBy: heads)
                let t = lengths[s]
                let base = ws.qkv + offsets[s] * 3 * h + head * d
                let out = ws.context + offsets[s] * h + head * d
                // Row i of the bias starts at the value for distance −i: one vector walked backwards.
                let bias = relativeBias.map { r in
                    UnsafePointer(r.values.floats + head * (2 * r.span - 1) + r.span - 1)
                }
                if t <= Self.directAttentionLimit {
                    Kernels.attentionHead(
                        q: base, k: base + h, v: base + 2 * h, ld: 3 * h, tokens: t, d: d, scale: scale,
                        scratch: scores, into: out, ldo: h, bias: bias, biasStride: -1)
                } else {
                    BLAS.sgemm(
                        transA: false, transB: true, m: t, n: t, k: d, alpha: scale, a: base, lda: 3 * h, b: base + h,
                        ldb: 3 * h, beta: 0, c: scores, ldc: t)
                    if let bias {
                        for i in 0..<t { Kernels.add(bias - i, to: scores + i * t, count: t) }
                    }
                    Kernels.softmaxRows(scores, rows: t, cols: t, ld: t)
                    BLAS.sgemm(
                        transA: false, transB: false, m: t, n: d, k: t, alpha: 1, a: scores, lda: t, b: base + 2 * h,
                        ldb: 3 * h, beta: 0, c: out, ldc: h)
                }
            }
        }
    }
}
