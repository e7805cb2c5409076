/// An error from the tensor layer: a shape that does not fit an op, or a backend that cannot start.
public struct TensorError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case shapeMismatch = "shape_mismatch"
        case backendUnavailable = "backend_unavailable"
        case unsupportedDType = "unsupported_dtype"
        /// A linear-algebra routine refused its input (singular, not positive definite, no convergence).
        case numerical
    }

    public var code: Code
    /// What went wrong and how to fix it.
    public var message: String
    /// The operation that failed (`"gemm"`, `"Tensor.init"`, ...).
    public var op: String

    public init(_ code: Code, op: String, _ message: String) {
        self.code = code
        self.op = op
        self.message = message
    }

    public var description: String { "\(op): \(message)" }
}
