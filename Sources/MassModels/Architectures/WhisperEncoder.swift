// Whisper's audio encoder, after CTranslate2 `src/layers/whisper.cc` (WhisperEncoder) and openai/whisper
// `model.py` (AudioEncoder), reading CTranslate2 variable names: encoder/conv1, encoder/conv2 (GELU after each),
// encoder/position_encodings, encoder/layer_N/{self_attention,ffn} (pre-LayerNorm, fused QKV), encoder/layer_norm.
// Weights are stored in fp16 and widened to fp32 at load; the arithmetic is fp32, as CTranslate2 on x86.
// Differences from the reference, by design: the 1-D convolutions run as matrix products over unfolded
// windows (im2col), attention as two OpenBLAS products per head.
public import MassTensor
public import MassWeights

public final class WhisperEncoder: Sendable {
    struct Layer: Sendable {
        let attentionNorm: (gamma: Tensor, beta: Tensor)
        let qkv: Linear
        let output: Linear
        let ffnNorm: (gamma: Tensor, beta: Tensor)
        let up: Linear
        let down: Linear
    }

    public let width: Int
    public let heads: Int
    public let melBands: Int
    /// Output frames (input frames / 2).
    public let frames: Int
    let conv1: Linear  // [width, melBands · 3]
    let conv2: Linear  // [width, width · 3]
    let positions: Tensor  // [frames, width]
    let layers: [Layer]
    let finalNorm: (gamma: Tensor, beta: Tensor)
    static let epsilon: Float = 1e-5

    /// `precision` applies to the Transformer layers; the two convolutions stay float32 (they read the log-mel
    /// features, and are a twentieth of the work).
    public init(model: CTranslate2Model, precision: Linear.Precision = .float32) throws {
        try BLAS.load()
        let linear = { (prefix: String) in try model.linear(prefix, precision: precision) }
        let norm = model.layerNorm
        /// A Conv1d weight [out, in, 3] is already the [out, in·3] matrix of the unfolded product.
        func conv(_ prefix: String) throws -> Linear {
            let w = try model.dequantized("\(prefix)/weight")
            guard w.shape.count == 3, w.shape[2] == 3 else {
                throw ModelError(
                    .unsupported, "\(model.origin): '\(prefix)/weight' has shape \(w.shape), expected [_, _, 3]")
            }
            return try Linear(
                weight: Tensor(shape: [w.shape[0], w.shape[1] * 3], values: w.array),
                bias: model.float32("\(prefix)/bias"))
        }
        heads = try model.integer("encoder/num_heads")
        conv1 = try conv("encoder/conv1")
        conv2 = try conv("encoder/conv2")
        width = conv1.outFeatures
        melBands = conv1.inFeatures / 3
        positions = try model.float32("encoder/position_encodings/encodings")
        frames = positions.shape[0]
        guard width % heads == 0, width % 8 == 0, positions.shape == [frames, width] else {
            throw ModelError(
                .unsupported, "\(model.origin): encoder width \(width), \(heads) heads, positions \(positions.shape)")
        }
        var layers: [Layer] = []
        while model.variable("encoder/layer_\(layers.count)/ffn/linear_0/weight") != nil {
            let p = "encoder/layer_\(layers.count)"
            layers.append(
                Layer(
                    attentionNorm: try norm("\(p)/self_attention/layer_norm"),
                    qkv: try linear("\(p)/self_attention/linear_0"), output: try linear("\(p)/self_attention/linear_1"),
                    ffnNorm: try norm("\(p)/ffn/layer_norm"), up: try linear("\(p)/ffn/linear_0"),
                    down: try linear("\(p)/ffn/linear_1")))
        }
        guard !layers.isEmpty else { throw ModelError(.unsupported, "\(model.origin): the encoder has no layers") }
        self.layers = layers
        finalNorm = try norm("encoder/layer_norm")
    }

    /// The encoder output [frames, width] for log-mel features [melBands, 2 · frames] (row-major).
    public func callAsFunction(_ features: [Float], pool: ComputePool) -> [Float] {
        encode([features], pool: pool)[0]
    }

