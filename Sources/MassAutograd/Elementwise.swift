import Foundation
import MassTensor

/// Elementwise ops: sums (with a row vector broadcast over rows, as a bias), products, scaling and the
/// activations, each with its derivative.
extension Variable {
    /// a + b, for equal shapes, or for `b` a vector as long as `a`'s last dimension (added to every row).
    public static func + (a: Variable, b: Variable) -> Variable {
        if a.shape == b.shape {
            var out = a.value
            out.withUnsafeMutableBufferPointer { o in
                b.value.withUnsafeBufferPointer { Kernels.add($0.baseAddress!, to: o.baseAddress!, count: o.count) }
            }
            return Variable(out, shape: a.shape, parents: [a, b]) { g in
                a.accumulate(g)
                b.accumulate(g)
            }
        }
        let width = b.count
        precondition(
            a.shape.last == width && b.shape.count == 1, "add: shapes \(a.shape) and \(b.shape) do not broadcast")
        var out = a.value
        let rows = a.count / max(width, 1)
        out.withUnsafeMutableBufferPointer { o in
            b.value.withUnsafeBufferPointer { v in
                for r in 0..<rows { Kernels.add(v.baseAddress!, to: o.baseAddress! + r * width, count: width) }
            }
        }
        return Variable(out, shape: a.shape, parents: [a, b]) { g in
            a.accumulate(g)
            guard b.requiresGrad else { return }
            var sum = [Float](repeating: 0, count: width)
            for r in 0..<rows {
                for c in 0..<width { sum[c] += g[r * width + c] }
            }
            b.accumulate(sum)
        }
    }

    /// a − b, for equal shapes.
    public static func - (a: Variable, b: Variable) -> Variable { a + b.scaled(-1) }

    /// a ⊙ b, for equal shapes.
    public static func * (a: Variable, b: Variable) -> Variable {
        precondition(a.shape == b.shape, "mul: shapes \(a.shape) and \(b.shape) differ")
        let out = zip(a.value, b.value).map { $0 * $1 }
        return Variable(out, shape: a.shape, parents: [a, b]) { g in
            if a.requiresGrad { a.accumulate(zip(g, b.value).map { $0 * $1 }) }
            if b.requiresGrad { b.accumulate(zip(g, a.value).map { $0 * $1 }) }
        }
    }

    /// s · x.
    public func scaled(_ s: Float) -> Variable {
        Variable(value.map { $0 * s }, shape: shape, parents: [self]) { [self] g in accumulate(g.map { $0 * s }) }
    }

    /// The same values with another shape of as many elements.
    public func reshaped(_ newShape: [Int]) -> Variable {
        precondition(newShape.reduce(1, *) == count, "reshape: \(shape) has \(count) elements, \(newShape) does not")
        return Variable(value, shape: newShape, parents: [self]) { [self] g in accumulate(g) }
    }

    /// GELU with the exact erf, as BERT's and PyTorch's default: x Φ(x); derivative Φ(x) + x φ(x).
    public func gelu() -> Variable {
        var out = value
        out.withUnsafeMutableBufferPointer { Kernels.gelu($0.baseAddress!, count: $0.count) }
        return Variable(out, shape: shape, parents: [self]) { [self] g in
            accumulate(Self.geluBackward(value, g))
        }
    }

