import Foundation

/// A band-limited resampler: windowed-sinc interpolation (Kaiser window, β = 8.6, 32 zero crossings each side
/// of the centre at the narrower of the two bandwidths, cutoff 0.95 of it), evaluated from a table of filter
/// phases. For a rational ratio L/M (in lowest terms, L ≤ 4096) every output sample uses its exact phase;
/// other ratios use the nearest of 4,096 phases.
public struct Resampler: Sendable {
    public let inputRate: Int
    public let outputRate: Int
    let phases: Int
    let taps: Int
    /// `phases` × `taps` coefficients; phase p holds the filter for an output sample whose position falls p/phases
    /// past an input sample.
    let table: [Float]
    let halfWidth: Int
    /// The greatest common divisor of the rates; phases are exact when `phases` is `outputRate / divisor`.
    let divisor: Int

    static let zeroCrossings = 32
    static let beta = 8.6
    static let cutoff = 0.95

    public init(from inputRate: Int, to outputRate: Int) {
        precondition(inputRate > 0 && outputRate > 0, "Resampler: sample rates must be positive")
        self.inputRate = inputRate
        self.outputRate = outputRate
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        divisor = gcd(inputRate, outputRate)
        let l = outputRate / divisor
        phases = l <= 4096 ? l : 4096
        // Cutoff in cycles per input sample: below both Nyquist frequencies.
        let fc = Self.cutoff * 0.5 * min(1, Double(outputRate) / Double(inputRate))
        halfWidth = Int((Double(Self.zeroCrossings) / (2 * fc)).rounded(.up))
        taps = 2 * halfWidth
        var table = [Float](repeating: 0, count: phases * taps)
        let i0beta = Self.besselI0(Self.beta)
        for p in 0..<phases {
            let frac = Double(p) / Double(phases)
            var sum = 0.0
            var row = [Double](repeating: 0, count: taps)
            for t in 0..<taps {
                // Tap t sits at input offset (t - halfWidth + 1) from the sample before the output position.
                let d = Double(t - halfWidth + 1) - frac
                let x = 2 * fc * d
                let sinc = x == 0 ? 1 : sin(Double.pi * x) / (Double.pi * x)
                let r = d / Double(halfWidth)
                let window = abs(r) >= 1 ? 0 : Self.besselI0(Self.beta * (1 - r * r).squareRoot()) / i0beta
                row[t] = 2 * fc * sinc * window
                sum += row[t]
            }
            for t in 0..<taps { table[p * taps + t] = Float(row[t] / sum) }  // unit DC gain
        }
        self.table = table
    }

    static func besselI0(_ x: Double) -> Double {
        var sum = 1.0
        var term = 1.0
        let q = x * x / 4
        for k in 1..<64 {
            term *= q / Double(k * k)
            sum += term
            if term < 1e-12 * sum { break }
        }
        return sum
    }

    /// `samples` at the output rate: `round(count × out / in)` samples, edges treated as silence.
    public func resample(_ samples: [Float]) -> [Float] {
        let count = Int((Double(samples.count) * Double(outputRate) / Double(inputRate)).rounded())
        var out = [Float](repeating: 0, count: count)
        let exact = phases == outputRate / divisor
        samples.withUnsafeBufferPointer { x in
            table.withUnsafeBufferPointer { h in
                out.withUnsafeMutableBufferPointer { y in
                    for n in 0..<count {
                        // Exact rational position: n·in/out = base + frac.
                        let position = n &* inputRate
                        let base = position / outputRate
                        let remainder = position - base &* outputRate
                        let phase =
                            exact
                            ? remainder / divisor
                            : min(phases - 1, Int((Double(remainder) / Double(outputRate) * Double(phases)).rounded()))
                        let filter = h.baseAddress! + phase &* taps
                        let first = base &- halfWidth &+ 1
                        var acc: Float = 0
                        if first >= 0 && first &+ taps <= x.count {
                            let src = x.baseAddress! + first
                            for t in 0..<taps { acc += src[t] * filter[t] }
                        } else {
                            for t in 0..<taps {
                                let i = first &+ t
                                if i >= 0 && i < x.count { acc += x[i] * filter[t] }
                            }
                        }
                        y[n] = acc
                    }
                }
            }
        }
        return out
    }
}
