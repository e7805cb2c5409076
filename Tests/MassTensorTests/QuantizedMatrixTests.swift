import MassTensor
import Testing

/// The int8 kernels against a naive int32 reference on the same quantised operands (exact but for the last
/// float multiply), at odd shapes, on every kernel this CPU runs; the quantisers' bounds; the saturation case
/// that breaks vpmaddubsw; and the whole product against fp32.
@Suite struct QuantizedMatrixTests {
    static let kernels = QuantizedMatrix.Kernel.allCases.filter(\.isAvailable)

    /// y = xs·ws·(Σ q·w − zero·Σ w) + bias, in Int64 (cannot overflow) then Float.
    static func reference(
        _ a: QuantizedMatrix.Activations, _ w: QuantizedMatrix, bias: [Float]?, columns: Range<Int>
    ) -> [[Float]] {
        (0..<a.rows).map { r in
            columns.map { c in
                var dot: Int64 = 0
                var sum: Int64 = 0
                for i in 0..<a.k {
                    let weight = Int64(w.weight(row: c, column: i))
                    dot += Int64(a.values[r * a.depth + i]) * weight
                    sum += weight
                }
                let exact = Float(dot - Int64(a.zeros[r]) * sum)
                return exact * (a.scales[r] * w.scales[c]) + (bias?[c] ?? 0)
            }
        }
    }

    @Test(arguments: kernels) func kernelsMatchTheReferenceAtOddShapes(_ kernel: QuantizedMatrix.Kernel) {
        var seed: UInt64 = 100
        for (rows, n, k) in [
            (1, 1, 1), (1, 16, 4), (2, 15, 3), (3, 17, 5), (5, 63, 31), (6, 64, 384), (7, 65, 33), (13, 100, 1537),
            (4, 130, 7), (12, 48, 64),
        ] {
            seed += 3
            let w = randomFloats(n * k, seed: seed)
            let x = randomFloats(rows * k, seed: seed + 1).map { $0 * 3 + 0.5 }
            let bias = randomFloats(n, seed: seed + 2)
            let matrix = QuantizedMatrix(w, n: n, k: k)
            let a = QuantizedMatrix.Activations(x, rows: rows, k: k, lda: k)
            for (useBias, accumulate, start) in [(true, false, 0), (false, true, 0), (true, true, 16)] where start < n {
                let columns = start..<n
                let expected = Self.reference(a, matrix, bias: useBias ? bias : nil, columns: columns)
                let ldc = n + 3
                let before = randomFloats(rows * ldc, seed: seed + 4)
                var y = before
                bias.withUnsafeBufferPointer { b in
                    matrix.linear(
                        a, columns: columns, bias: useBias ? b.baseAddress : nil, into: &y, ldc: ldc,
                        accumulate: accumulate, kernel: kernel)
                }
                var worst: Float = 0
                for r in 0..<rows {
                    for c in 0..<ldc {
                        let old = before[r * ldc + c]
                        let want =
                            columns.contains(c)
                            ? expected[r][c - start] + (accumulate ? old : 0) : old
                        worst = max(worst, abs(y[r * ldc + c] - want) / max(1, abs(want)))
                    }
                }
                #expect(worst < 1e-5, "\(kernel) rows \(rows) n \(n) k \(k) bias \(useBias) acc \(accumulate)")
            }
        }
    }

    /// 255 × 127 in every product: a pair of them overflows int16 (vpmaddubsw saturates at 32767), and k = 4096
    /// of them reach 132 million in int32. Both kernels must give the exact sum.
    @Test(arguments: kernels) func saturatingOperandsAreExact(_ kernel: QuantizedMatrix.Kernel) {
        let k = 4096, n = 20, rows = 2
        // Rows 0 ≤ x ≤ 10 with the maximum in every place but one: q = 255, zero point 0.
        var x = [Float](repeating: 10, count: rows * k)
        x[0] = 0
        x[k] = 0
        var w = [Float](repeating: 1, count: n * k)
        for j in 0..<n where j % 2 == 1 { for i in 0..<k { w[j * k + i] = -1 } }
        let matrix = QuantizedMatrix(w, n: n, k: k)
        let a = QuantizedMatrix.Activations(x, rows: rows, k: k, lda: k)
        #expect(a.values[1] == 255 && a.zeros[0] == 0 && matrix.weight(row: 1, column: 5) == -127)
        var y = [Float](repeating: 0, count: rows * n)
        matrix.linear(a, columns: 0..<n, bias: nil, into: &y, ldc: n, accumulate: false, kernel: kernel)
        let expected = Self.reference(a, matrix, bias: nil, columns: 0..<n)
        #expect(y[0] == expected[0][0] && y[1] == expected[0][1] && y[n + 19] == expected[1][19])
        // And the value itself: 4095 · 10 (one place is 0).
        #expect(abs(y[0] - 40950) < 1 && abs(y[1] + 40950) < 1)
    }

    @Test func quantisersKeepTheirBounds() {
        let k = 37
        let w = randomFloats(5 * k, seed: 40).map { $0 * 4 }
        let matrix = QuantizedMatrix(w, n: 5, k: k)
        for j in 0..<5 {
            for i in 0..<k {
                let back = Float(matrix.weight(row: j, column: i)) * matrix.scales[j]
                #expect(abs(back - w[j * k + i]) <= matrix.scales[j] / 2 * 1.0001)
            }
        }
        // Rows all positive, all negative, mixed, constant zero: 0 is exact, the error at most half a step.
        let rows: [[Float]] = [
            (0..<k).map { Float($0) + 1 }, (0..<k).map { -Float($0) - 0.5 },
            (0..<k).map { Float($0 % 7) - 3.25 }, [Float](repeating: 0, count: k),
        ]
        let a = QuantizedMatrix.Activations(rows.flatMap { $0 }, rows: 4, k: k, lda: k)
        for r in 0..<4 {
            for i in 0..<k {
                let back = a.scales[r] * Float(Int32(a.values[r * a.depth + i]) - a.zeros[r])
                #expect(abs(back - rows[r][i]) <= a.scales[r] / 2 * 1.0001, "row \(r) column \(i)")
                if rows[r][i] == 0 { #expect(back == 0) }
            }
        }
        #expect(a.depth == 40 && a.values[a.depth - 1] == 0)
    }

    /// The whole int8 product against fp32 on MiniLM-like shapes: relative error of a few parts in a thousand.
    @Test func int8ProductIsCloseToFP32() {
        let rows = 24, n = 96, k = 384
        let w = randomFloats(n * k, seed: 50).map { $0 * 0.05 }
        let x = randomFloats(rows * k, seed: 51)
        let matrix = QuantizedMatrix(w, n: n, k: k)
        let a = QuantizedMatrix.Activations(x, rows: rows, k: k, lda: k)
        var y = [Float](repeating: 0, count: rows * n)
        matrix.linear(a, columns: 0..<n, bias: nil, into: &y, ldc: n, accumulate: false)
        var error: Float = 0
        var norm: Float = 0
        for r in 0..<rows {
            for c in 0..<n {
                var exact: Float = 0
                for i in 0..<k { exact += x[r * k + i] * w[c * k + i] }
                error += (y[r * n + c] - exact) * (y[r * n + c] - exact)
                norm += exact * exact
            }
        }
        #expect((error / norm).squareRoot() < 0.01)
    }
}
