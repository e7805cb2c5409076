public import MassTensor

/// A CTranslate2 `model.bin` (binary versions 1–6), memory-mapped: the spec name and revision, every variable
/// (name with `/`, shape, dtype, bytes in place) and aliases. Scalars are rank-0 variables. Truncated or
/// malformed files are errors naming the file, the byte offset and the variable being read.
public struct CTranslate2Model: WeightSource {
    public struct Variable: Sendable {
        public let shape: [Int]
        public let dtype: DType
        /// Byte offset of the data in the file.
        public let offset: Int
        public let byteCount: Int
    }

    public static let newestBinaryVersion = 6

    public let origin: String
    public let binaryVersion: Int
    /// e.g. "WhisperSpec" (binary version 2 and later).
    public let specName: String?
    public let specRevision: Int
    public let variables: [String: Variable]
    /// alias → target (CTranslate2 also maps alias + "_scale" to target + "_scale").
    public let aliases: [String: String]
    let file: MappedFile

    public init(path: String) throws {
        origin = path
        file = try MappedFile(path: path)
        var reader = Reader(bytes: UnsafeRawBufferPointer(start: file.base, count: file.size), origin: path)
        binaryVersion = Int(try reader.u32("the binary version"))
        guard (1...Self.newestBinaryVersion).contains(binaryVersion) else {
            throw WeightsError(
                .badHeader, file: path,
                "binary version \(binaryVersion) is not supported (this reader knows 1 to \(Self.newestBinaryVersion))")
        }
        if binaryVersion >= 2 {
            specName = try reader.string("the spec name")
            specRevision = Int(try reader.u32("the spec revision"))
        } else {
            specName = nil
            specRevision = 1
        }
        let count = Int(try reader.u32("the variable count"))
        var variables: [String: Variable] = [:]
        for index in 0..<count {
            let name = try reader.string("the name of variable \(index)")
            let rank = Int(try reader.u8("the rank of '\(name)'"))
            var shape: [Int] = []
            for _ in 0..<rank { shape.append(Int(try reader.u32("the shape of '\(name)'"))) }
            let dtype: DType
            let byteCount: Int
            if binaryVersion >= 4 {
                let code = try reader.u8("the dtype of '\(name)'")
                let types: [DType] = [.float32, .int8, .int16, .int32, .float16, .bfloat16]
                guard Int(code) < types.count else {
                    throw reader.failure("variable '\(name)' has unknown dtype code \(code)", code: .unknownDType)
                }
                dtype = types[Int(code)]
                byteCount = Int(try reader.u32("the byte count of '\(name)'"))
            } else {
                let itemSize = try reader.u8("the item size of '\(name)'")
                let legacy: [UInt8: DType] = [4: .float32, 2: .int16, 1: .int8]
                guard let t = legacy[itemSize] else {
                    throw reader.failure("variable '\(name)' has item size \(itemSize)", code: .unknownDType)
                }
                dtype = t
                byteCount = Int(try reader.u32("the element count of '\(name)'")) * t.size
            }
            let elements = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
            guard elements != Int.max, elements * dtype.size == byteCount else {
                throw reader.failure(
                    "variable '\(name)' of shape \(shape) and dtype \(dtype.rawValue) declares \(byteCount) bytes")
            }
            let offset = reader.position
            _ = try reader.bytes(byteCount, "the data of '\(name)'")
            guard variables[name] == nil else { throw reader.failure("variable '\(name)' appears twice") }
            variables[name] = Variable(shape: shape, dtype: dtype, offset: offset, byteCount: byteCount)
        }
        var aliases: [String: String] = [:]
        if binaryVersion >= 3 {
            let aliasCount = Int(try reader.u32("the alias count"))
            for index in 0..<aliasCount {
                let alias = try reader.string("alias \(index)")
                let target = try reader.string("the target of alias '\(alias)'")
                guard variables[target] != nil else {
                    throw reader.failure("alias '\(alias)' names '\(target)', which is not a variable")
                }
                aliases[alias] = target
            }
        }
        guard reader.position == file.size else {
            throw reader.failure("\(file.size - reader.position) bytes follow the last record")
        }
        self.variables = variables
        self.aliases = aliases
    }

