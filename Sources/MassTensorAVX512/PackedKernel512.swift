// The AVX-512 build of the packed small-row GEMM kernel (see MassTensor's PackedMatrix). This target is
// compiled for x86-64-v4; MassTensor calls into it only after checking that the CPU has AVX-512, so it must
// hold no global state and nothing else may call it.

/// y[rows, columns] (= or +=) x · Wᵀ + bias on weights packed in panels of 32 output columns
/// (for each k, 32 weights side by side). `columns.lowerBound` is a multiple of 32.
public enum PackedKernel512 {
    public static let panelWidth = 32
    typealias V = SIMD16<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(never)
    public static func linear(
        _ x: UnsafePointer<Float>, rows: Int, lda: Int, k: Int, panels: UnsafePointer<Float>, columns: Range<Int>,
        bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
    ) {
        var column = columns.lowerBound
        while column < columns.upperBound {
            let width = min(32, columns.upperBound - column)
            // k is cut in blocks so that the slice of the panel in use (32 × kBlock floats) stays in L1 while
            // every row block passes over it; partial sums go through y.
            var k0 = 0
            while k0 < k {
                let kc = min(kBlock, k - k0)
                let first = k0 == 0
                block(
                    x + k0, rows: rows, lda: lda, k: kc, panel: panels + (column / 32) * k * 32 + k0 * 32,
                    bias: first ? bias.map { $0 + column } : nil, into: y + column, ldc: ldc, width: width,
                    accumulate: accumulate || !first)
                k0 += kc
            }
            column += 32
        }
    }

    static let kBlock = 256

    @inline(__always)
    static func block(
        _ x: UnsafePointer<Float>, rows: Int, lda: Int, k: Int, panel: UnsafePointer<Float>,
        bias b: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, ldc: Int, width: Int, accumulate: Bool
    ) {
        // Blocks of 8 rows (16 accumulators), then 4, 2 and 1 for the rest: a block with fewer rows has
        // fewer independent FMA chains, so the tails use the widest kernel that fits.
        var r = 0
        if width <= 16 {
            // A narrow last panel (layers with 16, 40, 80, 112, 144 ... outputs): only its first half is real,
            // so the other half's FMAs are skipped.
            while r + 8 <= rows {
                let c = kernel8Narrow(x + r * lda, lda: lda, k: k, panel: panel)
                let out = y + r * ldc
                store((c.0, V()), out, width, b, accumulate)
                store((c.1, V()), out + ldc, width, b, accumulate)
                store((c.2, V()), out + 2 * ldc, width, b, accumulate)
                store((c.3, V()), out + 3 * ldc, width, b, accumulate)
                store((c.4, V()), out + 4 * ldc, width, b, accumulate)
                store((c.5, V()), out + 5 * ldc, width, b, accumulate)
                store((c.6, V()), out + 6 * ldc, width, b, accumulate)
                store((c.7, V()), out + 7 * ldc, width, b, accumulate)
                r += 8
            }
        }
        while r + 8 <= rows {
            let c = kernel8(x + r * lda, lda: lda, k: k, panel: panel)
            let out = y + r * ldc
            store(c.0, out, width, b, accumulate)
            store(c.1, out + ldc, width, b, accumulate)
            store(c.2, out + 2 * ldc, width, b, accumulate)
            store(c.3, out + 3 * ldc, width, b, accumulate)
            store(c.4, out + 4 * ldc, width, b, accumulate)
            store(c.5, out + 5 * ldc, width, b, accumulate)
            store(c.6, out + 6 * ldc, width, b, accumulate)
            store(c.7, out + 7 * ldc, width, b, accumulate)
            r += 8
        }
        if r + 4 <= rows {
            let c = kernel4(x + r * lda, lda: lda, k: k, panel: panel)
            let out = y + r * ldc
            store(c.0, out, width, b, accumulate)
            store(c.1, out + ldc, width, b, accumulate)
            store(c.2, out + 2 * ldc, width, b, accumulate)
            store(c.3, out + 3 * ldc, width, b, accumulate)
            r += 4
        }
        if r + 2 <= rows {
            let c = kernel2(x + r * lda, lda: lda, k: k, panel: panel)
            let out = y + r * ldc
            store(c.0, out, width, b, accumulate)
            store(c.1, out + ldc, width, b, accumulate)
            r += 2
        }
        if r < rows {
            store(kernel1(x + r * lda, k: k, panel: panel), y + r * ldc, width, b, accumulate)
        }
    }

