extension Kernels {
    /// Floats of scratch memory `attentionHead` needs for `tokens` tokens of head dimension `d`.
    public static func attentionScratchCount(tokens: Int, d: Int) -> Int {
        let padded = (tokens + 7) & ~7
        return padded * d + tokens * padded
    }

    /// Scaled dot-product attention of one head of one sequence, without a mask:
    /// out[i, :] = Σ_j softmax_j(scale · q_i·k_j + bias_i[j]) · v_j. q, k and v are [tokens, d] with rows `ld` apart
    /// (views into a fused QKV matrix); out rows are `ldo` apart. `d` is a multiple of 8. `bias`, when given, is an
    /// additive score bias whose row i starts at `bias + i · biasStride` (MPNet's relative positions: a stride of
    /// −1 over one vector of per-distance values).
    ///
    /// Small per-head products are not worth a BLAS call (its fixed cost and packing dominate at 10–60
    /// tokens): Kᵀ is staged in scratch so every score row is a broadcast-FMA over 8 keys at a time.
    public static func attentionHead(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int, tokens t: Int, d: Int,
        scale: Float, scratch: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>, ldo: Int,
        bias: UnsafePointer<Float>? = nil, biasStride: Int = 0
    ) {
        precondition(d % 8 == 0, "attentionHead needs a head dimension that is a multiple of 8. This is a bug.")
        let padded = (t + 7) & ~7
        let kT = scratch
        let scores = scratch + padded * d
        for j in 0..<t {
            for dd in 0..<d { kT[dd * padded + j] = k[j * ld + dd] }
        }
        for j in t..<padded {
            for dd in 0..<d { kT[dd * padded + j] = 0 }
        }
        attendStaged(
            q: q, ldq: ld, rows: t, kT: kT, keys: t, padded: padded, v: v, ldv: ld, d: d, scale: scale,
            scores: scores, into: out, ldo: ldo, bias: bias, biasStride: biasStride)
    }

    /// Attention of `rows` query rows (one head, rows `ldq` apart) over `keys` keys staged transposed in `kT`
    /// ([d, padded], padded a multiple of 8, the padding zero) and their values `v` (rows `ldv` apart):
    /// out[i, :] = Σ_j softmax_j(scale · q_i·k_j + bias_i[j]) · v_j. `scores` holds rows × padded floats. `d` is a
    /// multiple of 8. `bias`, when given, adds row i's `bias + i · biasStride` to its scores before the softmax.
    public static func attendStaged(
        q: UnsafePointer<Float>, ldq: Int, rows t: Int, kT: UnsafePointer<Float>, keys: Int, padded: Int,
        v: UnsafePointer<Float>, ldv: Int, d: Int, scale: Float, scores: UnsafeMutablePointer<Float>,
        into out: UnsafeMutablePointer<Float>, ldo: Int, bias: UnsafePointer<Float>? = nil, biasStride: Int = 0
    ) {
        // Scores, four query rows at a time so each staged key vector feeds four FMAs (a last single row on its
        // own: computing it four times would waste three quarters of the work).
        var i = 0
        while i < t {
            let rowsHere = min(4, t - i)
            if rowsHere == 1 {
                singleRowScores(q + i * ldq, kT: kT, padded: padded, d: d, scale: scale, into: scores + i * padded)
                i += 1
                continue
            }
            let q0 = q + i * ldq
            let q1 = q + (i + min(1, rowsHere - 1)) * ldq
            let q2 = q + (i + min(2, rowsHere - 1)) * ldq
            let q3 = q + (i + min(3, rowsHere - 1)) * ldq
            var jb = 0
            while jb < padded {
                var a0 = V(), a1 = V(), a2 = V(), a3 = V()
                var kp = kT + jb
                for dd in 0..<d {
                    let kv = load(kp)
                    a0 = a0.addingProduct(V(repeating: q0[dd]), kv)
                    a1 = a1.addingProduct(V(repeating: q1[dd]), kv)
                    a2 = a2.addingProduct(V(repeating: q2[dd]), kv)
                    a3 = a3.addingProduct(V(repeating: q3[dd]), kv)
                    kp += padded
                }
                let row = scores + i * padded + jb
                store(a0 * scale, row)
                if rowsHere > 1 { store(a1 * scale, row + padded) }
                if rowsHere > 2 { store(a2 * scale, row + 2 * padded) }
                if rowsHere > 3 { store(a3 * scale, row + 3 * padded) }
                jb += 8
            }
            i += 4
        }
        if let bias {
            for r in 0..<t { add(bias + r * biasStride, to: scores + r * padded, count: keys) }
        }
        softmaxRows(scores, rows: t, cols: keys, ld: padded)
        // Values, four rows and 16 dimensions at a time, so each value vector loaded feeds four rows.
        i = 0
        while i < t {
            let rowsHere = min(4, t - i)
            if rowsHere == 1 {
                singleRowValues(scores + i * padded, keys: keys, v: v, ldv: ldv, d: d, into: out + i * ldo)
                i += 1
                continue
            }
            let p0 = scores + i * padded
            let p1 = scores + (i + min(1, rowsHere - 1)) * padded
            let p2 = scores + (i + min(2, rowsHere - 1)) * padded
            let p3 = scores + (i + min(3, rowsHere - 1)) * padded
            var c = 0
            while c < d {
                let wide = d - c >= 16
                var a0 = V(), a1 = V(), a2 = V(), a3 = V(), b0 = V(), b1 = V(), b2 = V(), b3 = V()
                var vj = v + c
                for j in 0..<keys {
                    let x = load(vj)
                    let w0 = V(repeating: p0[j]), w1 = V(repeating: p1[j])
                    let w2 = V(repeating: p2[j]), w3 = V(repeating: p3[j])
                    a0 = a0.addingProduct(w0, x)
                    a1 = a1.addingProduct(w1, x)
                    a2 = a2.addingProduct(w2, x)
                    a3 = a3.addingProduct(w3, x)
                    if wide {
                        let y = load(vj + 8)
                        b0 = b0.addingProduct(w0, y)
                        b1 = b1.addingProduct(w1, y)
                        b2 = b2.addingProduct(w2, y)
                        b3 = b3.addingProduct(w3, y)
                    }
                    vj += ldv
                }
                let o = out + i * ldo + c
                store(a0, o)
                if rowsHere > 1 { store(a1, o + ldo) }
                if rowsHere > 2 { store(a2, o + 2 * ldo) }
                if rowsHere > 3 { store(a3, o + 3 * ldo) }
                if wide {
                    store(b0, o + 8)
                    if rowsHere > 1 { store(b1, o + ldo + 8) }
                    if rowsHere > 2 { store(b2, o + 2 * ldo + 8) }
                    if rowsHere > 3 { store(b3, o + 3 * ldo + 8) }
                }
                c += wide ? 16 : 8
            }
            i += 4
        }
    }

