import MassTensor

/// sentence-transformers `Pooling` (`1_Pooling/config.json`) and `Normalize`: how token states become one
/// vector per sequence. Mean and max take every token (BERT single inputs have no padding);
/// CLS takes the first.
public struct Pooling: Sendable, Equatable {
    public enum Mode: String, Sendable {
        case mean, cls, max
    }

    public var mode: Mode
    /// L2-normalise the pooled vector (the `Normalize` module).
    public var normalize: Bool

    public init(mode: Mode, normalize: Bool) {
        self.mode = mode
        self.normalize = normalize
    }

    /// Pools `rows` token states of width `dim` starting at `states` into `out`.
    public func pool(_ states: UnsafePointer<Float>, rows: Int, dim: Int, into out: UnsafeMutablePointer<Float>) {
        switch mode {
        case .cls:
            out.update(from: states, count: dim)
        case .mean:
            out.initialize(repeating: 0, count: dim)
            for r in 0..<rows { Kernels.add(states + r * dim, to: out, count: dim) }
            let inv = 1 / Float(Swift.max(rows, 1))
            for i in 0..<dim { out[i] *= inv }
        case .max:
            if rows == 0 {
                out.initialize(repeating: 0, count: dim)
                break
            }
            out.update(from: states, count: dim)
            for r in 1..<Swift.max(rows, 1) {
                for i in 0..<dim { out[i] = Swift.max(out[i], states[r * dim + i]) }
            }
        }
        if normalize {
            var sum: Float = 0
            for i in 0..<dim { sum += out[i] * out[i] }
            // F.normalize: divide by max(‖v‖, 1e-12).
            let inv = 1 / Swift.max(sum.squareRoot(), 1e-12)
            for i in 0..<dim { out[i] *= inv }
        }
    }
}
