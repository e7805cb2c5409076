import Foundation

/// Fused CPU kernels on float32 rows. All pointers are row-major; `ld` is the distance between rows in floats.
///
/// Each kernel has a naive twin in `Reference`, which tests use as ground truth.
public enum Kernels {
    public typealias V = SIMD8<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// y[i] += v[i] for i in 0..<count.
    @inline(__always)
    public static func add(_ v: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, count: Int) {
        var c = 0
        while c + 8 <= count {
            store(load(y + c) + load(v + c), y + c)
            c += 8
        }
        while c < count {
            y[c] += v[c]
            c += 1
        }
    }

    /// In place: x = GELU(x) on `count` elements (exact erf GELU).
    public static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var c = 0
        while c + 8 <= count {
            store(VectorMath.gelu(load(x + c)), x + c)
            c += 8
        }
        if c < count {
            var tail = V(repeating: 0)
            for i in c..<count { tail[i - c] = x[i] }
            let g = VectorMath.gelu(tail)
            for i in c..<count { x[i] = g[i - c] }
        }
    }

    /// In place LayerNorm over the last dimension: x = (x − mean) / sqrt(var + eps) · gamma + beta,
    /// with the biased variance (as PyTorch).
    public static func layerNorm(
        _ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, gamma: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, eps: Float
    ) {
        precondition(cols % 8 == 0, "layerNorm needs a multiple of 8 columns, got \(cols). This is a bug.")
        let inverseCount = 1 / Float(cols)
        for r in 0..<rows {
            let row = x + r * cols
            var acc = V(repeating: 0)
            var c = 0
            while c < cols {
                acc += load(row + c)
                c += 8
            }
            let mean = acc.sum() * inverseCount
            let meanV = V(repeating: mean)
            var sq = V(repeating: 0)
            c = 0
            while c < cols {
                let d = load(row + c) - meanV
                sq = sq.addingProduct(d, d)
                c += 8
            }
            let scale = V(repeating: 1 / (sq.sum() * inverseCount + eps).squareRoot())
            c = 0
            while c < cols {
                let d = (load(row + c) - meanV) * scale
                store(load(beta + c).addingProduct(d, load(gamma + c)), row + c)
                c += 8
            }
        }
    }

    /// In place, per row: x = softmax(x) over the first `cols` entries of each row (rows `ld` apart).
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int) {
        for r in 0..<rows {
            let row = x + r * ld
            var maxV = V(repeating: -.infinity)
            var c = 0
            while c + 8 <= cols {
                maxV = VectorMath.max(maxV, load(row + c))
                c += 8
            }
            var m = Swift.max(
                Swift.max(Swift.max(maxV[0], maxV[1]), Swift.max(maxV[2], maxV[3])),
                Swift.max(Swift.max(maxV[4], maxV[5]), Swift.max(maxV[6], maxV[7])))
            for i in c..<cols { m = Swift.max(m, row[i]) }
            let mV = V(repeating: m)
            var sumV = V(repeating: 0)
            c = 0
            while c + 8 <= cols {
                let e = VectorMath.exp(load(row + c) - mV)
                store(e, row + c)
                sumV += e
                c += 8
            }
            var sum = sumV.sum()
            if c < cols {
                var tail = V(repeating: -.infinity)
                for i in c..<cols { tail[i - c] = row[i] - m }
                let e = VectorMath.exp(tail)
                for i in c..<cols {
                    row[i] = e[i - c]
                    sum += e[i - c]
                }
            }
            let inv = V(repeating: 1 / sum)
            c = 0
            while c + 8 <= cols {
                store(load(row + c) * inv, row + c)
                c += 8
            }
            for i in c..<cols { row[i] *= inv[0] }
        }
    }

    /// The largest of x[0..<count] (count > 0).
    public static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var maxV = V(repeating: -.infinity)
        var c = 0
        while c + 8 <= count {
            maxV = VectorMath.max(maxV, load(x + c))
            c += 8
        }
        var m = maxV.max()
        for i in c..<count { m = Swift.max(m, x[i]) }
        return m
    }

    /// log Σ exp(x[i]) over x[0..<count], entries at or below -1e30 (disabled logits) counting as zero; -infinity
    /// when every entry is disabled.
    public static func logSumExp(_ x: UnsafePointer<Float>, count: Int) -> Float {
        let peak = maximum(x, count: count)
        guard peak > -1e30 else { return -.infinity }
        let peakV = V(repeating: peak)
        let off = V(repeating: -1e30)
        var sumV = V(repeating: 0)
        var c = 0
        while c + 8 <= count {
            let v = load(x + c)
            sumV += VectorMath.exp(v - peakV).replacing(with: 0, where: v .<= off)
            c += 8
        }
        var sum = sumV.sum()
        for i in c..<count where x[i] > -1e30 { sum += Foundation.exp(x[i] - peak) }
        return peak + Foundation.log(sum)
    }
}
