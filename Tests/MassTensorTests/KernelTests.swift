import Foundation
import MassTensor
import MassTesting
import Testing

/// Deterministic pseudo-random floats in [-1, 1).
func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Float(state >> 40) / Float(1 << 23) - 1
    }
}

@Suite struct KernelTests {
    init() throws { try BLAS.load() }

    @Test(arguments: [(1, 7, 5), (3, 40, 33), (17, 64, 128), (70, 96, 384)])
    func sgemmMatchesReference(m: Int, n: Int, k: Int) {
        let a = randomFloats(m * k, seed: 1)
        let b = randomFloats(n * k, seed: 2)
        var c = [Float](repeating: 0, count: m * n)
        BLAS.sgemm(
            transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: k, beta: 0, c: &c, ldc: n)
        let expected = Reference.matmul(a, b, m: m, n: n, k: k, transB: true)
        #expect(Comparison.maxAbsDiff(c, expected) < 1e-4)
    }

    /// Every path of a Linear layer (packed kernel for few rows, OpenBLAS for many; 1 or 2 threads; with and
    /// without accumulation) against the naive product.
    @Test(arguments: [1, 3, 4, 5, 9, 63, 64, 130, 255, 256, 300], [1, 2])
    func linearMatchesReference(rows: Int, threads: Int) throws {
        let n = 40, k = 96
        let w = randomFloats(n * k, seed: 3)
        let bias = randomFloats(n, seed: 4)
        let x = randomFloats(rows * k, seed: 5)
        let layer = try Linear(weight: Tensor(shape: [n, k], values: w), bias: Tensor(shape: [n], values: bias))
        let pool = ComputePool(threads: threads)
        let product = Reference.matmul(x, w, m: rows, n: n, k: k, transB: true)
        var y = [Float](repeating: 0, count: rows * n)
        pool.apply(layer, x, rows: rows, into: &y)
        let expected = product.indices.map { product[$0] + bias[$0 % n] }
        #expect(Comparison.maxAbsDiff(y, expected) < 1e-4)
        // Both packed kernels directly, whichever the CPU would pick (the AVX2 one runs on Zen 3 machines).
        for kernel in PackedMatrix.usesAVX512 ? [PackedMatrix.Kernel.avx2, .avx512] : [.avx2] {
            let packed = PackedMatrix(w, n: n, k: k, kernel: kernel)
            var z = [Float](repeating: .nan, count: rows * n)
            packed.linear(x, rows: rows, lda: k, columns: 0..<n, bias: bias, into: &z, ldc: n, accumulate: false)
            #expect(Comparison.maxAbsDiff(z, expected) < 1e-4, "\(kernel)")
        }
        // Accumulate onto a residual.
        let residual = randomFloats(rows * n, seed: 6)
        var z = residual
        pool.apply(layer, x, rows: rows, into: &z, accumulate: true)
        #expect(Comparison.maxAbsDiff(z, expected.indices.map { expected[$0] + residual[$0] }) < 1e-4)
    }

    /// The row-split path of 1×1 convolutions, with narrow and ragged output widths (a 16-wide panel, a
    /// 24-wide one, 32 + 8) and a fused ReLU6, against the naive product.
    @Test(arguments: [16, 24, 40, 96], [1, 2])
    func applyByRowsMatchesReference(n: Int, threads: Int) throws {
        let k = 48, rows = 203
        let w = randomFloats(n * k, seed: 7)
        let bias = randomFloats(n, seed: 8)
        let x = randomFloats(rows * k, seed: 9).map { $0 * 8 }  // values past 6 and below 0 after the product
        let layer = try Linear(weight: Tensor(shape: [n, k], values: w), bias: Tensor(shape: [n], values: bias))
        let product = Reference.matmul(x, w, m: rows, n: n, k: k, transB: true)
        let linear = product.indices.map { product[$0] + bias[$0 % n] }
        var y = [Float](repeating: .nan, count: rows * n)
        ComputePool(threads: threads).applyByRows(layer, x, rows: rows, into: &y, activation: .relu6)
        #expect(Comparison.maxAbsDiff(y, linear.map { min(max($0, 0), 6) }) < 1e-4)
        #expect(linear.contains { $0 > 6 } && linear.contains { $0 < 0 }, "the clamp is exercised")
        var z = linear
        ComputePool(threads: threads).applyByRows(layer, x, rows: rows, into: &z, accumulate: true)
        #expect(Comparison.maxAbsDiff(z, linear.map { $0 * 2 }) < 1e-3)
    }

