// Whisper's text decoder, after CTranslate2's TransformerDecoder with WhisperSpec (and openai/whisper TextDecoder),
// reading CTranslate2 names: decoder/embeddings (also the output projection, through the alias
// decoder/projection/weight, no bias), decoder/position_encodings, decoder/layer_N/{self_attention, attention,
// ffn} (pre-LayerNorm; fused QKV for self-attention, query + fused KV for cross-attention), decoder/layer_norm.
// Rows of many hypotheses (and windows) per pass with a key/value cache per hypothesis; cross-attention keys and
// values are computed once per window.
import Foundation
public import MassTensor
public import MassWeights

public final class WhisperDecoder: Sendable {
    struct Layer: Sendable {
        let selfNorm: (gamma: Tensor, beta: Tensor)
        let selfQKV: Linear
        let selfOut: Linear
        let crossNorm: (gamma: Tensor, beta: Tensor)
        let crossQuery: Linear
        let crossKV: Linear
        let crossOut: Linear
        let ffnNorm: (gamma: Tensor, beta: Tensor)
        let up: Linear
        let down: Linear
    }

    public let width: Int
    public let heads: Int
    public let vocabularySize: Int
    public let maxPositions: Int
    public var layerCount: Int { layers.count }
    let embeddings: Tensor  // [vocabulary, width], fp32
    let projection: Linear  // the same matrix, packed, no bias
    let positions: Tensor
    let layers: [Layer]
    let finalNorm: (gamma: Tensor, beta: Tensor)
    static let epsilon: Float = 1e-5

    /// `precision` applies to every linear layer, the vocabulary projection included.
    public init(model: CTranslate2Model, precision: Linear.Precision = .float32) throws {
        try BLAS.load()
        let linear = { (prefix: String) in try model.linear(prefix, precision: precision) }
        let norm = model.layerNorm
        heads = try model.integer("decoder/num_heads")
        embeddings = try model.dequantized("decoder/embeddings/weight")
        vocabularySize = embeddings.shape[0]
        width = embeddings.shape[1]
        projection = try model.linear(
            weight: "decoder/projection/weight", shape: embeddings.shape, bias: nil, precision: precision)
        positions = try model.float32("decoder/position_encodings/encodings")
        maxPositions = positions.shape[0]
        var layers: [Layer] = []
        while model.variable("decoder/layer_\(layers.count)/ffn/linear_0/weight") != nil {
            let p = "decoder/layer_\(layers.count)"
            layers.append(
                Layer(
                    selfNorm: try norm("\(p)/self_attention/layer_norm"),
                    selfQKV: try linear("\(p)/self_attention/linear_0"),
                    selfOut: try linear("\(p)/self_attention/linear_1"),
                    crossNorm: try norm("\(p)/attention/layer_norm"),
                    crossQuery: try linear("\(p)/attention/linear_0"), crossKV: try linear("\(p)/attention/linear_1"),
                    crossOut: try linear("\(p)/attention/linear_2"), ffnNorm: try norm("\(p)/ffn/layer_norm"),
                    up: try linear("\(p)/ffn/linear_0"), down: try linear("\(p)/ffn/linear_1")))
        }
        guard !layers.isEmpty, width % heads == 0, positions.shape == [maxPositions, width] else {
            throw ModelError(.unsupported, "\(model.origin): the decoder's layers, heads or positions do not fit")
        }
        self.layers = layers
        finalNorm = try norm("decoder/layer_norm")
    }

    /// The cross-attention keys and values of one window's encoder output, shared by every hypothesis decoding it.
    /// Staged per head so that a head's keys and values are contiguous (each pass reads them once per four rows).
    public final class Memory: Sendable {
        let keysT: [[Float]]  // per layer: [heads, headWidth, padded], the keys transposed, padding zero
        let values: [[Float]]  // per layer: [heads, frames, headWidth]
        public let frames: Int
        let padded: Int

