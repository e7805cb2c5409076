// Whisper's text decoder, after CTranslate2's TransformerDecoder with WhisperSpec (and openai/whisper TextDecoder),
// reading CTranslate2 names: decoder/embeddings (also the output projection, through the alias
// decoder/projection/weight, no bias), decoder/position_encodings, decoder/layer_N/{self_attention, attention,
// ffn} (pre-LayerNorm; fused QKV for self-attention, query + fused KV for cross-attention), decoder/layer_norm.
// One sequence at a time with a key/value cache; cross-attention keys and values are computed once per window.
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
    let embeddings: Tensor  // [vocabulary, width], fp32
    let projection: Linear  // the same matrix, packed, no bias
    let positions: Tensor
    let layers: [Layer]
    let finalNorm: (gamma: Tensor, beta: Tensor)
    static let epsilon: Float = 1e-5

    public init(model: CTranslate2Model) throws {
        try BLAS.load()
        let linear = model.linear
        let norm = model.layerNorm
        heads = try model.integer("decoder/num_heads")
        embeddings = try model.float32("decoder/embeddings/weight")
        vocabularySize = embeddings.shape[0]
        width = embeddings.shape[1]
        projection = try Linear(weight: model.float32("decoder/projection/weight", shape: embeddings.shape), bias: nil)
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

    /// One window's decoding state: cross-attention keys/values of the encoder output and the self-attention cache.
    public final class State {
        var crossKV: [[Float]]  // per layer [frames, 2 · width]
        var selfK: [[Float]]  // per layer, grows by `width` per token
        var selfV: [[Float]]
        public internal(set) var length = 0
        let frames: Int

        init(crossKV: [[Float]], frames: Int) {
            self.crossKV = crossKV
            self.frames = frames
            selfK = Array(repeating: [], count: crossKV.count)
            selfV = Array(repeating: [], count: crossKV.count)
        }

        func advance() { length += 1 }
    }

    /// Starts a window over the encoder output `memory` [frames, width].
    public func start(memory: [Float], pool: ComputePool) -> State {
        let frames = memory.count / width
        let kv = layers.map { layer -> [Float] in
            var out = [Float](repeating: 0, count: frames * 2 * width)
            pool.apply(layer.crossKV, memory, rows: frames, into: &out)
            return out
        }
        return State(crossKV: kv, frames: frames)
    }

    /// Feeds one token at the next position; returns the logits over the vocabulary.
    public func step(_ token: Int, state: State, pool: ComputePool) -> [Float] {
        step([token], states: [state], pool: pool)[0]
    }

    /// Feeds one token to each of several hypotheses (each at its own next position, with its own cache) as one
    /// batch: the dense layers and the output projection run on all rows at once.
    public func step(_ tokens: [Int], states: [State], pool: ComputePool) -> [[Float]] {
        let rows = tokens.count
        let w = width
        let d = w / heads
        let scale = 1 / Float(d).squareRoot()
        var x = [Float](repeating: 0, count: rows * w)
        for (r, (token, state)) in zip(tokens, states).enumerated() {
            let e = embeddings.floats + token * w
            let p = positions.floats + state.length * w
            for i in 0..<w { x[r * w + i] = e[i] + p[i] }
        }
        var h = [Float](repeating: 0, count: rows * w)
        var qkv = [Float](repeating: 0, count: rows * 3 * w)
        var context = [Float](repeating: 0, count: rows * w)
        var q = [Float](repeating: 0, count: rows * w)
        var scores = [Float](repeating: 0, count: maxPositions)
        var crossScores: [Float] = []
        func normed(_ n: (gamma: Tensor, beta: Tensor)) {
            h = x
            h.withUnsafeMutableBufferPointer {
                Kernels.layerNorm(
                    $0.baseAddress!, rows: rows, cols: w, gamma: n.gamma.floats, beta: n.beta.floats, eps: Self.epsilon)
            }
        }
        /// Attention of one query row over `count` keys and values (rows `ld` apart).
        func attend(
            _ query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ld: Int,
            count: Int, into out: UnsafeMutablePointer<Float>
        ) {
            scores.withUnsafeMutableBufferPointer { sp in
                let scores = sp.baseAddress!
                for head in 0..<heads {
                    let qh = query + head * d
                    var peak = -Float.infinity
                    for t in 0..<count {
                        let kh = keys + t * ld + head * d
                        var s: Float = 0
                        for i in 0..<d { s += qh[i] * kh[i] }
                        scores[t] = s * scale
                        peak = max(peak, scores[t])
                    }
                    var total: Float = 0
                    for t in 0..<count {
                        scores[t] = (scores[t] - peak).exp
                        total += scores[t]
                    }
                    let oh = out + head * d
                    for i in 0..<d { oh[i] = 0 }
                    for t in 0..<count {
                        let weight = scores[t] / total
                        let vh = values + t * ld + head * d
                        for i in 0..<d { oh[i] += weight * vh[i] }
                    }
                }
            }
        }
        for (l, layer) in layers.enumerated() {
            normed(layer.selfNorm)
            pool.apply(layer.selfQKV, h, rows: rows, into: &qkv)
            for (r, state) in states.enumerated() {
                let row: Int = r * 3 * w
                let keyRange: Range<Int> = (row + w)..<(row + 2 * w)
                let valueRange: Range<Int> = (row + 2 * w)..<(row + 3 * w)
                state.selfK[l].append(contentsOf: qkv[keyRange])
                state.selfV[l].append(contentsOf: qkv[valueRange])
                let count = state.length + 1
                qkv.withUnsafeBufferPointer { qp in
                    state.selfK[l].withUnsafeBufferPointer { kp in
                        state.selfV[l].withUnsafeBufferPointer { vp in
                            context.withUnsafeMutableBufferPointer { cp in
                                attend(
                                    qp.baseAddress! + r * 3 * w, keys: kp.baseAddress!, values: vp.baseAddress!, ld: w,
                                    count: count, into: cp.baseAddress! + r * w)
                            }
                        }
                    }
                }
            }
            pool.apply(layer.selfOut, context, rows: rows, into: &x, accumulate: true)
            normed(layer.crossNorm)
            pool.apply(layer.crossQuery, h, rows: rows, into: &q)
            // Cross-attention: every hypothesis of a window attends to the same encoder output, so each head is
            // two OpenBLAS products over all rows at once.
            let frames = states[0].frames
            if crossScores.count < rows * frames { crossScores = [Float](repeating: 0, count: rows * frames) }
            q.withUnsafeBufferPointer { qp in
                states[0].crossKV[l].withUnsafeBufferPointer { kv in
                    context.withUnsafeMutableBufferPointer { cp in
                        crossScores.withUnsafeMutableBufferPointer { sp in
                            for head in 0..<heads {
                                let offset = head * d
                                BLAS.sgemm(
                                    transA: false, transB: true, m: rows, n: frames, k: d, alpha: scale,
                                    a: qp.baseAddress! + offset, lda: w, b: kv.baseAddress! + offset, ldb: 2 * w,
                                    beta: 0,
                                    c: sp.baseAddress!, ldc: frames)
                                Kernels.softmaxRows(sp.baseAddress!, rows: rows, cols: frames, ld: frames)
                                BLAS.sgemm(
                                    transA: false, transB: false, m: rows, n: d, k: frames, alpha: 1,
                                    a: sp.baseAddress!,
                                    lda: frames, b: kv.baseAddress! + w + offset, ldb: 2 * w, beta: 0,
                                    c: cp.baseAddress! + offset, ldc: w)
                            }
                        }
                    }
                }
            }
            pool.apply(layer.crossOut, context, rows: rows, into: &x, accumulate: true)
            normed(layer.ffnNorm)
            var up = [Float](repeating: 0, count: rows * layer.up.outFeatures)
            pool.apply(layer.up, h, rows: rows, into: &up, activation: .gelu)
            pool.apply(layer.down, up, rows: rows, into: &x, accumulate: true)
        }
        normed(finalNorm)
        var logits = [Float](repeating: 0, count: rows * vocabularySize)
        pool.apply(projection, h, rows: rows, into: &logits)
        for state in states { state.advance() }
        return (0..<rows).map { Array(logits[($0 * vocabularySize)..<(($0 + 1) * vocabularySize)]) }
    }

    /// What decoding one window produced.
    public struct Decoded: Sendable, Equatable {
        /// New tokens, end-of-text excluded.
        public let tokens: [Int]
        /// Sum of the chosen tokens' log-probabilities, end-of-text included.
        public let logProbability: Double
        /// Probability of `noSpeech` from the raw logits at the start-of-transcript position.
        public let noSpeechProbability: Double
    }

    /// Greedy decoding of one window without timestamps (faster-whisper with `beam_size=1, temperature=0,
    /// without_timestamps=True`): the prompt's tokens but the last fill the cache, then the most likely token is
    /// taken until end-of-text or `maxNewTokens`. `suppress` is disabled at every step, `suppressAtBegin` at the
    /// first.
    public func greedy(
        memory: [Float], prompt: [Int], endOfText: Int, startOfTranscript: Int, noSpeech: Int, suppress: Set<Int>,
        suppressAtBegin: Set<Int>, maxNewTokens: Int, pool: ComputePool
    ) -> Decoded {
        let state = start(memory: memory, pool: pool)
        var noSpeechProbability = 0.0
        func takeNoSpeech(_ logits: [Float]) {
            let peak = Double(logits.max() ?? 0)
            let total = logits.reduce(0.0) { $0 + Foundation.exp(Double($1) - peak) }
            noSpeechProbability = Foundation.exp(Double(logits[noSpeech]) - peak) / total
        }
        for token in prompt.dropLast() {
            let logits = step(token, state: state, pool: pool)
            if token == startOfTranscript { takeNoSpeech(logits) }
        }
        var input = prompt.last!
        var out: [Int] = []
        var logProbability = 0.0
        while out.count < maxNewTokens && state.length < maxPositions {
            var logits = step(input, state: state, pool: pool)
            if input == startOfTranscript { takeNoSpeech(logits) }
            for t in suppress where t < logits.count { logits[t] = -.greatestFiniteMagnitude }
            if out.isEmpty { for t in suppressAtBegin where t < logits.count { logits[t] = -.greatestFiniteMagnitude } }
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            let peak = Double(logits[best])
            let total = logits.reduce(0.0) { $0 + Foundation.exp(Double($1) - peak) }
            logProbability += -Foundation.log(total)  // log_softmax of the chosen (largest) logit
            if best == endOfText { break }
            out.append(best)
            input = best
        }
        return Decoded(tokens: out, logProbability: logProbability, noSpeechProbability: noSpeechProbability)
    }
}

extension Float {
    fileprivate var exp: Float { Float(Foundation.exp(Double(self))) }
}
