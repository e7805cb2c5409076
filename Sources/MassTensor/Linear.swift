/// The weights of a PyTorch-style Linear layer, `y = x · Wᵀ + b`, kept in the layouts the kernels want: W as
/// stored ([n, k], for OpenBLAS on many rows) and pre-packed (for few rows, see `PackedMatrix`); or, in int8,
/// quantised and packed for the int8 kernels (`QuantizedMatrix`) instead of the float packing.
public struct Linear: Sendable {
    /// The arithmetic a layer runs in.
    public enum Precision: String, Sendable {
        case float32
        /// Weights int8 per output channel, activations uint8 per row at run time, int32 accumulation
        /// (`QuantizedMatrix`).
        case int8
    }

    /// The float32 weights [n, k] (nil in int8: the int8 kernels never read them).
    public let weight: Tensor?
    public let bias: Tensor?
    /// The float32 packing (nil in int8).
    public let packed: PackedMatrix?
    /// The int8 weights when the layer runs in int8 (`ComputePool.apply` then takes them).
    public let quantized: QuantizedMatrix?
    public var precision: Precision { quantized == nil ? .float32 : .int8 }
    public let outFeatures: Int
    public let inFeatures: Int

    /// Below this many rows the packed kernel beats OpenBLAS (measured with `mass bench embed`).
    public static let packedRowLimit = 256

    public init(weight: Tensor, bias: Tensor?, precision: Precision = .float32) throws {
        guard weight.shape.count == 2, weight.dtype == .float32 else {
            throw TensorError(
                .shapeMismatch, op: "Linear", "weight must be a float32 matrix, got \(weight.dtype) \(weight.shape)")
        }
        if let bias, bias.shape != [weight.shape[0]] {
            throw TensorError(
                .shapeMismatch, op: "Linear", "bias has shape \(bias.shape), expected [\(weight.shape[0])]")
        }
        self.bias = bias
        let (n, k) = (weight.shape[0], weight.shape[1])
        (outFeatures, inFeatures) = (n, k)
        self.weight = precision == .float32 ? weight : nil
        packed = precision == .float32 ? PackedMatrix(weight.floats, n: n, k: k) : nil
        quantized = precision == .int8 ? QuantizedMatrix(weight.floats, n: n, k: k) : nil
    }

    /// An int8 layer from weights quantised already (a compressed model).
    public init(quantized: QuantizedMatrix, bias: Tensor?) throws {
        if let bias, bias.shape != [quantized.n] {
            throw TensorError(.shapeMismatch, op: "Linear", "bias has shape \(bias.shape), expected [\(quantized.n)]")
        }
        (outFeatures, inFeatures) = (quantized.n, quantized.k)
        weight = nil
        self.bias = bias
        packed = nil
        self.quantized = quantized
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
        if let quantized = layer.quantized {
            let activations = QuantizedMatrix.Activations(x, rows: rows, k: k, lda: k, pool: self)
            let panels = (n + 15) / 16
            let parts = rows * n * k < 1 << 16 ? 1 : min(threadCount, panels)
            parallelFor(parts) { part in
                let c0 = (part * panels / parts) * 16
                let c1 = min(n, ((part + 1) * panels / parts) * 16)
                quantized.linear(
                    activations, columns: c0..<c1, bias: bias, into: y, ldc: n, accumulate: accumulate)
                if activation != .none {
                    for r in 0..<rows { activation.apply(y + r * n + c0, count: c1 - c0) }
                }
            }
            return
        }
        guard let packed = layer.packed else { preconditionFailure("a Linear layer without weights. This is a bug.") }
        if rows >= Linear.packedRowLimit && !forcePacked {
            linear(x, rows: rows, k: k, weight: layer.weight!.floats, n: n, bias: bias, into: y, accumulate: accumulate)
            if activation != .none {
                forRowRanges(rows) { r0, r1 in activation.apply(y + r0 * n, count: (r1 - r0) * n) }
            }
            return
        }
        let width = packed.panelWidth
        let panels = (n + width - 1) / width
        let parts = rows * n * k < 1 << 16 ? 1 : min(threadCount, panels)
        parallelFor(parts) { part in
            let c0 = (part * panels / parts) * width
            let c1 = min(n, ((part + 1) * panels / parts) * width)
            packed.linear(
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
        guard let packed = layer.packed else {
            // int8: the int8 path splits the work itself.
            apply(layer, x, rows: rows, into: y, accumulate: accumulate, activation: activation)
            return
        }
        let n = layer.outFeatures
        let k = layer.inFeatures
        let bias = layer.bias.map { UnsafePointer($0.floats) }
        let minimumRows = max(1, (1 << 15) / max(1, n * k))
        forRowRanges(rows, minimumRowsPerThread: minimumRows) { r0, r1 in
            // Blocks of rows whose outputs stay in cache until the activation has run over them.
            var r = r0
            while r < r1 {
                let count = min(64, r1 - r)
                packed.linear(
                    x + r * k, rows: count, lda: k, columns: 0..<n, bias: bias, into: y + r * n, ldc: n,
                    accumulate: accumulate)
                activation.apply(y + r * n, count: count * n)
                r += count
            }
        }
    }
}