    /// Variable names and aliases, sorted.
    public var names: [String] { (Array(variables.keys) + Array(aliases.keys)).sorted() }

    /// The variable a name refers to, through aliases (`x_scale` follows `x`'s alias too).
    public func variable(_ name: String) -> Variable? {
        if let v = variables[name] { return v }
        if let target = aliases[name] { return variables[target] }
        if name.hasSuffix("_scale"), let target = aliases[String(name.dropLast(6))] {
            return variables[target + "_scale"]
        }
        return nil
    }

    public func tensor(_ name: String) throws -> Tensor {
        guard let v = variable(name) else {
            throw WeightsError(.missingTensor, file: origin, tensor: name, "no such variable in the model")
        }
        let storage = TensorStorage(borrowing: file.base + v.offset, byteCount: v.byteCount, owner: file)
        return Tensor(shape: v.shape, dtype: v.dtype, storage: storage)
    }

    /// A weight as float32 whatever the file stores: float32/float16/bfloat16 widened, or int8 with its
    /// `NAME_scale` (one per row, the first dimension; a CTranslate2 int8 model) divided out: w = q / scale.
    public func dequantized(_ name: String, shape: [Int]? = nil) throws -> Tensor {
        try tensor(name).dtype == .int8
            ? widened(int8: name, shape: shape, dividing: true) : float32(name, shape: shape)
    }

    /// A rank-0 integer scalar (int8, int16 or int32), e.g. `decoder/num_heads`.
    public func integer(_ name: String) throws -> Int {
        guard let v = variable(name), v.shape.isEmpty else {
            throw WeightsError(.missingTensor, file: origin, tensor: name, "no such scalar in the model")
        }
        let p = UnsafeRawPointer(file.base + v.offset)
        switch v.dtype {
        case .int8: return Int(p.load(as: Int8.self))
        case .int16: return Int(Int16(littleEndian: p.loadUnaligned(as: Int16.self)))
        case .int32: return Int(Int32(littleEndian: p.loadUnaligned(as: Int32.self)))
        default:
            throw WeightsError(.unknownDType, file: origin, tensor: name, "is \(v.dtype.rawValue), not an integer")
        }
    }

    /// Little-endian reads with the file, offset and what was being read in every error.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        let origin: String
        var position = 0

        func failure(_ message: String, code: WeightsError.Code = .badHeader) -> WeightsError {
            WeightsError(code, file: origin, "at byte \(position): \(message)")
        }

        mutating func bytes(_ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
            guard n >= 0, n <= bytes.count - position else {
                throw WeightsError(
                    .truncated, file: origin,
                    "at byte \(position): the file ends (\(bytes.count) bytes) while reading \(what), which needs \(n) bytes"
                )
            }
            defer { position += n }
            return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
        }

        mutating func u8(_ what: String) throws -> UInt8 { try bytes(1, what)[0] }

        mutating func u16(_ what: String) throws -> UInt16 {
            let b = try bytes(2, what)
            return UInt16(b[0]) | UInt16(b[1]) << 8
        }

        mutating func u32(_ what: String) throws -> UInt32 {
            let b = try bytes(4, what)
            return UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
        }

        /// u16 length including the terminating NUL, then the UTF-8 text and the NUL.
        mutating func string(_ what: String) throws -> String {
            let start = position
            let length = Int(try u16(what))
            let b = try bytes(length, what)
            guard length >= 1, b[length - 1] == 0, let text = String(validating: b[0..<(length - 1)], as: UTF8.self)
            else {
                position = start
                throw failure("\(what) is not a NUL-terminated UTF-8 string of \(length) bytes")
            }
            return text
        }
    }
}