    @Test func geluMatchesErfGELU() {
        var x = (0..<4003).map { Float($0 - 2000) / 200 }  // -10 ... 10, not a multiple of 8
        let expected = x.map(Reference.gelu)
        Kernels.gelu(&x, count: x.count)
        #expect(Comparison.maxAbsDiff(x, expected) < 2e-6)
    }

    @Test func expIsAccurate() {
        for start in stride(from: Float(-87), to: 88, by: 0.37) {
            let v = VectorMath.exp(SIMD8<Float>((0..<8).map { start + Float($0) * 0.041 }))
            for i in 0..<8 {
                let x = Double(start + Float(i) * 0.041)
                let exact = Foundation.exp(x)
                #expect(abs(Double(v[i]) - exact) <= 4e-7 * exact, "exp(\(x))")
            }
        }
        #expect(VectorMath.exp(SIMD8(repeating: -200))[0] < 1e-37)
    }

    @Test func layerNormMatchesReference() {
        let cols = 384
        var x = randomFloats(3 * cols, seed: 7).map { $0 * 10 + 3 }
        let gamma = randomFloats(cols, seed: 8)
        let beta = randomFloats(cols, seed: 9)
        let expected = (0..<3).flatMap {
            Reference.layerNorm(Array(x[($0 * cols)..<(($0 + 1) * cols)]), gamma: gamma, beta: beta, eps: 1e-12)
        }
        Kernels.layerNorm(&x, rows: 3, cols: cols, gamma: gamma, beta: beta, eps: 1e-12)
        #expect(Comparison.maxAbsDiff(x, expected) < 1e-5)
    }

    @Test(arguments: [1, 7, 8, 19, 256])
    func softmaxMatchesReference(cols: Int) {
        var x = randomFloats(2 * cols, seed: 10).map { $0 * 30 }
        let expected = Reference.softmax(Array(x[0..<cols])) + Reference.softmax(Array(x[cols...]))
        Kernels.softmaxRows(&x, rows: 2, cols: cols, ld: cols)
        #expect(Comparison.maxAbsDiff(x, expected) < 1e-6)
    }

    @Test func poolRunsEveryIndexOnce() {
        let pool = ComputePool(threads: 2)
        for count in [0, 1, 2, 3, 1000] {
            var hits = [Int](repeating: 0, count: count)
            hits.withUnsafeMutableBufferPointer { buffer in
                let base = buffer.baseAddress
                pool.parallelFor(count) { i in base![i] += 1 }
            }
            #expect(hits.allSatisfy { $0 == 1 })
        }
    }

    @Test func halfAndBFloat16Widening() {
        #expect(FloatConversion.float(fromHalfBits: 0x3C00) == 1)
        #expect(FloatConversion.float(fromHalfBits: 0xC000) == -2)
        #expect(FloatConversion.float(fromHalfBits: 0x7BFF) == 65504)
        #expect(FloatConversion.float(fromHalfBits: 0x0001) == 0x1p-24)
        #expect(FloatConversion.float(fromHalfBits: 0x7C00) == .infinity)
        #expect(FloatConversion.float(fromHalfBits: 0x7E00).isNaN)
        #expect(FloatConversion.float(fromBFloat16Bits: 0x3F80) == 1)
        #expect(FloatConversion.float(fromBFloat16Bits: 0xC040) == -3)
    }
}

@Suite struct AttentionKernelTests {
    /// One head against the naive softmax(q·kᵀ·scale)·v, on views with a row stride as in a fused QKV matrix.
    @Test(arguments: [1, 2, 7, 8, 9, 33], [8, 32, 64])
    func attentionHeadMatchesReference(tokens: Int, d: Int) {
        let ld = 3 * d + 5
        let qkv = randomFloats(tokens * ld, seed: UInt64(tokens * 100 + d)).map { $0 * 2 }
        let scale = 1 / Float(d).squareRoot()
        var expected = [Float](repeating: 0, count: tokens * d)
        for i in 0..<tokens {
            let logits = (0..<tokens).map { j in
                (0..<d).reduce(Float(0)) { $0 + qkv[i * ld + $1] * qkv[j * ld + d + $1] } * scale
            }
            let p = Reference.softmax(logits)
            for c in 0..<d {
                expected[i * d + c] = (0..<tokens).reduce(Float(0)) { $0 + p[$1] * qkv[$1 * ld + 2 * d + c] }
            }
        }
        var scratch = [Float](repeating: .nan, count: Kernels.attentionScratchCount(tokens: tokens, d: d))
        var out = [Float](repeating: 0, count: tokens * d)
        qkv.withUnsafeBufferPointer { b in
            let base = b.baseAddress!
            Kernels.attentionHead(
                q: base, k: base + d, v: base + 2 * d, ld: ld, tokens: tokens, d: d, scale: scale, scratch: &scratch,
                into: &out, ldo: d)
        }
        #expect(Comparison.maxAbsDiff(out, expected) < 1e-5)
    }

