import Foundation
import MassTensor

/// Multi-head scaled dot-product attention over a batch of padded sequences, and the poolings of sentence
/// encoders.
extension Variable {
    /// softmax(Q·Kᵀ / √d + mask) · V per sequence and head. `q`, `k`, `v` are [batch · length, heads · d] (a
    /// sequence's tokens in consecutive rows); `mask[b][j]` false hides key j of sequence b from every query (its
    /// probability is exactly 0, as with BERT's additive mask of the dtype's minimum). Returns [batch · length,
    /// heads · d].
    public static func attention(_ q: Variable, _ k: Variable, _ v: Variable, heads: Int, mask: [[Bool]]) -> Variable {
        let batch = mask.count
        let width = q.columns
        precondition(
            q.shape == k.shape && q.shape == v.shape && q.shape.count == 2 && width % heads == 0,
            "attention: q, k, v must be one [tokens, heads·d] shape, got \(q.shape), \(k.shape), \(v.shape)")
        let length = q.rows / max(batch, 1)
        precondition(length * batch == q.rows && mask.allSatisfy { $0.count == length }, "attention: mask shape")
        let d = width / heads
        let scale = 1 / Float(d).squareRoot()
        // Per (sequence, head): probabilities [length, length], kept for the backward pass.
        var probabilities = [[Float]](repeating: [], count: batch * heads)
        var out = [Float](repeating: 0, count: q.count)
        for b in 0..<batch {
            for h in 0..<heads {
                let base = b * length * width + h * d
                // S = Q·Kᵀ / √d over this sequence's rows and this head's columns.
                var scores = [Float](repeating: 0, count: length * length)
                strided(
                    false, true, length, length, d, scale, (q.value, base, width), (k.value, base, width), &scores, 0,
                    length)
                for i in 0..<length {
                    for j in 0..<length where !mask[b][j] { scores[i * length + j] = -.infinity }
                }
                scores.withUnsafeMutableBufferPointer {
                    Kernels.softmaxRows($0.baseAddress!, rows: length, cols: length, ld: length)
                }
                // The kernel's exp clamps at −87.3, so a hidden key would keep ~1e-38 / sum: a subnormal that
                // slows every product it enters (a 50x slower backward pass) and is not the reference's 0.
                for j in 0..<length where !mask[b][j] {
                    for i in 0..<length { scores[i * length + j] = 0 }
                }
                strided(
                    false, false, length, d, length, 1, (scores, 0, length), (v.value, base, width), &out, base, width)
                probabilities[b * heads + h] = scores
            }
        }
        return Variable(out, shape: q.shape, parents: [q, k, v]) { g in
            var dq = [Float](repeating: 0, count: q.count)
            var dk = [Float](repeating: 0, count: k.count)
            var dv = [Float](repeating: 0, count: v.count)
            for b in 0..<batch {
                for h in 0..<heads {
                    let base = b * length * width + h * d
                    let p = probabilities[b * heads + h]
                    // dV = Pᵀ·dO; dP = dO·Vᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale; dQ = dS·K; dK = dSᵀ·Q.
                    strided(true, false, length, d, length, 1, (p, 0, length), (g, base, width), &dv, base, width)
                    var dp = [Float](repeating: 0, count: length * length)
                    strided(false, true, length, length, d, 1, (g, base, width), (v.value, base, width), &dp, 0, length)
                    var ds = softmaxBackward(p, dp, rows: length, cols: length)
                    for i in 0..<ds.count { ds[i] *= scale }
                    strided(
                        false, false, length, d, length, 1, (ds, 0, length), (k.value, base, width), &dq, base, width)
                    strided(
                        true, false, length, d, length, 1, (ds, 0, length), (q.value, base, width), &dk, base, width)
                }
            }
            q.accumulate(dq)
            k.accumulate(dk)
            v.accumulate(dv)
        }
    }

    /// The mean of each sequence's unmasked token rows: x [batch · length, width], mask [batch][length] →
    /// [batch, width] (sentence-transformers' mean pooling; a sequence with no token gives zeros).
    public func meanPooled(mask: [[Bool]]) -> Variable {
        let (batch, width) = (mask.count, columns)
        let length = rows / max(batch, 1)
        precondition(length * batch == rows, "meanPooled: \(shape) is not \(batch) sequences")
        var out = [Float](repeating: 0, count: batch * width)
        let counts = mask.map { Float(max($0.filter { $0 }.count, 1)) }
        for b in 0..<batch {
            for t in 0..<length where mask[b][t] {
                for c in 0..<width { out[b * width + c] += value[(b * length + t) * width + c] }
            }
            for c in 0..<width { out[b * width + c] /= counts[b] }
        }
        return Variable(out, shape: [batch, width], parents: [self]) { [self] g in
            var d = [Float](repeating: 0, count: count)
            for b in 0..<batch {
                for t in 0..<length where mask[b][t] {
                    for c in 0..<width { d[(b * length + t) * width + c] = g[b * width + c] / counts[b] }
                }
            }
            accumulate(d)
        }
    }

    /// Each sequence's first token row (BERT's [CLS]): x [batch · length, width] → [batch, width].
    public func firstTokens(batch: Int) -> Variable {
        let (width, length) = (columns, rows / max(batch, 1))
        var out = [Float](repeating: 0, count: batch * width)
        for b in 0..<batch {
            for c in 0..<width { out[b * width + c] = value[b * length * width + c] }
        }
        return Variable(out, shape: [batch, width], parents: [self]) { [self] g in
            var d = [Float](repeating: 0, count: count)
            for b in 0..<batch {
                for c in 0..<width { d[b * length * width + c] = g[b * width + c] }
            }
            accumulate(d)
        }
    }
}
