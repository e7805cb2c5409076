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
        Autograd.loadBLAS()
        for b in 0..<batch {
            for h in 0..<heads {
                let base = b * length * width + h * d
                var scores = [Float](repeating: 0, count: length * length)
                q.value.withUnsafeBufferPointer { pq in
                    k.value.withUnsafeBufferPointer { pk in
                        scores.withUnsafeMutableBufferPointer { ps in
                            BLAS.sgemm(
                                transA: false, transB: true, m: length, n: length, k: d, alpha: scale,
                                a: pq.baseAddress! + base, lda: width, b: pk.baseAddress! + base, ldb: width, beta: 0,
                                c: ps.baseAddress!, ldc: length)
                        }
                    }
                }
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
                scores.withUnsafeBufferPointer { ps in
                    v.value.withUnsafeBufferPointer { pv in
                        out.withUnsafeMutableBufferPointer { po in
                            BLAS.sgemm(
                                transA: false, transB: false, m: length, n: d, k: length, alpha: 1,
                                a: ps.baseAddress!, lda: length, b: pv.baseAddress! + base, ldb: width, beta: 0,
                                c: po.baseAddress! + base, ldc: width)
                        }
                    }
                }
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
                    // dV = Pᵀ · dO; dP = dO · Vᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale; dQ = dS · K; dK = dSᵀ · Q.
                    var dp = [Float](repeating: 0, count: length * length)
                    g.withUnsafeBufferPointer { pg in
                        p.withUnsafeBufferPointer { pp in
                            dv.withUnsafeMutableBufferPointer { pdv in
                                BLAS.sgemm(
                                    transA: true, transB: false, m: length, n: d, k: length, alpha: 1,
                                    a: pp.baseAddress!, lda: length, b: pg.baseAddress! + base, ldb: width, beta: 0,
                                    c: pdv.baseAddress! + base, ldc: width)
                            }
                        }
                        v.value.withUnsafeBufferPointer { pv in
                            dp.withUnsafeMutableBufferPointer { pdp in
                                BLAS.sgemm(
                                    transA: false, transB: true, m: length, n: length, k: d, alpha: 1,
                                    a: pg.baseAddress! + base, lda: width, b: pv.baseAddress! + base, ldb: width,
                                    beta: 0, c: pdp.baseAddress!, ldc: length)
                            }
                        }
                    }
                    var ds = softmaxBackward(p, dp, rows: length, cols: length)
                    for i in 0..<ds.count { ds[i] *= scale }
                    ds.withUnsafeBufferPointer { pds in
                        k.value.withUnsafeBufferPointer { pk in
                            dq.withUnsafeMutableBufferPointer { pdq in
                                BLAS.sgemm(
                                    transA: false, transB: false, m: length, n: d, k: length, alpha: 1,
                                    a: pds.baseAddress!, lda: length, b: pk.baseAddress! + base, ldb: width, beta: 0,
                                    c: pdq.baseAddress! + base, ldc: width)
                            }
                        }
                        q.value.withUnsafeBufferPointer { pq in
                            dk.withUnsafeMutableBufferPointer { pdk in
                                BLAS.sgemm(
                                    transA: true, transB: false, m: length, n: d, k: length, alpha: 1,
                                    a: pds.baseAddress!, lda: length, b: pq.baseAddress! + base, ldb: width, beta: 0,
                                    c: pdk.baseAddress! + base, ldc: width)
                            }
                        }
                    }
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