    /// With an additive bias given as one vector of per-distance values walked with stride −1 (MPNet's relative
    /// positions: row i, key j reads values[span − 1 + j − i]) against the naive form.
    @Test(arguments: [1, 5, 9, 33])
    func attentionHeadAddsARelativeBias(tokens: Int) {
        let d = 16
        let ld = 3 * d
        let span = 40
        let qkv = randomFloats(tokens * ld, seed: UInt64(tokens + 7)).map { $0 * 2 }
        let values = randomFloats(2 * span - 1, seed: 5).map { $0 * 4 }
        var expected = [Float](repeating: 0, count: tokens * d)
        for i in 0..<tokens {
            let p = Reference.softmax(
                (0..<tokens).map { j in
                    (0..<d).reduce(Float(0)) { $0 + qkv[i * ld + $1] * qkv[j * ld + d + $1] } * 0.25
                        + values[span - 1 + j - i]
                })
            for c in 0..<d {
                expected[i * d + c] = (0..<tokens).reduce(Float(0)) { $0 + p[$1] * qkv[$1 * ld + 2 * d + c] }
            }
        }
        var scratch = [Float](repeating: .nan, count: Kernels.attentionScratchCount(tokens: tokens, d: d))
        var out = [Float](repeating: 0, count: tokens * d)
        qkv.withUnsafeBufferPointer { b in
            values.withUnsafeBufferPointer { v in
                let base = b.baseAddress!
                Kernels.attentionHead(
                    q: base, k: base + d, v: base + 2 * d, ld: ld, tokens: tokens, d: d, scale: 0.25,
                    scratch: &scratch, into: &out, ldo: d, bias: v.baseAddress! + span - 1, biasStride: -1)
            }
        }
        #expect(Comparison.maxAbsDiff(out, expected) < 1e-5)
    }

    /// One query over a cache of `count` keys (a decoder step) against the naive form.
    @Test(arguments: [1, 2, 9, 100], [8, 64])
    func attendOneMatchesReference(count: Int, d: Int) {
        let ld = 2 * d
        let cache = randomFloats(count * ld, seed: UInt64(count * 7 + d))
        let q = randomFloats(d, seed: 99).map { $0 * 3 }
        let p = Reference.softmax(
            (0..<count).map { j in (0..<d).reduce(Float(0)) { $0 + q[$1] * cache[j * ld + $1] } * 0.5 })
        let expected = (0..<d).map { c in (0..<count).reduce(Float(0)) { $0 + p[$1] * cache[$1 * ld + d + c] } }
        var scores = [Float](repeating: .nan, count: count)
        var out = [Float](repeating: .nan, count: d)
        cache.withUnsafeBufferPointer { b in
            Kernels.attendOne(
                q: q, keys: b.baseAddress!, values: b.baseAddress! + d, ld: ld, count: count, d: d, scale: 0.5,
                scores: &scores, into: &out)
        }
        #expect(Comparison.maxAbsDiff(out, expected) < 1e-5)
    }
}

@Suite struct ReductionKernelTests {
    /// log Σ exp against double arithmetic; disabled entries (the lowest float) count as zero.
    @Test(arguments: [1, 7, 8, 51865])
    func logSumExpMatchesDouble(count: Int) {
        var x = randomFloats(count, seed: UInt64(count)).map { $0 * 20 }
        for i in stride(from: 0, to: count, by: 3) where count > 1 { x[i] = -.greatestFiniteMagnitude }
        let live = x.filter { $0 > -1e30 }
        let peak = Double(live.max()!)
        let expected = peak + Foundation.log(live.reduce(0.0) { $0 + Foundation.exp(Double($1) - peak) })
        x.withUnsafeBufferPointer { b in
            #expect(abs(Double(Kernels.logSumExp(b.baseAddress!, count: count)) - expected) < 1e-4)
            #expect(Kernels.maximum(b.baseAddress!, count: count) == Float(peak))
        }
        let disabled = [Float](repeating: -.greatestFiniteMagnitude, count: 9)
        #expect(disabled.withUnsafeBufferPointer { Kernels.logSumExp($0.baseAddress!, count: 9) } == -.infinity)
    }
}