        /// From each layer's [frames, 2 · width] keys-then-values product.
        init(kv: [[Float]], frames: Int, heads: Int) {
            self.frames = frames
            let padded = (frames + 7) & ~7
            self.padded = padded
            let w = kv.isEmpty ? 0 : kv[0].count / (2 * frames)
            let d = w / heads
            keysT = kv.map { layer in
                var t = [Float](repeating: 0, count: w * padded)
                for f in 0..<frames {
                    for c in 0..<w {
                        let (head, i) = c.quotientAndRemainder(dividingBy: d)
                        t[(head * d + i) * padded + f] = layer[f * 2 * w + c]
                    }
                }
                return t
            }
            values = kv.map { layer in
                var v = [Float](repeating: 0, count: w * frames)
                for f in 0..<frames {
                    for head in 0..<heads {
                        for i in 0..<d { v[(head * frames + f) * d + i] = layer[f * 2 * w + w + head * d + i] }
                    }
                }
                return v
            }
        }
    }

    /// One hypothesis's decoding state: its window's memory and its self-attention cache.
    public final class State {
        public let memory: Memory
        var selfK: [[Float]]  // per layer, grows by `width` per token
        var selfV: [[Float]]
        /// Tokens fed so far (the next token's position).
        public internal(set) var length = 0

        init(memory: Memory, layers: Int) {
            self.memory = memory
            selfK = Array(repeating: [], count: layers)
            selfV = Array(repeating: [], count: layers)
        }

        /// An independent copy (the memory is shared, the cache copied on its next write).
        public func copy() -> State {
            let c = State(memory: memory, layers: selfK.count)
            c.selfK = selfK
            c.selfV = selfV
            c.length = length
            return c
        }
    }

    /// One token to feed: to `state`, at its next position; `logits` asks for the row's output distribution.
    public struct Row {
        public var token: Int
        public var state: State
        public var logits: Bool

        public init(token: Int, state: State, logits: Bool = true) {
            self.token = token
            self.state = state
            self.logits = logits
        }
    }

    /// The cross-attention memory of a window's encoder output [frames, width].
    public func memory(_ encoded: [Float], pool: ComputePool) -> Memory {
        let frames = encoded.count / width
        let kv = layers.map { layer -> [Float] in
            var out = [Float](repeating: 0, count: frames * 2 * width)
            pool.apply(layer.crossKV, encoded, rows: frames, into: &out)
            return out
        }
        return Memory(kv: kv, frames: frames, heads: heads)
    }

    /// A fresh hypothesis over `memory`.
    public func start(_ memory: Memory) -> State { State(memory: memory, layers: layers.count) }

    /// Feeds one token to `state`; returns the logits over the vocabulary.
    public func step(_ token: Int, state: State, pool: ComputePool) -> [Float] {
        step([Row(token: token, state: state)], pool: pool)[0]
    }

    /// Feeds a batch of rows in one pass: the dense layers and the output projection run on all rows at once.
    /// Rows may belong to different windows (their cross-attention is grouped by memory) and a state may appear in
    /// several rows (a prompt fed at once: each row sees the rows of its state before it). Returns the logits of
    /// the rows that ask for them, in order.
    public func step(_ rows: [Row], pool: ComputePool) -> [[Float]] {
        step(rows, pool: pool, crossQueries: nil)
    }

