/// The weights of a PyTorch-style Linear layer, `y = x · Wᵀ + b`, kept in both layouts the kernels want:
/// W as stored ([n, k], for OpenBLAS on many rows) and pre-packed (for few rows, see `PackedMatrix`).
public struct Linear: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let packed: PackedMatrix
    public var outFeatures: Int { weight.shape[0] }
    public var inFeatures: Int { weight.shape[1] }

    /// Below this many rows the packed kernel beats OpenBLAS (measured with `mass bench embed`).
    public static let packedRowLimit = 256

    public init(weight: Tensor, bias: Tensor?) throws {
        guard weight.shape.count == 2, weight.dtype == .float32 else {
            throw TensorError(
                .shapeMismatch, op: "Linear", "weight must be a float32 matrix, got \(weight.dtype) \(weight.shape)")
        }
        if let bias, bias.shape != [weight.shape[0]] {
            throw TensorError(
                .shapeMismatch, op: "Linear", "bias has shape \(bias.shape), expected [\(weight.shape[0])]")
        }
        self.weight = weight
        self.bias = bias
        packed = PackedMatrix(weight.floats, n: weight.shape[0], k: weight.shape[1])
    }
}

/// An element-wise function fused after a layer's output.
public enum Activation: Sendable {
    case none, gelu, relu6

    /// Applies the activation to `count` values in place.
    @inline(__always)
    public func apply(_ y: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .none: break
        case .gelu: Kernels.gelu(y, count: count)
        case .relu6: Kernels.relu6(y, count: count)
        }
    }
}

extension ComputePool {
    /// `y = x · Wᵀ + b` on [rows, k] → [rows, n], or `y += ...` with `accumulate` (a residual already in y).
    /// With an `activation`, y = f(x · Wᵀ + b), applied by each thread to its own columns while they are in cache.
    /// Output columns are split across the pool's threads; each thread runs single-threaded kernels.
    /// `forcePacked` takes the packed kernel whatever the row count (for `mass bench gemm`).
    public func apply(
        _ layer: Linear, _ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
        accumulate: Bool = false, activation: Activation = .none, forcePacked: Bool = false
    ) {
        let n = layer.outFeatures
        let k = layer.inFeatures
        let bias = layer.bias.map { UnsafePointer($0.floats) }
        if rows >= Linear.packedRowLimit && !forcePacked {
            linear(x, rows: rows, k: k, weight: layer.weight.floats, n: n, bias: bias, into: y, accumulate: accumulate)
            if activation != .none {
                forRowRanges(rows) { r0, r1 in activation.apply(y + r0 * n, count: (r1 - r0) * n) }
            }
            return
        }
        let width = layer.packed.panelWidth
        let panels = (n + width - 1) / width
        let parts = rows * n * k < 1 << 16 ? 1 : min(threadCount, panels)
        parallelFor(parts) { part in
            let c0 = (part * panels / parts) * width
            let c1 = min(n, ((part + 1) * panels / parts) * width)
            layer.packed.linear(
                x, rows: rows, lda: k, columns: c0..<c1, bias: bias, into: y, ldc: n, accumulate: accumulate)
            if activation != .none {
                for r in 0..<rows { activation.apply(y + r * n + c0, count: c1 - c0) }
            }
        }
    }
}

extension ComputePool {
    /// `y = f(x · Wᵀ + b)` (or `y += x · Wᵀ + b` with `accumulate`) with the pre-packed kernel, rows split across
    /// the threads: the shape of 1×1 convolutions (thousands of pixels, tens to hundreds of channels), where
    /// OpenBLAS spends its time repacking the activations.
    public func applyByRows(
        _ layer: Linear, _ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
        accumulate: Bool = false, activation: Activation = .none
    ) {
        let n = layer.outFeatures
        let k = layer.inFeatures
        let bias = layer.bias.map { UnsafePointer($0.floats) }
        let minimumRows = max(1, (1 << 15) / max(1, n * k))
        forRowRanges(rows, minimumRowsPerThread: minimumRows) { r0, r1 in
            // Blocks of rows whose outputs stay in cache until the activation has run over them.
            var r = r0
            while r < r1 {
                let count = min(64, r1 - r)
                layer.packed.linear(
                    x + r * k, rows: count, lda: k, columns: 0..<n, bias: bias, into: y + r * n, ldc: n,
                    accumulate: accumulate)
                activation.apply(y + r * n, count: count * n)
                r += count
            }
        }
    }
}
