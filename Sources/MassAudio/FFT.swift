import Foundation

/// A complex FFT of one fixed size in double precision, mixed radix (any factorisation into primes; radices 2,
/// 3, 4 and 5 are the common ones), with twiddles precomputed. Used by the log-mel front end (n_fft 400 =
/// 16 · 25), where double precision keeps the power of quiet bins exact enough for a 1e-4 log-mel gate.
public final class FFT: @unchecked Sendable {  // immutable after init; `transform` uses caller buffers
    public let size: Int
    let factors: [Int]
    let cosines: [Double]
    let sines: [Double]

    public init(size: Int) {
        precondition(size >= 1, "FFT size must be positive")
        self.size = size
        var n = size
        var f: [Int] = []
        for p in [4, 2, 3, 5] + Array(stride(from: 7, through: max(7, size), by: 2)) {
            while n % p == 0 && n > 1 {
                f.append(p)
                n /= p
            }
            if n == 1 { break }
        }
        factors = f
        cosines = (0..<size).map { cos(-2 * Double.pi * Double($0) / Double(size)) }
        sines = (0..<size).map { sin(-2 * Double.pi * Double($0) / Double(size)) }
    }

    /// X[k] = Σ x[n]·e^(−2πikn/N), in place in (re, im); `scratch` must hold 2 × size doubles.
    public func transform(
        re: UnsafeMutablePointer<Double>, im: UnsafeMutablePointer<Double>, scratch: UnsafeMutablePointer<Double>
    ) {
        recurse(re, im, size, 1, 0, scratch, scratch + size)
    }

    /// Decimation in time: x (with `stride`) of length n → its DFT written back to x's first n positions at
    /// the same stride. Twiddle index step is size / n.
    private func recurse(
        _ re: UnsafeMutablePointer<Double>, _ im: UnsafeMutablePointer<Double>, _ n: Int, _ stride: Int, _ level: Int,
        _ tr: UnsafeMutablePointer<Double>, _ ti: UnsafeMutablePointer<Double>
    ) {
        if n == 1 { return }
        let p = factors[level]
        let m = n / p
        // Sub-sequences r = 0..<p (elements r, r+p, ...) each transformed in place at stride stride·p.
        for r in 0..<p { recurse(re + r * stride, im + r * stride, m, stride * p, level + 1, tr, ti) }
        // Combine: X[k + q·m] = Σ_r W_n^{r(k + q m)} · F_r[k].
        let twiddleStep = size / n
        for k in 0..<m {
            for q in 0..<p {
                var sr = 0.0
                var si = 0.0
                let kk = k + q * m
                for r in 0..<p {
                    let fr = re[(r + k * p) * stride]
                    let fi = im[(r + k * p) * stride]
                    let t = (r * kk % n) * twiddleStep
                    let c = cosines[t]
                    let s = sines[t]
                    sr += fr * c - fi * s
                    si += fr * s + fi * c
                }
                tr[kk] = sr
                ti[kk] = si
            }
        }
        for i in 0..<n {
            re[i * stride] = tr[i]
            im[i * stride] = ti[i]
        }
    }
}
