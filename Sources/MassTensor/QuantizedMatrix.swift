internal import CMassQuant

/// A weight matrix W [n, k] (PyTorch Linear layout) quantised to int8 per output channel (symmetric:
/// W ≈ scale[j] · q[j, :], |q| ≤ 127), packed for the int8 kernels of `CMassQuant` with each column's sum of
/// weights (the correction for the activations' zero point). Built once at load time.
///
/// Activations are quantised per row when a layer runs (`Activations`: uint8 with a scale and zero point per
/// row, the range always holding 0), and the product is accumulated exactly in int32: the only rounding is the
/// quantisation of the two operands.
public struct QuantizedMatrix: @unchecked Sendable {  // immutable after init
    /// The kernel that runs: `.vnni512` (vpdpbusd) where the CPU has AVX-512 VNNI, else `.avx2` (int16
    /// products, vpmaddwd). Tests run both where they can.
    public enum Kernel: Sendable, CaseIterable {
        case avx2, vnni512

        public static let best: Kernel = CPUFeatures.hasAVX512VNNI ? .vnni512 : .avx2
        public var isAvailable: Bool { self == .avx2 ? CPUFeatures.hasAVX2FMA : CPUFeatures.hasAVX512VNNI }
    }

    public let n: Int
    public let k: Int
    let panels: TensorStorage
    /// Per output channel: W[j, :] ≈ scales[j] · q[j, :].
    public let scales: [Float]
    let sums: [Int32]

    public init(_ weight: UnsafePointer<Float>, n: Int, k: Int) {
        self.n = n
        self.k = k
        panels = TensorStorage(zeroedByteCount: cmass_q8_packed_bytes(Int32(n), Int32(k)))
        var scales = [Float](repeating: 0, count: n)
        var sums = [Int32](repeating: 0, count: n)
        cmass_q8_pack(
            weight, Int32(n), Int32(k), panels.pointer.assumingMemoryBound(to: Int8.self), &scales, &sums)
        self.scales = scales
        self.sums = sums
    }

    /// From weights already quantised (a compressed model's file): q [n, k] row-major with |q| ≤ 127, and the
    /// scale of each output channel.
    public init(quantized q: UnsafePointer<Int8>, scales: [Float], n: Int, k: Int) {
        precondition(scales.count == n, "QuantizedMatrix: \(scales.count) scales for \(n) rows")
        self.n = n
        self.k = k
        panels = TensorStorage(zeroedByteCount: cmass_q8_packed_bytes(Int32(n), Int32(k)))
        var sums = [Int32](repeating: 0, count: n)
        cmass_q8_pack_int8(q, Int32(n), Int32(k), panels.pointer.assumingMemoryBound(to: Int8.self), &sums)
        self.scales = scales
        self.sums = sums
    }

    /// The int8 weights row-major [n, k] (what a compressed model's file holds).
    public var rowMajor: [Int8] {
        var out = [Int8](repeating: 0, count: n * k)
        for j in 0..<n { for i in 0..<k { out[j * k + i] = weight(row: j, column: i) } }
        return out
    }

    /// The int8 weight of output `row`, input `column` (tests, reports).
    public func weight(row: Int, column: Int) -> Int8 {
        let groups = Int(cmass_q8_depth(Int32(k))) / 4
        let offset = (row / 16) * groups * 64 + (column / 4) * 64 + (row % 16) * 4 + column % 4
        return panels.pointer.assumingMemoryBound(to: Int8.self)[offset]
    }

    /// The bytes the packed weights take (the model's size in int8).
    public var byteCount: Int { panels.byteCount + n * 8 }

    /// Rows of activations quantised to uint8: x[r, :] ≈ scales[r] · (q[r, :] - zeros[r]).
    public struct Activations {
        public let rows: Int
        public let k: Int
        /// [rows, depth], depth = k rounded up to 4 (padded with 0).
        public var values: [UInt8]
        public var scales: [Float]
        public var zeros: [Int32]
        public var depth: Int { Int(cmass_q8_depth(Int32(k))) }

        /// Quantises x [rows, k] (rows `lda` apart), rows split across the pool's threads.
        public init(_ x: UnsafePointer<Float>, rows: Int, k: Int, lda: Int, pool: ComputePool? = nil) {
            self.rows = rows
            self.k = k
            let depth = Int(cmass_q8_depth(Int32(k)))
            values = [UInt8](repeating: 0, count: rows * depth)
            scales = [Float](repeating: 0, count: rows)
            zeros = [Int32](repeating: 0, count: rows)
            values.withUnsafeMutableBufferPointer { q in
                scales.withUnsafeMutableBufferPointer { s in
                    zeros.withUnsafeMutableBufferPointer { z in
                        let (q, s, z) = (q.baseAddress!, s.baseAddress!, z.baseAddress!)
                        let run = { (r0: Int, r1: Int) in
                            cmass_q8_quantize_rows(
                                x + r0 * lda, Int32(r1 - r0), Int32(k), Int32(lda), q + r0 * depth, s + r0, z + r0)
                        }
                        if let pool, rows * k >= 1 << 15 {
                            pool.forRowRanges(rows, minimumRowsPerThread: 16) { r0, r1 in run(r0, r1) }
                        } else {
                            run(0, rows)
                        }
                    }
                }
            }
        }
    }

    /// y[rows, columns] (= or +=) x · Wᵀ + bias from quantised activations, for columns starting on a multiple
    /// of 16; y has rows `ldc` apart.
    public func linear(
        _ x: Activations, columns: Range<Int>, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>,
        ldc: Int, accumulate: Bool, kernel: Kernel = .best
    ) {
        precondition(columns.lowerBound % 16 == 0 && columns.upperBound <= n && x.k == k, "QuantizedMatrix.linear")
        precondition(kernel.isAvailable, "the \(kernel) int8 kernel on a CPU without it. This is a bug.")
        let gemm = kernel == .vnni512 ? cmass_q8_gemm_vnni512 : cmass_q8_gemm_avx2
        x.values.withUnsafeBufferPointer { q in
            x.scales.withUnsafeBufferPointer { xs in
                x.zeros.withUnsafeBufferPointer { zeros in
                    scales.withUnsafeBufferPointer { ws in
                        sums.withUnsafeBufferPointer { sums in
                            gemm(
                                q.baseAddress, xs.baseAddress, zeros.baseAddress, Int32(x.rows), Int32(k),
                                panels.pointer.assumingMemoryBound(to: Int8.self), ws.baseAddress, sums.baseAddress,
                                bias, Int32(columns.lowerBound), Int32(columns.upperBound), y, Int32(ldc),
                                accumulate ? 1 : 0)
                        }
                    }
                }
            }
        }
    }
}