    /// scores[j] = scale · q·k_j for one row, keys staged transposed; four independent accumulators.
    @inline(__always)
    static func singleRowScores(
        _ q: UnsafePointer<Float>, kT: UnsafePointer<Float>, padded: Int, d: Int, scale: Float,
        into scores: UnsafeMutablePointer<Float>
    ) {
        var jb = 0
        while jb + 32 <= padded {
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            var kp = kT + jb
            for dd in 0..<d {
                let w = V(repeating: q[dd])
                a0 = a0.addingProduct(w, load(kp))
                a1 = a1.addingProduct(w, load(kp + 8))
                a2 = a2.addingProduct(w, load(kp + 16))
                a3 = a3.addingProduct(w, load(kp + 24))
                kp += padded
            }
            store(a0 * scale, scores + jb)
            store(a1 * scale, scores + jb + 8)
            store(a2 * scale, scores + jb + 16)
            store(a3 * scale, scores + jb + 24)
            jb += 32
        }
        while jb < padded {
            var a = V()
            var kp = kT + jb
            for dd in 0..<d {
                a = a.addingProduct(V(repeating: q[dd]), load(kp))
                kp += padded
            }
            store(a * scale, scores + jb)
            jb += 8
        }
    }

    /// out = Σ_j p[j] · v_j for one row, 32 dimensions per pass.
    @inline(__always)
    static func singleRowValues(
        _ p: UnsafePointer<Float>, keys: Int, v: UnsafePointer<Float>, ldv: Int, d: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        var c = 0
        while c < d {
            let lanes = min(4, (d - c) / 8)
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            for j in 0..<keys {
                let w = V(repeating: p[j])
                let vj = v + j * ldv + c
                a0 = a0.addingProduct(w, load(vj))
                if lanes > 1 { a1 = a1.addingProduct(w, load(vj + 8)) }
                if lanes > 2 { a2 = a2.addingProduct(w, load(vj + 16)) }
                if lanes > 3 { a3 = a3.addingProduct(w, load(vj + 24)) }
            }
            store(a0, out + c)
            if lanes > 1 { store(a1, out + c + 8) }
            if lanes > 2 { store(a2, out + c + 16) }
            if lanes > 3 { store(a3, out + c + 24) }
            c += lanes * 8
        }
    }

    /// Attention of one query row over `count` cached keys and values of one head (rows `ld` apart), the shape
    /// of a decoder step: out = Σ_j softmax_j(scale · q·k_j) · v_j. `scores` holds `count` floats; `d` is a multiple
    /// of 8.
    public static func attendOne(
        q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ld: Int, count: Int,
        d: Int, scale: Float, scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>
    ) {
        for j in 0..<count {
            let k = keys + j * ld
            var acc = V()
            var c = 0
            while c < d {
                acc = acc.addingProduct(load(q + c), load(k + c))
                c += 8
            }
            scores[j] = acc.sum() * scale
        }
        softmaxRows(scores, rows: 1, cols: count, ld: count)
        singleRowValues(scores, keys: count, v: values, ldv: ld, d: d, into: out)
    }
}
