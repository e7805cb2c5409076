import Foundation
import MassTensor

/// Ops over the last dimension: LayerNorm, softmax and L2 normalisation.
extension Variable {
    /// LayerNorm over the last dimension with the biased variance, as PyTorch: (x − mean) / sqrt(var + eps) ·
    /// gamma + beta.
    public func layerNorm(_ gamma: Variable, _ beta: Variable, eps: Float) -> Variable {
        let (m, n) = (rows, columns)
        precondition(gamma.shape == [n] && beta.shape == [n], "layerNorm: gamma/beta must be [\(n)]")
        var normalized = [Float](repeating: 0, count: count)  // x̂, kept for the backward pass
        var inverseStd = [Float](repeating: 0, count: m)
        var out = [Float](repeating: 0, count: count)
        for r in 0..<m {
            let row = value[(r * n)..<((r + 1) * n)]
            let mean = row.reduce(0, +) / Float(n)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(n)
            let inv = 1 / (variance + eps).squareRoot()
            inverseStd[r] = inv
            for c in 0..<n {
                let xhat = (value[r * n + c] - mean) * inv
                normalized[r * n + c] = xhat
                out[r * n + c] = xhat * gamma.value[c] + beta.value[c]
            }
        }
        return Variable(out, shape: shape, parents: [self, gamma, beta]) { [self] g in
            if gamma.requiresGrad || beta.requiresGrad {
                var dGamma = [Float](repeating: 0, count: n)
                var dBeta = [Float](repeating: 0, count: n)
                for r in 0..<m {
                    for c in 0..<n {
                        dGamma[c] += g[r * n + c] * normalized[r * n + c]
                        dBeta[c] += g[r * n + c]
                    }
                }
                gamma.accumulate(dGamma)
                beta.accumulate(dBeta)
            }
            guard requiresGrad else { return }
            // dx = inv / n · (n·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂)), dx̂ = g · gamma.
            var dx = [Float](repeating: 0, count: count)
            for r in 0..<m {
                var sum: Float = 0
                var dot: Float = 0
                for c in 0..<n {
                    let dxhat = g[r * n + c] * gamma.value[c]
                    sum += dxhat
                    dot += dxhat * normalized[r * n + c]
                }
                for c in 0..<n {
                    let dxhat = g[r * n + c] * gamma.value[c]
                    dx[r * n + c] = inverseStd[r] / Float(n) * (Float(n) * dxhat - sum - normalized[r * n + c] * dot)
                }
            }
            accumulate(dx)
        }
    }

    /// Softmax over the last dimension; derivative y ⊙ (g − Σ g·y).
    public func softmax() -> Variable {
        let (m, n) = (rows, columns)
        var out = value
        out.withUnsafeMutableBufferPointer { Kernels.softmaxRows($0.baseAddress!, rows: m, cols: n, ld: n) }
        return Variable(out, shape: shape, parents: [self]) { [self] g in
            accumulate(Self.softmaxBackward(out, g, rows: m, cols: n))
        }
    }

    static func softmaxBackward(_ y: [Float], _ g: [Float], rows: Int, cols: Int) -> [Float] {
        var d = [Float](repeating: 0, count: y.count)
        for r in 0..<rows {
            var dot: Float = 0
            for c in 0..<cols { dot += g[r * cols + c] * y[r * cols + c] }
            for c in 0..<cols { d[r * cols + c] = y[r * cols + c] * (g[r * cols + c] - dot) }
        }
        return d
    }

    /// Each row divided by its L2 norm (at least `eps`, as PyTorch's `F.normalize`).
    public func l2Normalized(eps: Float = 1e-12) -> Variable {
        let (m, n) = (rows, columns)
        var norms = [Float](repeating: 0, count: m)
        var out = value
        for r in 0..<m {
            let norm = max(value[(r * n)..<((r + 1) * n)].reduce(0) { $0 + $1 * $1 }.squareRoot(), eps)
            norms[r] = norm
            for c in 0..<n { out[r * n + c] /= norm }
        }
        return Variable(out, shape: shape, parents: [self]) { [self] g in
            var d = [Float](repeating: 0, count: count)
            for r in 0..<m {
                var dot: Float = 0
                for c in 0..<n { dot += g[r * n + c] * out[r * n + c] }
                // Below eps the norm is a constant, so only the scaling passes back.
                let clamped = norms[r] == eps
                for c in 0..<n {
                    d[r * n + c] = (g[r * n + c] - (clamped ? 0 : out[r * n + c] * dot)) / norms[r]
                }
            }
            accumulate(d)
        }
    }
}