    /// `step`, handing each layer's cross-attention queries [rows, width] to `crossQueries` (for alignment).
    func step(
        _ rows: [Row], pool: ComputePool, crossQueries: ((Int, UnsafeBufferPointer<Float>) -> Void)?
    ) -> [[Float]] {
        let n = rows.count
        guard n > 0 else { return [] }
        let w = width
        let d = w / heads
        // Each row's position: its state's length plus the rows of the same state before it.
        var fed: [ObjectIdentifier: Int] = [:]
        let position = rows.map { row -> Int in
            let id = ObjectIdentifier(row.state)
            defer { fed[id, default: 0] += 1 }
            return row.state.length + fed[id, default: 0]
        }
        var x = [Float](repeating: 0, count: n * w)
        for (r, row) in rows.enumerated() {
            let e = embeddings.floats + row.token * w
            let p = positions.floats + min(position[r], maxPositions - 1) * w
            for i in 0..<w { x[r * w + i] = e[i] + p[i] }
        }
        var h = [Float](repeating: 0, count: n * w)
        var qkv = [Float](repeating: 0, count: n * 3 * w)
        var context = [Float](repeating: 0, count: n * w)
        var q = [Float](repeating: 0, count: n * w)
        var up = [Float](repeating: 0, count: n * (layers.first?.up.outFeatures ?? w))
        // Runs of consecutive rows over the same memory share their cross-attention products.
        var runs: [Range<Int>] = []
        for r in 0..<n {
            if let last = runs.last, rows[last.lowerBound].state.memory === rows[r].state.memory {
                runs[runs.count - 1] = last.lowerBound..<(r + 1)
            } else {
                runs.append(r..<(r + 1))
            }
        }
        func normed(_ norm: (gamma: Tensor, beta: Tensor)) {
            h = x
            h.withUnsafeMutableBufferPointer {
                Kernels.layerNorm(
                    $0.baseAddress!, rows: n, cols: w, gamma: norm.gamma.floats, beta: norm.beta.floats,
                    eps: Self.epsilon)
            }
        }
        for (l, layer) in layers.enumerated() {
            normed(layer.selfNorm)
            pool.apply(layer.selfQKV, h, rows: n, into: &qkv)
            for (r, row) in rows.enumerated() {
                let base: Int = r * 3 * w
                row.state.selfK[l].append(contentsOf: qkv[(base + w)..<(base + 2 * w)])
                row.state.selfV[l].append(contentsOf: qkv[(base + 2 * w)..<(base + 3 * w)])
            }
            // Self-attention: row r sees its state's cache up to and including its own position.
            let scale = 1 / Float(d).squareRoot()
            qkv.withUnsafeBufferPointer { qp in
                context.withUnsafeMutableBufferPointer { cp in
                    let parts = min(n, pool.threadCount)
                    pool.parallelFor(parts) { part in
                        var scores = [Float](repeating: 0, count: maxPositions)
                        for r in stride(from: part, to: n, by: parts) {
                            let state = rows[r].state
                            state.selfK[l].withUnsafeBufferPointer { kp in
                                state.selfV[l].withUnsafeBufferPointer { vp in
                                    scores.withUnsafeMutableBufferPointer { sp in
                                        for head in 0..<heads {
                                            Kernels.attendOne(
                                                q: qp.baseAddress! + r * 3 * w + head * d,
                                                keys: kp.baseAddress! + head * d, values: vp.baseAddress! + head * d,
                                                ld: w, count: position[r] + 1, d: d, scale: scale,
                                                scores: sp.baseAddress!, into: cp.baseAddress! + r * w + head * d)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            pool.apply(layer.selfOut, context, rows: n, into: &x, accumulate: true)
            normed(layer.crossNorm)
            pool.apply(layer.crossQuery, h, rows: n, into: &q)
            if let crossQueries { q.withUnsafeBufferPointer { crossQueries(l, $0) } }
            // Cross-attention: the rows of a run attend to the same encoder output, whose keys are staged
            // transposed once per window; (run, head) pairs are spread over the threads.
            q.withUnsafeBufferPointer { qp in
                context.withUnsafeMutableBufferPointer { cp in
                    let jobs = runs.count * heads
                    let parts = min(jobs, pool.threadCount)
                    pool.parallelFor(parts) { part in
                        var scores: [Float] = []
                        for job in stride(from: part, to: jobs, by: parts) {
                            let (index, head) = job.quotientAndRemainder(dividingBy: heads)
                            let run = runs[index]
                            let memory = rows[run.lowerBound].state.memory
                            if scores.count < run.count * memory.padded {
                                scores = [Float](repeating: 0, count: run.count * memory.padded)
                            }
                            memory.values[l].withUnsafeBufferPointer { values in
                                memory.keysT[l].withUnsafeBufferPointer { kT in
                                    scores.withUnsafeMutableBufferPointer { sp in
                                        Kernels.attendStaged(
                                            q: qp.baseAddress! + run.lowerBound * w + head * d, ldq: w,
                                            rows: run.count, kT: kT.baseAddress! + head * d * memory.padded,
                                            keys: memory.frames, padded: memory.padded,
                                            v: values.baseAddress! + head * memory.frames * d, ldv: d, d: d,
                                            scale: 1 / Float(d).squareRoot(), scores: sp.baseAddress!,
                                            into: cp.baseAddress! + run.lowerBound * w + head * d, ldo: w)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            pool.apply(layer.crossOut, context, rows: n, into: &x, accumulate: true)
            normed(layer.ffnNorm)
            pool.apply(layer.up, h, rows: n, into: &up, activation: .gelu)
            pool.apply(layer.down, up, rows: n, into: &x, accumulate: true)
        }
        for row in rows { row.state.length = row.state.selfK[0].count / w }
        // Only the rows that ask for logits go through the final norm and the (large) output projection.
        let wanted = rows.indices.filter { rows[$0].logits }
        guard !wanted.isEmpty else { return [] }
        h = [Float](repeating: 0, count: wanted.count * w)
        for (k, r) in wanted.enumerated() {
            for i in 0..<w { h[k * w + i] = x[r * w + i] }
        }
        h.withUnsafeMutableBufferPointer {
            Kernels.layerNorm(
                $0.baseAddress!, rows: wanted.count, cols: w, gamma: finalNorm.gamma.floats,
                beta: finalNorm.beta.floats, eps: Self.epsilon)
        }
        var logits = [Float](repeating: 0, count: wanted.count * vocabularySize)
        pool.apply(projection, h, rows: wanted.count, into: &logits)
        return (0..<wanted.count).map { Array(logits[($0 * vocabularySize)..<(($0 + 1) * vocabularySize)]) }
    }

    /// Teacher-forced pass over `tokens` for word alignment (CTranslate2's `align`): the cross-attention scores
    /// (scaled q·k, before softmax) of each (layer, head) in `heads`, [rows, frames] per head, and every row's
    /// logits.
    public func alignmentPass(
        _ tokens: [Int], memory: Memory, heads: [(layer: Int, head: Int)], pool: ComputePool
    ) -> (scores: [[Float]], logits: [[Float]]) {
        let state = start(memory)
        let w = width
        let d = w / self.heads
        let n = tokens.count
        let frames = memory.frames
        let scale = 1 / Float(d).squareRoot()
        var scores = [[Float]](repeating: [], count: heads.count)
        let logits = step(tokens.map { Row(token: $0, state: state) }, pool: pool) { layer, q in
            for (index, pair) in heads.enumerated() where pair.layer == layer {
                var out = [Float](repeating: 0, count: n * frames)
                memory.keysT[layer].withUnsafeBufferPointer { kT in
                    out.withUnsafeMutableBufferPointer { o in
                        for r in 0..<n {
                            let row = o.baseAddress! + r * frames
                            for i in 0..<d {
                                let weight = q[r * w + pair.head * d + i] * scale
                                let keys = kT.baseAddress! + (pair.head * d + i) * memory.padded
                                for f in 0..<frames { row[f] += weight * keys[f] }
                            }
                        }
                    }
                }
                scores[index] = out
            }
        }
        return (scores, logits)
    }

    /// What decoding one window produced.
    public struct Decoded: Sendable, Equatable {
        /// New tokens, end-of-text excluded.
        public let tokens: [Int]
        /// Sum of the chosen tokens' log-probabilities, end-of-text included.
        public let logProbability: Double
        /// Probability of `noSpeech` from the raw logits at the start-of-transcript position.
        public let noSpeechProbability: Double

        public init(tokens: [Int], logProbability: Double, noSpeechProbability: Double) {
            self.tokens = tokens
            self.logProbability = logProbability
            self.noSpeechProbability = noSpeechProbability
        }
    }
}
