public import MassTensor

/// A value built by the restricted unpickler. Nothing is ever executed: globals are names, and only the
/// handful of calls a PyTorch state dict needs are understood (`PickleMachine.allowedGlobals`).
public indirect enum PickleValue: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer too large for `Int` (two's-complement little-endian bytes, as LONG1/LONG4 carry it).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list([PickleValue])
    /// Keys in insertion order (dicts and OrderedDicts alike).
    case dict([(PickleValue, PickleValue)])
    case global(module: String, name: String)
    /// A storage named by a persistent id: `('storage', torch.XStorage, key, location, numel)`.
    case storage(StorageReference)
    case tensor(TensorReference)

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var int: Int? { if case .int(let i) = self { i } else { nil } }
}

public struct StorageReference: Sendable, Equatable {
    public let key: String
    public let dtype: DType
    public let count: Int
}

/// A tensor as a view: storage, element offset, sizes and strides (in elements).
public struct TensorReference: Sendable {
    public let storage: StorageReference
    public let offset: Int
    public let shape: [Int]
    public let strides: [Int]
}

/// The pickle virtual machine, restricted to what `torch.save` writes for tensors and state dicts (protocols
/// 2–5). Unknown opcodes and globals outside the allow-list are refused with their name and offset.
public struct PickleMachine {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let offset: Int
        public let message: String
        public var description: String { "pickle offset \(offset): \(message)" }
    }

    /// The only globals a pickle may name. Storage classes give the dtype of what they hold.
    public static let storageTypes: [String: DType] = [
        "FloatStorage": .float32, "HalfStorage": .float16, "BFloat16Storage": .bfloat16, "DoubleStorage": .float64,
        "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
        "ByteStorage": .uint8, "BoolStorage": .bool,
    ]
    public static let allowedCalls: Set<String> = [
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
        "collections.OrderedDict",
    ]

    private let bytes: UnsafeRawBufferPointer
    private(set) var position: Int
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    /// Guards against inputs that would build huge structures from a small file.
    private static let maxStack = 1 << 20

    /// Reads one pickle from `bytes` starting at `offset`; `end` is the offset after its STOP.
    public static func load(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0) throws -> (
        value: PickleValue, end: Int
    ) {
        var machine = PickleMachine(bytes: bytes, position: offset)
        let value = try machine.run()
        return (value, machine.position)
    }

    private func fail(_ message: String, at offset: Int? = nil) -> Failure {
        Failure(offset: offset ?? position, message: message)
    }

    private mutating func read(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - position else {
            throw fail("needs \(n) bytes but the data ends \(bytes.count - position) bytes later")
        }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
    }

    private mutating func byte() throws -> UInt8 { try read(1)[0] }

    private mutating func uint(_ n: Int) throws -> Int {
        let b = try read(n)
        var v = 0
        for i in (0..<n).reversed() { v = v << 8 | Int(b[i]) }
        return v
    }

    private mutating func line() throws -> String {
        guard let newline = bytes[position...].firstIndex(of: 10) else { throw fail("a GLOBAL name has no newline") }
        let text = String(decoding: bytes[position..<newline], as: UTF8.self)
        position = newline + 1
        return text
    }

    private mutating func utf8(_ n: Int) throws -> String {
        let b = try read(n)
        guard let s = String(validating: b, as: UTF8.self) else { throw fail("a string is not valid UTF-8") }
        return s
    }

    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw fail("the stack is empty") }
        return v
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw fail("no MARK on the stack") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    private mutating func push(_ v: PickleValue) throws {
        guard stack.count < Self.maxStack else { throw fail("the stack grew past \(Self.maxStack) values") }
        stack.append(v)
    }

    private static func long(_ b: UnsafeRawBufferPointer) -> PickleValue {
        if b.isEmpty { return .int(0) }
        if b.count <= 8 {
            var v: UInt64 = 0
            for i in (0..<b.count).reversed() { v = v << 8 | UInt64(b[i]) }
            let shift = UInt64(64 - 8 * b.count)
            return .int(Int(Int64(bitPattern: v << shift) >> Int64(shift)))  // sign-extend
        }
        return .bigInt(Array(b))
    }

    private mutating func run() throws -> PickleValue {
        while true {
            let at = position
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()  // PROTO
            case 0x95: _ = try read(8)  // FRAME
            case 0x2E: return try pop()  // STOP
            case 0x28: marks.append(stack.count)  // MARK
            case 0x30: _ = try pop()  // POP
            case 0x31: _ = try popMark()  // POP_MARK
            case 0x32:  // DUP
                guard let top = stack.last else { throw fail("DUP on an empty stack", at: at) }
                try push(top)
            case 0x4E: try push(.none)
            case 0x88: try push(.bool(true))
            case 0x89: try push(.bool(false))
            case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))  // BININT
            case 0x4B: try push(.int(try uint(1)))  // BININT1
            case 0x4D: try push(.int(try uint(2)))  // BININT2
            case 0x8A: try push(Self.long(try read(try uint(1))))  // LONG1
            case 0x8B:  // LONG4
                let n = Int(Int32(truncatingIfNeeded: try uint(4)))
                try push(Self.long(try read(n)))
            case 0x47:  // BINFLOAT: big-endian double
                let b = try read(8)
                var v: UInt64 = 0
                for i in 0..<8 { v = v << 8 | UInt64(b[i]) }
                try push(.float(Double(bitPattern: v)))
            case 0x58: try push(.string(try utf8(try uint(4))))  // BINUNICODE
            case 0x8C: try push(.string(try utf8(try uint(1))))  // SHORT_BINUNICODE
            case 0x8D: try push(.string(try utf8(try uint(8))))  // BINUNICODE8
            case 0x54: try push(.string(try utf8(try uint(4))))  // BINSTRING (latin-1 in theory; names are ASCII)
            case 0x55: try push(.string(try utf8(try uint(1))))  // SHORT_BINSTRING
            case 0x42: try push(.bytes(Array(try read(try uint(4)))))  // BINBYTES
            case 0x43: try push(.bytes(Array(try read(try uint(1)))))  // SHORT_BINBYTES
            case 0x8E: try push(.bytes(Array(try read(try uint(8)))))  // BINBYTES8
            case 0x29: try push(.tuple([]))  // EMPTY_TUPLE
            case 0x74: try push(.tuple(try popMark()))  // TUPLE
            case 0x85: try push(.tuple([try pop()]))  // TUPLE1
            case 0x86:  // TUPLE2
                let b = try pop()
                try push(.tuple([try pop(), b]))
            case 0x87:  // TUPLE3
                let c = try pop()
                let b = try pop()
                try push(.tuple([try pop(), b, c]))
            case 0x5D: try push(.list([]))  // EMPTY_LIST
            case 0x6C: try push(.list(try popMark()))  // LIST
            case 0x61:  // APPEND
                let v = try pop()
                try append([v], at: at)
            case 0x65: try append(try popMark(), at: at)  // APPENDS
            case 0x7D: try push(.dict([]))  // EMPTY_DICT
            case 0x64: try push(.dict(try pairs(try popMark(), at: at)))  // DICT
            case 0x73:  // SETITEM
                let v = try pop()
                let k = try pop()
                try setItems([(k, v)], at: at)
            case 0x75: try setItems(try pairs(try popMark(), at: at), at: at)  // SETITEMS
            case 0x8F: try push(.list([]))  // EMPTY_SET (kept as a list)
            case 0x90: try append(try popMark(), at: at)  // ADDITEMS
            case 0x63:  // GLOBAL "module\nname\n"
                let module = try line()
                try push(try global(module, try line(), at: at))
            case 0x93:  // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw fail("STACK_GLOBAL needs two strings", at: at)
                }
                try push(try global(module, name, at: at))
            case 0x52:  // REDUCE
                let args = try pop()
                let callable = try pop()
                try push(try call(callable, args, at: at))
            case 0x81:  // NEWOBJ
                let args = try pop()
                let cls = try pop()
                try push(try call(cls, args, at: at))
            case 0x62:  // BUILD: state for the object below; state dicts' `_metadata` is not needed
                _ = try pop()
                guard !stack.isEmpty else { throw fail("BUILD without an object", at: at) }
            case 0x51: try push(try persistent(try pop(), at: at))  // BINPERSID
            case 0x71: memo[try uint(1)] = try top(at)  // BINPUT
            case 0x72: memo[try uint(4)] = try top(at)  // LONG_BINPUT
            case 0x94: memo[memo.count] = try top(at)  // MEMOIZE
            case 0x68: try push(try recall(try uint(1), at: at))  // BINGET
            case 0x6A: try push(try recall(try uint(4), at: at))  // LONG_BINGET
            default:
                throw fail(
                    "unsupported pickle opcode 0x\(String(op, radix: 16)) (not used by tensor checkpoints)", at: at)
            }
        }
    }

    private func top(_ at: Int) throws -> PickleValue {
        guard let v = stack.last else { throw fail("memo store on an empty stack", at: at) }
        return v
    }

    private func recall(_ index: Int, at: Int) throws -> PickleValue {
        guard let v = memo[index] else { throw fail("memo entry \(index) was never stored", at: at) }
        return v
    }

    private func pairs(_ items: [PickleValue], at: Int) throws -> [(PickleValue, PickleValue)] {
        guard items.count % 2 == 0 else { throw fail("a dict needs key/value pairs", at: at) }
        return stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }
    }

    private mutating func append(_ values: [PickleValue], at: Int) throws {
        guard case .list(let list) = try pop() else { throw fail("APPEND(S) on something that is not a list", at: at) }
        try push(.list(list + values))
    }

    private mutating func setItems(_ items: [(PickleValue, PickleValue)], at: Int) throws {
        guard case .dict(let dict) = try pop() else { throw fail("SETITEM(S) on something that is not a dict", at: at) }
        try push(.dict(dict + items))
    }

    private func global(_ module: String, _ name: String, at: Int) throws -> PickleValue {
        let full = "\(module).\(name)"
        if module == "torch" && Self.storageTypes[name] != nil { return .global(module: module, name: name) }
        guard Self.allowedCalls.contains(full) else {
            throw fail("refused global '\(full)': only tensors and state dicts may be loaded", at: at)
        }
        return .global(module: module, name: name)
    }

    /// `('storage', torch.XStorage, key, location, numel[, view_metadata])`.
    private func persistent(_ id: PickleValue, at: Int) throws -> PickleValue {
        guard case .tuple(let t) = id, t.count >= 5, t[0].string == "storage",
            case .global(module: "torch", name: let storageType) = t[1], let dtype = Self.storageTypes[storageType],
            let count = t[4].int, count >= 0
        else {
            throw fail("a persistent id that is not a ('storage', torch.XStorage, key, location, numel) tuple", at: at)
        }
        let key: String
        switch t[2] {
        case .string(let s): key = s
        case .int(let i): key = String(i)
        default: throw fail("a storage key that is not a string", at: at)
        }
        return .storage(StorageReference(key: key, dtype: dtype, count: count))
    }

    private func call(_ callable: PickleValue, _ args: PickleValue, at: Int) throws -> PickleValue {
        guard case .global(let module, let name) = callable else {
            throw fail("REDUCE on a value that is not a global", at: at)
        }
        guard case .tuple(let a) = args else { throw fail("REDUCE arguments are not a tuple", at: at) }
        switch "\(module).\(name)" {
        case "collections.OrderedDict":
            return .dict([])
        case "torch._utils._rebuild_parameter":
            guard let data = a.first else { throw fail("_rebuild_parameter without data", at: at) }
            return data
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            guard a.count >= 4, case .storage(let storage) = a[0], let offset = a[1].int,
                case .tuple(let size) = a[2], case .tuple(let stride) = a[3]
            else { throw fail("_rebuild_tensor arguments are not (storage, offset, size, stride, ...)", at: at) }
            let shape = size.compactMap(\.int)
            let strides = stride.compactMap(\.int)
            guard shape.count == size.count, strides.count == stride.count, shape.count == strides.count,
                shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }), offset >= 0
            else { throw fail("a tensor with malformed sizes, strides or offset", at: at) }
            // The last element the view reaches must lie inside its storage.
            if !shape.contains(0) {
                var last = offset
                for (n, s) in zip(shape, strides) {
                    let (step, o1) = (n - 1).multipliedReportingOverflow(by: s)
                    let (sum, o2) = last.addingReportingOverflow(step)
                    guard !o1, !o2 else { throw fail("a tensor view's extent overflows", at: at) }
                    last = sum
                }
                guard last < storage.count else {
                    throw fail(
                        "a tensor view reaches element \(last) of storage '\(storage.key)', which has \(storage.count)",
                        at: at)
                }
            }
            return .tensor(TensorReference(storage: storage, offset: offset, shape: shape, strides: strides))
        default:
            throw fail("refused call of '\(module).\(name)'", at: at)
        }
    }
}
