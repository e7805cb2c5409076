/// Vectorised transcendental functions for the fused kernels (8 float lanes: one AVX2 register).
public enum VectorMath {
    public typealias V = SIMD8<Float>

    /// `a * b + c`, fused.
    @inline(__always)
    static func fma(_ a: V, _ b: V, _ c: V) -> V { c.addingProduct(a, b) }

    /// e^x, Cephes-style: x = n·ln2 + r, a degree-6 polynomial for e^r, and 2^n built in the exponent bits.
    /// Relative error within a few ulp on [-87.3, 88.7]; inputs are clamped to that range.
    @inline(__always)
    public static func exp(_ xIn: V) -> V {
        let x = xIn.clamped(lowerBound: V(repeating: -87.33654), upperBound: V(repeating: 88.72283))
        let n = (x * 1.442_695_04).rounded(.toNearestOrEven)
        // ln 2 split in two so that n·ln2 is exact to float precision.
        var r = fma(n, V(repeating: -0.693_359_375), x)
        r = fma(n, V(repeating: 2.121_944_4e-4), r)
        var p = V(repeating: 1.987_569_15e-4)
        p = fma(p, r, V(repeating: 1.398_199_950_7e-3))
        p = fma(p, r, V(repeating: 8.333_451_907_3e-3))
        p = fma(p, r, V(repeating: 4.166_579_589_4e-2))
        p = fma(p, r, V(repeating: 1.666_666_545_9e-1))
        p = fma(p, r, V(repeating: 5.000_000_120_1e-1))
        let y = fma(p, r * r, r) + 1
        // Clamping keeps n in [-126, 128]; n = 128 only for x ≥ 88.38, where float overflows anyway.
        let e = (SIMD8<Int32>(n) &+ 127).clamped(lowerBound: .zero, upperBound: SIMD8(repeating: 254))
        return y * unsafeBitCast(e &<< 23, to: V.self)
    }

    /// erf(x) from Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7), odd-extended.
    @inline(__always)
    public static func erf(_ x: V) -> V {
        let a = x.replacing(with: -x, where: x .< 0)
        let t = 1 / fma(a, V(repeating: 0.327_591_1), V(repeating: 1))
        var poly = V(repeating: 1.061_405_429)
        poly = fma(poly, t, V(repeating: -1.453_152_027))
        poly = fma(poly, t, V(repeating: 1.421_413_741))
        poly = fma(poly, t, V(repeating: -0.284_496_736))
        poly = fma(poly, t, V(repeating: 0.254_829_592))
        poly = poly * t
        let y = 1 - poly * exp(V(repeating: 0) - a * a)
        return y.replacing(with: -y, where: x .< 0)
    }

    /// Exact (erf) GELU: 0.5·x·(1 + erf(x/√2)).
    @inline(__always)
    public static func gelu(_ x: V) -> V {
        0.5 * x * (1 + erf(x * 0.707_106_781_186_547_5))
    }
}