    /// g ⊙ (Φ(x) + x φ(x)), eight lanes at a time with the vectorised erf and exp of the inference kernels (erf
    /// within 1.5e-7): the scalar libm calls took about a quarter of a BERT fine-tuning step.
    static func geluBackward(_ x: [Float], _ g: [Float]) -> [Float] {
        typealias V = VectorMath.V
        let inverseRoot2: Float = 1 / Float(2).squareRoot()
        let inverseRoot2Pi: Float = 1 / Float(2 * Float.pi).squareRoot()
        let count = x.count
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            x.withUnsafeBufferPointer { xs in
                g.withUnsafeBufferPointer { gs in
                    let (xp, gp, op) = (
                        UnsafeRawPointer(xs.baseAddress!), UnsafeRawPointer(gs.baseAddress!),
                        UnsafeMutableRawPointer(out.baseAddress!)
                    )
                    var i = 0
                    while i + 8 <= count {
                        let v = xp.loadUnaligned(fromByteOffset: i * 4, as: V.self)
                        let cdf = 0.5 * (1 + VectorMath.erf(v * inverseRoot2))
                        let pdf = inverseRoot2Pi * VectorMath.exp(-0.5 * v * v)
                        let d = gp.loadUnaligned(fromByteOffset: i * 4, as: V.self) * (cdf + v * pdf)
                        op.storeBytes(of: d, toByteOffset: i * 4, as: V.self)
                        i += 8
                    }
                    while i < count {
                        let v = xs[i]
                        let cdf = 0.5 * (1 + Foundation.erf(v * inverseRoot2))
                        let pdf = inverseRoot2Pi * Foundation.exp(-0.5 * v * v)
                        out[i] = gs[i] * (cdf + v * pdf)
                        i += 1
                    }
                }
            }
            initialized = count
        }
    }

    /// max(x, 0); the derivative at 0 is 0, as PyTorch's.
    public func relu() -> Variable {
        var out = value
        out.withUnsafeMutableBufferPointer { o in
            var i = 0
            let zero = SIMD8<Float>(repeating: 0)
            while i + 8 <= o.count {
                let raw = UnsafeMutableRawPointer(o.baseAddress! + i)
                raw.storeBytes(
                    of: VectorMath.max(raw.loadUnaligned(as: SIMD8<Float>.self), zero), as: SIMD8<Float>.self)
                i += 8
            }
            while i < o.count {
                o[i] = max(o[i], 0)
                i += 1
            }
        }
        return Variable(out, shape: shape, parents: [self]) { [self] g in
            let x = value
            accumulate(
                [Float](unsafeUninitializedCapacity: count) { d, initialized in
                    x.withUnsafeBufferPointer { xs in
                        g.withUnsafeBufferPointer { gs in for i in 0..<xs.count { d[i] = xs[i] > 0 ? gs[i] : 0 } }
                    }
                    initialized = x.count
                })
        }
    }

    /// min(max(x, 0), 6); the derivative is 1 strictly inside (0, 6), as PyTorch's hardtanh.
    public func relu6() -> Variable {
        var out = value
        out.withUnsafeMutableBufferPointer { Kernels.relu6($0.baseAddress!, count: $0.count) }
        return Variable(out, shape: shape, parents: [self]) { [self] g in
            accumulate(zip(g, value).map { $1 > 0 && $1 < 6 ? $0 : 0 })
        }
    }

    /// tanh(x); derivative 1 − tanh².
    public func tanh() -> Variable {
        let out = value.map { Foundation.tanh($0) }
        return Variable(out, shape: shape, parents: [self]) { [self] g in
            accumulate(zip(g, out).map { $0 * (1 - $1 * $1) })
        }
    }

    /// Inverted dropout: each element zeroed with probability `p`, the rest scaled by 1 / (1 − p), the mask drawn
    /// from `generator` (32 bits per element, so a seeded run repeats). Identity when `p` is 0.
    public func dropout(_ p: Float, generator: inout SeededGenerator) -> Variable {
        precondition(p >= 0 && p < 1, "dropout: p must be in [0, 1), got \(p)")
        guard p > 0 else { return self }
        let keep = 1 / (1 - p)
        let threshold = UInt32(min(Double(p) * 4_294_967_296, 4_294_967_295))
        var mask = [Float](repeating: 0, count: count)
        var i = 0
        while i < count {
            let bits = generator.next()
            if UInt32(truncatingIfNeeded: bits) >= threshold { mask[i] = keep }
            if i + 1 < count && UInt32(truncatingIfNeeded: bits >> 32) >= threshold { mask[i + 1] = keep }
            i += 2
        }
        var out = value
        for j in 0..<count { out[j] *= mask[j] }
        return Variable(out, shape: shape, parents: [self]) { [self] g in
            var d = g
            for j in 0..<count { d[j] *= mask[j] }
            accumulate(d)
        }
    }

    /// The sum of every element (a scalar).
    public func sum() -> Variable {
        Variable([value.reduce(0, +)], shape: [], parents: [self]) { [self] g in
            accumulate([Float](repeating: g[0], count: count))
        }
    }

    /// The mean of every element (a scalar).
    public func mean() -> Variable { sum().scaled(1 / Float(count)) }
}

/// SplitMix64: a small seeded generator, so that shuffles, dropout and initialisation repeat run to run.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Codable, Equatable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
