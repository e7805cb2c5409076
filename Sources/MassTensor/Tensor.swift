/// A dense, row-major (C order) tensor. Shapes are outermost first; a matrix is `[rows, columns]`.
///
/// Compute kernels take float32 tensors; `DType` records how a tensor is stored when it comes from a checkpoint.
/// A `Tensor` is a value that shares its storage: copies are cheap and see the same bytes.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let dtype: DType
    public let storage: TensorStorage

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// A zeroed float32 tensor.
    public init(zeros shape: [Int]) {
        self.shape = shape
        dtype = .float32
        storage = TensorStorage(zeroedByteCount: shape.reduce(1, *) * 4)
    }

    /// A float32 tensor holding `values`, which must have as many elements as `shape` says.
    public init(shape: [Int], values: [Float]) throws {
        guard shape.reduce(1, *) == values.count else {
            throw TensorError(
                .shapeMismatch, op: "Tensor.init",
                "shape \(shape) holds \(shape.reduce(1, *)) elements but \(values.count) values were given")
        }
        self.init(zeros: shape)
        values.withUnsafeBufferPointer { src in
            floats.update(from: src.baseAddress!, count: values.count)
        }
    }

    /// A tensor over existing storage (e.g. a memory-mapped checkpoint). The caller checked the byte count.
    public init(shape: [Int], dtype: DType, storage: TensorStorage) {
        self.shape = shape
        self.dtype = dtype
        self.storage = storage
    }

    /// The elements as float32. Only valid for `.float32` tensors.
    public var floats: UnsafeMutablePointer<Float> {
        precondition(dtype == .float32, "Tensor.floats on a \(dtype) tensor. This is a bug.")
        return storage.pointer.assumingMemoryBound(to: Float.self)
    }

    /// The elements copied into an array (float32 tensors only).
    public var array: [Float] { Array(UnsafeBufferPointer(start: floats, count: count)) }

    /// This tensor widened to float32 (a copy unless it already is float32 and 4-byte aligned).
    public func toFloat32() throws -> Tensor {
        let n = count
        if dtype == .float32 && Int(bitPattern: storage.pointer) % 4 == 0 { return self }
        let out = Tensor(zeros: shape)
        let dst = out.floats
        let src = UnsafeRawPointer(storage.pointer)
        switch dtype {
        case .float32:
            for i in 0..<n { dst[i] = src.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
        case .float16:
            for i in 0..<n {
                dst[i] = FloatConversion.float(fromHalfBits: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
            }
        case .bfloat16:
            for i in 0..<n {
                dst[i] = FloatConversion.float(
                    fromBFloat16Bits: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
            }
        case .float64:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        default:
            throw TensorError(.unsupportedDType, op: "toFloat32", "cannot widen \(dtype.rawValue) to float32")
        }
        return out
    }
}