    @inline(__always)
    static func store(
        _ acc: (V, V), _ row: UnsafeMutablePointer<Float>, _ width: Int, _ bias: UnsafePointer<Float>?,
        _ accumulate: Bool
    ) {
        var (a, b) = acc
        if width == 32 {
            if let bias {
                a += load(bias)
                b += load(bias + 16)
            }
            if accumulate {
                a += load(row)
                b += load(row + 16)
            }
            UnsafeMutableRawPointer(row).storeBytes(of: a, as: V.self)
            UnsafeMutableRawPointer(row + 16).storeBytes(of: b, as: V.self)
        } else if width >= 16 {
            if let bias { a += load(bias) }
            if accumulate { a += load(row) }
            UnsafeMutableRawPointer(row).storeBytes(of: a, as: V.self)
            for j in 16..<width {
                var v = b[j - 16]
                if let bias { v += bias[j] }
                row[j] = accumulate ? row[j] + v : v
            }
        } else {
            for j in 0..<width {
                var v = a[j]
                if let bias { v += bias[j] }
                row[j] = accumulate ? row[j] + v : v
            }
        }
    }

    /// Eight rows of a panel's first 16 columns.
    @inline(__always)
    static func kernel8Narrow(_ x: UnsafePointer<Float>, lda: Int, k: Int, panel: UnsafePointer<Float>)
        -> (V, V, V, V, V, V, V, V)
    {
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V(), c7 = V()
        var w = panel
        var xp = x
        let l2 = 2 * lda, l3 = 3 * lda, l4 = 4 * lda, l5 = 5 * lda, l6 = 6 * lda, l7 = 7 * lda
        for _ in 0..<k {
            let w0 = load(w)
            c0 = c0.addingProduct(V(repeating: xp[0]), w0)
            c1 = c1.addingProduct(V(repeating: xp[lda]), w0)
            c2 = c2.addingProduct(V(repeating: xp[l2]), w0)
            c3 = c3.addingProduct(V(repeating: xp[l3]), w0)
            c4 = c4.addingProduct(V(repeating: xp[l4]), w0)
            c5 = c5.addingProduct(V(repeating: xp[l5]), w0)
            c6 = c6.addingProduct(V(repeating: xp[l6]), w0)
            c7 = c7.addingProduct(V(repeating: xp[l7]), w0)
            w += 32
            xp += 1
        }
        return (c0, c1, c2, c3, c4, c5, c6, c7)
    }

    @inline(__always)
    static func kernel4(_ x: UnsafePointer<Float>, lda: Int, k: Int, panel: UnsafePointer<Float>) -> (
        (V, V), (V, V), (V, V), (V, V)
    ) {
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        let x0 = x, x1 = x + lda, x2 = x + 2 * lda, x3 = x + 3 * lda
        var w = panel
        for p in 0..<k {
            let w0 = load(w), w1 = load(w + 16)
            let a0 = V(repeating: x0[p]), a1 = V(repeating: x1[p])
            let a2 = V(repeating: x2[p]), a3 = V(repeating: x3[p])
            c00 = c00.addingProduct(a0, w0)
            c01 = c01.addingProduct(a0, w1)
            c10 = c10.addingProduct(a1, w0)
            c11 = c11.addingProduct(a1, w1)
            c20 = c20.addingProduct(a2, w0)
            c21 = c21.addingProduct(a2, w1)
            c30 = c30.addingProduct(a3, w0)
            c31 = c31.addingProduct(a3, w1)
            w += 32
        }
        return ((c00, c01), (c10, c11), (c20, c21), (c30, c31))
    }