    /// Several windows in one pass (requests that arrive together): the convolutions and dense layers run on all
    /// windows' frames at once, attention per window and head.
    public func encode(_ windows: [[Float]], pool: ComputePool) -> [[Float]] {
        let inFrames = 2 * frames
        for features in windows {
            precondition(
                features.count == melBands * inFrames, "WhisperEncoder: features must be [\(melBands), \(inFrames)]")
        }
        let n = windows.count
        guard n > 0 else { return [] }
        let w = width
        let rows = n * frames
        // conv1 (stride 1, pad 1): unfold to [inFrames, melBands · 3] per window, product, GELU.
        var unfolded = [Float](repeating: 0, count: n * inFrames * melBands * 3)
        for (b, features) in windows.enumerated() {
            let base = b * inFrames * melBands * 3
            for t in 0..<inFrames {
                for c in 0..<melBands {
                    for k in 0..<3 {
                        let s = t + k - 1
                        if s >= 0 && s < inFrames {
                            unfolded[base + (t * melBands + c) * 3 + k] = features[c * inFrames + s]
                        }
                    }
                }
            }
        }
        var h1 = [Float](repeating: 0, count: n * inFrames * w)
        pool.apply(conv1, unfolded, rows: n * inFrames, into: &h1, activation: .gelu)
        unfolded = []
        // conv2 (stride 2, pad 1): unfold [frames, width · 3] from the time-major h1.
        var unfolded2 = [Float](repeating: 0, count: rows * w * 3)
        for b in 0..<n {
            for t in 0..<frames {
                for k in 0..<3 {
                    let s = 2 * t + k - 1
                    guard s >= 0 && s < inFrames else { continue }
                    let source = (b * inFrames + s) * w
                    let target = (b * frames + t) * w * 3
                    for c in 0..<w { unfolded2[target + c * 3 + k] = h1[source + c] }
                }
            }
        }
        h1 = []
        var x = [Float](repeating: 0, count: rows * w)
        pool.apply(conv2, unfolded2, rows: rows, into: &x, activation: .gelu)
        unfolded2 = []
        let pos = positions.floats
        for b in 0..<n {
            for i in 0..<(frames * w) { x[b * frames * w + i] += pos[i] }
        }

        var h = [Float](repeating: 0, count: rows * w)
        var qkv = [Float](repeating: 0, count: rows * 3 * w)
        var context = [Float](repeating: 0, count: rows * w)
        var up = [Float](repeating: 0, count: rows * (layers.first?.up.outFeatures ?? w))
        let d = w / heads
        let scale = 1 / Float(d).squareRoot()
        let parts = min(pool.threadCount, n * heads)
        var scores = [[Float]](repeating: [Float](repeating: 0, count: frames * frames), count: parts)
        for layer in layers {
            h.withUnsafeMutableBufferPointer { hp in
                x.withUnsafeBufferPointer { hp.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
                Kernels.layerNorm(
                    hp.baseAddress!, rows: rows, cols: w, gamma: layer.attentionNorm.gamma.floats,
                    beta: layer.attentionNorm.beta.floats, eps: Self.epsilon)
            }
            pool.apply(layer.qkv, h, rows: rows, into: &qkv)
            qkv.withUnsafeBufferPointer { q in
                context.withUnsafeMutableBufferPointer { out in
                    scores.withUnsafeMutableBufferPointer { scratch in
                        pool.parallelFor(parts) { part in
                            let buffer = scratch[part].withUnsafeMutableBufferPointer { $0.baseAddress! }
                            for job in (part * n * heads / parts)..<((part + 1) * n * heads / parts) {
                                let (b, head) = job.quotientAndRemainder(dividingBy: heads)
                                let base = q.baseAddress! + b * frames * 3 * w + head * d
                                BLAS.sgemm(
                                    transA: false, transB: true, m: frames, n: frames, k: d, alpha: scale, a: base,
                                    lda: 3 * w, b: base + w, ldb: 3 * w, beta: 0, c: buffer, ldc: frames)
                                Kernels.softmaxRows(buffer, rows: frames, cols: frames, ld: frames)
                                BLAS.sgemm(
                                    transA: false, transB: false, m: frames, n: d, k: frames, alpha: 1, a: buffer,
                                    lda: frames, b: base + 2 * w, ldb: 3 * w, beta: 0,
                                    c: out.baseAddress! + b * frames * w + head * d, ldc: w)
                            }
                        }
                    }
                }
            }
            pool.apply(layer.output, context, rows: rows, into: &x, accumulate: true)
            h.withUnsafeMutableBufferPointer { hp in
                x.withUnsafeBufferPointer { hp.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
                Kernels.layerNorm(
                    hp.baseAddress!, rows: rows, cols: w, gamma: layer.ffnNorm.gamma.floats,
                    beta: layer.ffnNorm.beta.floats, eps: Self.epsilon)
            }
            pool.apply(layer.up, h, rows: rows, into: &up, activation: .gelu)
            pool.apply(layer.down, up, rows: rows, into: &x, accumulate: true)
        }
        x.withUnsafeMutableBufferPointer {
            Kernels.layerNorm(
                $0.baseAddress!, rows: rows, cols: w, gamma: finalNorm.gamma.floats, beta: finalNorm.beta.floats,
                eps: Self.epsilon)
        }
        return (0..<n).map { Array(x[($0 * frames * w)..<(($0 + 1) * frames * w)]) }
    }
}
