public import MassTensor

/// An ONNX model file read for its weights, not run: the graph's initializers (name, dtype, shape, bytes in place
/// when stored as `raw_data`) and its nodes (name, op type, inputs, outputs), from the protobuf wire format.
/// Memory-mapped. Weights kept outside the file (`data_location` EXTERNAL) are refused by name, as are truncated
/// or malformed files (with the byte offset).
public struct ONNXModel: WeightSource {
    public struct Node: Sendable, Equatable {
        public let name: String
        public let opType: String
        public let inputs: [String]
        public let outputs: [String]

        public init(name: String, opType: String, inputs: [String], outputs: [String]) {
            (self.name, self.opType, self.inputs, self.outputs) = (name, opType, inputs, outputs)
        }
    }

    struct Initializer {
        let dtype: DType
        let shape: [Int]
        /// Bytes in the file (raw_data), or values decoded from a typed field.
        let offset: Int
        let byteCount: Int
        let values: TensorStorage?
    }

    public let origin: String
    public let nodes: [Node]
    let initializers: [String: Initializer]
    let file: MappedFile

    public var names: [String] { initializers.keys.sorted() }

    public init(path: String) throws {
        origin = path
        file = try MappedFile(path: path)
        var reader = Reader(bytes: UnsafeRawBufferPointer(start: file.base, count: file.size), origin: path)
        var graph: Range<Int>?
        while !reader.atEnd {
            let (field, wire) = try reader.key()
            if field == 7, wire == 2 { graph = try reader.lengthDelimited("the graph") } else { try reader.skip(wire) }
        }
        guard let graph else { throw WeightsError(.badHeader, file: path, "no graph in the model (not an ONNX file?)") }
        var nodes: [Node] = []
        var initializers: [String: Initializer] = [:]
        var g = reader.sub(graph)
        while !g.atEnd {
            let (field, wire) = try g.key()
            switch (field, wire) {
            case (1, 2): nodes.append(try Self.node(g.sub(try g.lengthDelimited("a node"))))
            case (5, 2):
                var t = g.sub(try g.lengthDelimited("an initializer"))
                let (name, initializer) = try Self.initializer(&t, base: file.base)
                initializers[name] = initializer
            default: try g.skip(wire)
            }
        }
        self.nodes = nodes
        self.initializers = initializers
    }

    public func tensor(_ name: String) throws -> Tensor {
        guard let i = initializers[name] else {
            throw WeightsError(.missingTensor, file: origin, tensor: name, "no such initializer in the model")
        }
        let storage =
            i.values ?? TensorStorage(borrowing: file.base + i.offset, byteCount: i.byteCount, owner: file)
        return Tensor(shape: i.shape, dtype: i.dtype, storage: storage)
    }

    /// ONNX TensorProto.DataType → DType (the types weights use).
    static let types: [Int: DType] = [
        1: .float32, 2: .uint8, 3: .int8, 5: .int16, 6: .int32, 7: .int64, 10: .float16, 11: .float64, 16: .bfloat16,
    ]

    static func node(_ reader: Reader) throws -> Node {
        var r = reader
        var name = ""
        var opType = ""
        var inputs: [String] = []
        var outputs: [String] = []
        while !r.atEnd {
            let (field, wire) = try r.key()
            switch (field, wire) {
            case (1, 2): inputs.append(try r.string("a node input"))
            case (2, 2): outputs.append(try r.string("a node output"))
            case (3, 2): name = try r.string("a node name")
            case (4, 2): opType = try r.string("a node op type")
            default: try r.skip(wire)
            }
        }
        return Node(name: name, opType: opType, inputs: inputs, outputs: outputs)
    }