    @inline(__always)
    static func kernel8(_ x: UnsafePointer<Float>, lda: Int, k: Int, panel: UnsafePointer<Float>)
        -> ((V, V), (V, V), (V, V), (V, V), (V, V), (V, V), (V, V), (V, V))
    {
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V(), c70 = V(), c71 = V()
        var w = panel
        var xp = x
        let l2 = 2 * lda, l3 = 3 * lda, l4 = 4 * lda, l5 = 5 * lda, l6 = 6 * lda, l7 = 7 * lda
        for _ in 0..<k {
            let w0 = load(w), w1 = load(w + 16)
            var a = V(repeating: xp[0])
            c00 = c00.addingProduct(a, w0)
            c01 = c01.addingProduct(a, w1)
            a = V(repeating: xp[lda])
            c10 = c10.addingProduct(a, w0)
            c11 = c11.addingProduct(a, w1)
            a = V(repeating: xp[l2])
            c20 = c20.addingProduct(a, w0)
            c21 = c21.addingProduct(a, w1)
            a = V(repeating: xp[l3])
            c30 = c30.addingProduct(a, w0)
            c31 = c31.addingProduct(a, w1)
            a = V(repeating: xp[l4])
            c40 = c40.addingProduct(a, w0)
            c41 = c41.addingProduct(a, w1)
            a = V(repeating: xp[l5])
            c50 = c50.addingProduct(a, w0)
            c51 = c51.addingProduct(a, w1)
            a = V(repeating: xp[l6])
            c60 = c60.addingProduct(a, w0)
            c61 = c61.addingProduct(a, w1)
            a = V(repeating: xp[l7])
            c70 = c70.addingProduct(a, w0)
            c71 = c71.addingProduct(a, w1)
            w += 32
            xp += 1
        }
        return ((c00, c01), (c10, c11), (c20, c21), (c30, c31), (c40, c41), (c50, c51), (c60, c61), (c70, c71))
    }

    /// Two rows; k is split in even and odd steps so four FMA chains run side by side.
    @inline(__always)
    static func kernel2(_ x: UnsafePointer<Float>, lda: Int, k: Int, panel: UnsafePointer<Float>) -> ((V, V), (V, V)) {
        var c00 = V(), c01 = V(), c10 = V(), c11 = V()
        var d00 = V(), d01 = V(), d10 = V(), d11 = V()
        let x0 = x, x1 = x + lda
        var w = panel
        var p = 0
        while p + 2 <= k {
            let w0 = load(w), w1 = load(w + 16), w2 = load(w + 32), w3 = load(w + 48)
            let a0 = V(repeating: x0[p]), a1 = V(repeating: x1[p])
            let b0 = V(repeating: x0[p + 1]), b1 = V(repeating: x1[p + 1])
            c00 = c00.addingProduct(a0, w0)
            c01 = c01.addingProduct(a0, w1)
            c10 = c10.addingProduct(a1, w0)
            c11 = c11.addingProduct(a1, w1)
            d00 = d00.addingProduct(b0, w2)
            d01 = d01.addingProduct(b0, w3)
            d10 = d10.addingProduct(b1, w2)
            d11 = d11.addingProduct(b1, w3)
            w += 64
            p += 2
        }
        if p < k {
            let w0 = load(w), w1 = load(w + 16)
            c00 = c00.addingProduct(V(repeating: x0[p]), w0)
            c01 = c01.addingProduct(V(repeating: x0[p]), w1)
            c10 = c10.addingProduct(V(repeating: x1[p]), w0)
            c11 = c11.addingProduct(V(repeating: x1[p]), w1)
        }
        return ((c00 + d00, c01 + d01), (c10 + d10, c11 + d11))
    }

    /// One row; k is split four ways so eight FMA chains run side by side.
    @inline(__always)
    static func kernel1(_ x: UnsafePointer<Float>, k: Int, panel: UnsafePointer<Float>) -> (V, V) {
        var c0 = V(), c1 = V(), d0 = V(), d1 = V(), e0 = V(), e1 = V(), f0 = V(), f1 = V()
        var w = panel
        var p = 0
        while p + 4 <= k {
            let a = V(repeating: x[p]), b = V(repeating: x[p + 1])
            let c = V(repeating: x[p + 2]), d = V(repeating: x[p + 3])
            c0 = c0.addingProduct(a, load(w))
            c1 = c1.addingProduct(a, load(w + 16))
            d0 = d0.addingProduct(b, load(w + 32))
            d1 = d1.addingProduct(b, load(w + 48))
            e0 = e0.addingProduct(c, load(w + 64))
            e1 = e1.addingProduct(c, load(w + 80))
            f0 = f0.addingProduct(d, load(w + 96))
            f1 = f1.addingProduct(d, load(w + 112))
            w += 128
            p += 4
        }
        while p < k {
            let a = V(repeating: x[p])
            c0 = c0.addingProduct(a, load(w))
            c1 = c1.addingProduct(a, load(w + 16))
            w += 32
            p += 1
        }
        return ((c0 + d0) + (e0 + f0), (c1 + d1) + (e1 + f1))
    }
}
