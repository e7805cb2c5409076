extension Kernels {
    /// Floats of scratch memory `attentionHead` needs for `tokens` tokens of head dimension `d`.
    public static func attentionScratchCount(tokens: Int, d: Int) -> Int {
        let padded = (tokens + 7) & ~7
        return padded * d + tokens * padded
    }

    /// Scaled dot-product attention of one head of one sequence, without a mask:
    /// out[i, :] = Σ_j softmax_j(scale · q_i·k_j) · v_j. q, k and v are [tokens, d] with rows `ld` apart
    /// (views into a fused QKV matrix); out rows are `ldo` apart. `d` is a multiple of 8.
    ///
    /// Small per-head products are not worth a BLAS call (its fixed cost and packing dominate at 10–60
    /// tokens): Kᵀ is staged in scratch so every score row is a broadcast-FMA over 8 keys at a time.
    public static func attentionHead(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int, tokens t: Int, d: Int,
        scale: Float, scratch: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>, ldo: Int
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
        // Scores, four query rows at a time so each staged key vector feeds four FMAs.
        var i = 0
        while i < t {
            let rowsHere = min(4, t - i)
            let q0 = q + i * ld
            let q1 = q + (i + min(1, rowsHere - 1)) * ld
            let q2 = q + (i + min(2, rowsHere - 1)) * ld
            let q3 = q + (i + min(3, rowsHere - 1)) * ld
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
        softmaxRows(scores, rows: t, cols: t, ld: padded)
        for i in 0..<t {
            let p = scores + i * padded
            let o = out + i * ldo
            var c = 0
            while c < d {
                // Four 8-lane accumulators cover head dimensions up to 32 per pass.
                let lanes = min(4, (d - c) / 8)
                var a0 = V(), a1 = V(), a2 = V(), a3 = V()
                for j in 0..<t {
                    let w = V(repeating: p[j])
                    let vj = v + j * ld + c
                    a0 = a0.addingProduct(w, load(vj))
                    if lanes > 1 { a1 = a1.addingProduct(w, load(vj + 8)) }
                    if lanes > 2 { a2 = a2.addingProduct(w, load(vj + 16)) }
                    if lanes > 3 { a3 = a3.addingProduct(w, load(vj + 24)) }
                }
                store(a0, o + c)
                if lanes > 1 { store(a1, o + c + 8) }
                if lanes > 2 { store(a2, o + c + 16) }
                if lanes > 3 { store(a3, o + c + 24) }
                c += lanes * 8
            }
        }
    }
}
