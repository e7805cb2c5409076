/// Vectorised transcendental functions for the fused kernels (8 float lanes: one AVX2 register).
public enum VectorMath {
    public typealias V = SIMD8<Float>

    /// `a * b + c`, fused.
    @inline(__always)
    static func fma(_ a: V, _ b: V, _ c: V) -> V { c.addingProduct(a, b) }

    /// Lane-wise maximum and minimum (the standard library's generic `pointwiseMax` is not inlined).
    @inline(__always)
    public static func max(_ a: V, _ b: V) -> V { a.replacing(with: b, where: a .< b) }
    @inline(__always)
    public static func min(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .< a) }

    /// e^x, Cephes-style: x = n·ln2 + r, a degree-6 polynomial for e^r, and 2^n built in the exponent bits.
    /// Relative error within a few ulp on [-87.3, 88.3]; inputs are clamped to that range.
    /// Written with bit tricks only, because SIMD float→int conversions are not vectorised by the compiler.
    @inline(__always)
    public static func exp(_ xIn: V) -> V {
        let x = min(max(xIn, V(repeating: -87.33654)), V(repeating: 88.3762))
        // Adding 1.5·2^23 rounds to the nearest integer and leaves it in the low mantissa bits.
        let magic: Float = 12_582_912
        let shifted = fma(x, V(repeating: 1.442_695_04), V(repeating: magic))
        let n = shifted - magic
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
        // n is in [-126, 127] after the clamp: 2^n is (n + 127) in the exponent field.
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((integer &+ 127) &<< 23, to: V.self)
        return y * scale
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
