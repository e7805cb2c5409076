import Foundation

/// Naive, obviously-correct kernels: the ground truth that tests compare the fast kernels against.
/// Double accumulation, libm transcendental functions, no SIMD. Never used on a hot path.
public enum Reference {
    /// Row-major c = op(a)·op(b), op = transpose when asked; returns [m, n].
    public static func matmul(
        _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false
    ) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transA ? a[p * m + i] : a[i * k + p]
                    let bv = transB ? b[j * k + p] : b[p * n + j]
                    s += Double(av) * Double(bv)
                }
                c[i * n + j] = Float(s)
            }
        }
        return c
    }

    public static func gelu(_ x: Float) -> Float {
        Float(0.5 * Double(x) * (1 + Foundation.erf(Double(x) / 2.0.squareRoot())))
    }

    public static func layerNorm(_ row: [Float], gamma: [Float], beta: [Float], eps: Float) -> [Float] {
        let n = Double(row.count)
        let mean = row.reduce(0.0) { $0 + Double($1) } / n
        let variance = row.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        let inv = 1 / (variance + Double(eps)).squareRoot()
        return row.indices.map { Float((Double(row[$0]) - mean) * inv * Double(gamma[$0]) + Double(beta[$0])) }
    }

    public static func softmax(_ row: [Float]) -> [Float] {
        let m = row.max() ?? 0
        let e = row.map { Foundation.exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }
}