    static func initializer(_ r: inout Reader, base: UnsafeRawPointer) throws -> (String, Initializer) {
        var name = ""
        var dims: [Int] = []
        var type = 0
        var raw: Range<Int>?
        var floats: [Float] = []
        var external = false
        while !r.atEnd {
            let (field, wire) = try r.key()
            switch (field, wire) {
            case (1, 0): dims.append(Int(truncatingIfNeeded: try r.varint("a dimension")))
            case (1, 2):
                var packed = r.sub(try r.lengthDelimited("the dimensions"))
                while !packed.atEnd { dims.append(Int(truncatingIfNeeded: try packed.varint("a dimension"))) }
            case (2, 0): type = Int(try r.varint("the data type"))
            case (4, 2):
                var packed = r.sub(try r.lengthDelimited("float_data"))
                while !packed.atEnd { floats.append(Float(bitPattern: try packed.fixed32("a float"))) }
            case (4, 5): floats.append(Float(bitPattern: try r.fixed32("a float")))
            case (8, 2): name = try r.string("an initializer name")
            case (9, 2): raw = try r.lengthDelimited("raw_data")
            case (14, 0): external = try r.varint("data_location") == 1
            default: try r.skip(wire)
            }
        }
        guard !external else {
            throw WeightsError(
                .fileUnreadable, file: r.origin, tensor: name,
                "keeps its data outside the .onnx file (external data); save the model with its weights inside")
        }
        guard let dtype = types[type] else {
            throw WeightsError(.unknownDType, file: r.origin, tensor: name, "has ONNX data type \(type)")
        }
        guard dims.allSatisfy({ $0 >= 0 }) else {
            throw WeightsError(.badHeader, file: r.origin, tensor: name, "has a negative dimension \(dims)")
        }
        let count = dims.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        if let raw {
            guard count != Int.max, raw.count == count * dtype.size else {
                throw WeightsError(
                    .badOffsets, file: r.origin, tensor: name,
                    "holds \(raw.count) bytes, its shape \(dims) of \(dtype.rawValue) needs \(count * dtype.size)")
            }
            return (
                name, Initializer(dtype: dtype, shape: dims, offset: raw.lowerBound, byteCount: raw.count, values: nil)
            )
        }
        guard dtype == .float32, floats.count == count else {
            throw WeightsError(
                .badOffsets, file: r.origin, tensor: name,
                "has no raw_data and \(floats.count) float_data values for shape \(dims) of \(dtype.rawValue)")
        }
        let values = try Tensor(shape: dims, values: floats).storage
        return (name, Initializer(dtype: dtype, shape: dims, offset: 0, byteCount: count * 4, values: values))
    }

    /// Protobuf wire format over the mapped bytes, offsets absolute in the file, errors naming the byte offset.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        let origin: String
        var position: Int
        let end: Int

        init(bytes: UnsafeRawBufferPointer, origin: String) {
            self.bytes = bytes
            self.origin = origin
            position = 0
            end = bytes.count
        }

        private init(bytes: UnsafeRawBufferPointer, origin: String, range: Range<Int>) {
            self.bytes = bytes
            self.origin = origin
            position = range.lowerBound
            end = range.upperBound
        }

        var atEnd: Bool { position >= end }

        func sub(_ range: Range<Int>) -> Reader { Reader(bytes: bytes, origin: origin, range: range) }

        func failure(_ message: String) -> WeightsError {
            WeightsError(.truncated, file: origin, "at byte \(position): \(message)")
        }

        mutating func varint(_ what: String) throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard position < end, shift < 64 else { throw failure("\(what): the varint is cut short or too long") }
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
        }

        mutating func key() throws -> (field: Int, wire: Int) {
            let k = try varint("a field key")
            return (Int(k >> 3), Int(k & 7))
        }

        mutating func lengthDelimited(_ what: String) throws -> Range<Int> {
            let length = try varint("the length of \(what)")
            guard length <= UInt64(end - position) else {
                throw failure("\(what) needs \(length) bytes, \(end - position) are left")
            }
            defer { position += Int(length) }
            return position..<(position + Int(length))
        }

        mutating func string(_ what: String) throws -> String {
            let range = try lengthDelimited(what)
            guard let text = String(validating: bytes[range], as: UTF8.self) else {
                throw failure("\(what) is not UTF-8")
            }
            return text
        }

        mutating func fixed32(_ what: String) throws -> UInt32 {
            guard end - position >= 4 else { throw failure("\(what) is cut short") }
            defer { position += 4 }
            return bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self).littleEndian
        }

        mutating func skip(_ wire: Int) throws {
            switch wire {
            case 0: _ = try varint("a skipped field")
            case 1:
                guard end - position >= 8 else { throw failure("a 64-bit field is cut short") }
                position += 8
            case 2: _ = try lengthDelimited("a skipped field")
            case 5:
                guard end - position >= 4 else { throw failure("a 32-bit field is cut short") }
                position += 4
            default: throw failure("wire type \(wire) is not protobuf (not an ONNX file?)")
            }
        }
    }
}
