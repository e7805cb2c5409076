internal import MassTensorAVX512

/// A weight matrix W [n, k] (PyTorch Linear layout) repacked for `PackedMatrix.linear`: panels of
/// `panelWidth` output columns (32 on AVX-512 CPUs, else 16), each panel holding, for every k, the weights of
/// its columns side by side (n padded with zeros). Built once at load time.
///
/// Why: for the few-token products of single requests, OpenBLAS spends more time repacking W on every call
/// than multiplying; a pre-packed W and a register-blocked kernel (8×32 AVX-512, or 4×16 AVX2) avoid that. Large products still go
/// to OpenBLAS, whose AVX-512 kernels win there.
public struct PackedMatrix: @unchecked Sendable {  // immutable after init
    /// Whether the AVX-512 kernel (32-column panels) runs on this CPU.
    public static let usesAVX512 = CPUFeatures.hasAVX512
    public let panelWidth: Int
    public let n: Int
    public let k: Int
    let panels: TensorStorage

    /// The kernel that runs: `.avx512` only where the CPU has it (`usesAVX512`); `.avx2` anywhere (tests use it
    /// to cover the AVX2 path on AVX-512 machines).
    public enum Kernel: Sendable { case avx2, avx512 }

    public init(_ weight: UnsafePointer<Float>, n: Int, k: Int, kernel: Kernel? = nil) {
        self.n = n
        self.k = k
        let chosen = kernel ?? (Self.usesAVX512 ? .avx512 : .avx2)
        precondition(chosen == .avx2 || Self.usesAVX512, "the AVX-512 kernel on a CPU without AVX-512. This is a bug.")
        let width = chosen == .avx512 ? PackedKernel512.panelWidth : 16
        panelWidth = width
        let panelCount = (n + width - 1) / width
        panels = TensorStorage(zeroedByteCount: panelCount * width * k * 4)
        let dst = panels.pointer.assumingMemoryBound(to: Float.self)
        for p in 0..<panelCount {
            for j in 0..<min(width, n - p * width) {
                let row = weight + (p * width + j) * k
                for kk in 0..<k { dst[(p * k + kk) * width + j] = row[kk] }
            }
        }
    }

    typealias V = SIMD8<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    /// y[rows, columns n0..<n1] (= or +=) x · Wᵀ + bias, for n0 a multiple of `panelWidth`. x is [rows, k] with
    /// rows `lda` apart; y has rows `ldc` apart.
    public func linear(
        _ x: UnsafePointer<Float>, rows: Int, lda: Int, columns: Range<Int>, bias: UnsafePointer<Float>?,
        into y: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
    ) {
        precondition(
            columns.lowerBound % panelWidth == 0,
            "PackedMatrix.linear: column range must start on a panel. This is a bug.")
        let base = panels.pointer.assumingMemoryBound(to: Float.self)
        if panelWidth == PackedKernel512.panelWidth {
            PackedKernel512.linear(
                x, rows: rows, lda: lda, k: k, panels: base, columns: columns, bias: bias, into: y, ldc: ldc,
                accumulate: accumulate)
            return
        }
        var column = columns.lowerBound
        while column < columns.upperBound {
            let width = min(16, columns.upperBound - column)
            let panel = UnsafePointer(base + (column / 16) * k * 16)
            var r = 0
            while r + 4 <= rows {
                let c = kernel4(x + r * lda, lda: lda, panel: panel)
                let b = bias.map { $0 + column }
                let out = y + r * ldc + column
                store(c.0, row: out, width: width, bias: b, accumulate: accumulate)
                store(c.1, row: out + ldc, width: width, bias: b, accumulate: accumulate)
                store(c.2, row: out + 2 * ldc, width: width, bias: b, accumulate: accumulate)
                store(c.3, row: out + 3 * ldc, width: width, bias: b, accumulate: accumulate)
                r += 4
            }
            while r < rows {
                store(
                    kernel1(x + r * lda, panel: panel), row: y + r * ldc + column, width: width,
                    bias: bias.map { $0 + column }, accumulate: accumulate)
                r += 1
            }
            column += 16
        }
    }

    @inline(__always)
    private func store(
        _ acc: (V, V), row: UnsafeMutablePointer<Float>, width: Int, bias: UnsafePointer<Float>?, accumulate: Bool
    ) {
        var (a, b) = acc
        if width == 16 {
            if let bias {
                a += Self.load(bias)
                b += Self.load(bias + 8)
            }
            if accumulate {
                a += Self.load(row)
                b += Self.load(row + 8)
            }
            UnsafeMutableRawPointer(row).storeBytes(of: a, as: V.self)
            UnsafeMutableRawPointer(row + 8).storeBytes(of: b, as: V.self)
        } else {
            for j in 0..<width {
                var v = j < 8 ? a[j] : b[j - 8]
                if let bias { v += bias[j] }
                row[j] = accumulate ? row[j] + v : v
            }
        }
    }

    /// Four rows of x times one 16-column panel: 8 accumulators in registers.
    @inline(__always)
    private func kernel4(_ x: UnsafePointer<Float>, lda: Int, panel: UnsafePointer<Float>) -> (
        (V, V), (V, V), (V, V), (V, V)
    ) {
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        let x0 = x, x1 = x + lda, x2 = x + 2 * lda, x3 = x + 3 * lda
        var w = panel
        for p in 0..<k {
            let w0 = Self.load(w), w1 = Self.load(w + 8)
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
            w += 16
        }
        return ((c00, c01), (c10, c11), (c20, c21), (c30, c31))
    }

    /// One row of x times one panel.
    @inline(__always)
    private func kernel1(_ x: UnsafePointer<Float>, panel: UnsafePointer<Float>) -> (V, V) {
        var c0 = V(), c1 = V()
        var w = panel
        for p in 0..<k {
            let a = V(repeating: x[p])
            c0 = c0.addingProduct(a, Self.load(w))
            c1 = c1.addingProduct(a, Self.load(w + 8))
            w += 16
        }
        return (c0, c1)
    }
}
