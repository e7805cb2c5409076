public import MassTensor

/// A PyTorch checkpoint (`torch.save` of a state dict), memory-mapped and read with the restricted unpickler:
/// the legacy format (five pickles, then each storage as an int64 element count and its bytes) and the zip
/// archive written since PyTorch 1.6 (`<prefix>/data.pkl` plus one stored entry per storage). Nested dicts
/// (`{"state_dict": {...}}`) are flattened with dots. Strided views are materialised on access.
public struct PyTorchCheckpoint: WeightSource {
    /// The legacy format's magic number, 0x1950a86a20f9469cfc6c, as LONG1 bytes (little-endian).
    static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    public let origin: String
    public let tensors: [String: TensorReference]
    /// Byte offset in the file of each storage's first element.
    let storageOffsets: [String: Int]
    let file: MappedFile

    public init(path: String) throws {
        origin = path
        file = try MappedFile(path: path)
        let bytes = UnsafeRawBufferPointer(start: file.base, count: file.size)
        let object: PickleValue
        var offsets: [String: Int] = [:]
        do {
            if bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4B && bytes[2] == 0x03 && bytes[3] == 0x04 {
                let archive = try ZipDirectory(bytes, origin: path)
                guard
                    let pickle = archive.entries.keys.first(where: {
                        $0.hasSuffix("data.pkl") && !$0.contains("/data/")
                    })
                else {
                    throw WeightsError(
                        .badHeader, file: path, "a zip file without data.pkl is not a PyTorch checkpoint")
                }
                let prefix = String(pickle.dropLast("data.pkl".count))
                if let order = archive.entries[prefix + "byteorder"],
                    String(decoding: bytes[order.range], as: UTF8.self) != "little"
                {
                    throw WeightsError(.badHeader, file: path, "big-endian checkpoints are not supported")
                }
                let range = archive.entries[pickle]!.range
                object = try PickleMachine.load(UnsafeRawBufferPointer(rebasing: bytes[range])).value
                for (name, entry) in archive.entries where name.hasPrefix(prefix + "data/") {
                    offsets[String(name.dropFirst(prefix.count + 5))] = entry.range.lowerBound
                }
                tensors = try Self.flatten(object, origin: path)
                try Self.checkSizes(tensors, sizes: archive.entries, prefix: prefix + "data/", origin: path)
            } else {
                (object, offsets) = try Self.readLegacy(bytes, origin: path)
                tensors = try Self.flatten(object, origin: path)
            }
        } catch let error as PickleMachine.Failure {
            throw WeightsError(.badHeader, file: path, "\(error)")
        }
        for (name, t) in tensors where offsets[t.storage.key] == nil {
            throw WeightsError(
                .truncated, file: path, tensor: name, "its storage '\(t.storage.key)' is not in the file")
        }
        storageOffsets = offsets
    }

    /// Pickles 1–5 of the legacy format, then the storages in the order of the key list.
    private static func readLegacy(_ bytes: UnsafeRawBufferPointer, origin: String) throws -> (
        PickleValue, [String: Int]
    ) {
        let (magic, afterMagic) = try PickleMachine.load(bytes)
        guard case .bigInt(let m) = magic, m == legacyMagic else {
            throw WeightsError(
                .badHeader, file: origin, "not a PyTorch checkpoint (no zip header, no legacy magic number)")
        }
        let (protocolVersion, afterProtocol) = try PickleMachine.load(bytes, at: afterMagic)
        guard protocolVersion.int == 1001 else {
            throw WeightsError(.badHeader, file: origin, "legacy protocol version \(protocolVersion), expected 1001")
        }
        let (sysInfo, afterInfo) = try PickleMachine.load(bytes, at: afterProtocol)
        if case .dict(let info) = sysInfo,
            let little = info.first(where: { $0.0.string == "little_endian" })?.1, case .bool(false) = little
        {
            throw WeightsError(.badHeader, file: origin, "big-endian checkpoints are not supported")
        }
        let (object, afterObject) = try PickleMachine.load(bytes, at: afterInfo)
        let (keyList, afterKeys) = try PickleMachine.load(bytes, at: afterObject)
        guard case .list(let keyValues) = keyList else {
            throw WeightsError(.badHeader, file: origin, "the storage key list is not a list")
        }
        var dtypes: [String: DType] = [:]
        collectStorages(object, into: &dtypes)
        var offsets: [String: Int] = [:]
        var position = afterKeys
        for value in keyValues {
            guard let key = value.string else {
                throw WeightsError(.badHeader, file: origin, "a storage key is not a string")
            }
            guard let dtype = dtypes[key] else {
                throw WeightsError(.badHeader, file: origin, "storage '\(key)' is listed but no tensor uses it")
            }
            guard bytes.count - position >= 8 else {
                throw WeightsError(
                    .truncated, file: origin, "the file ends at byte \(bytes.count) before storage '\(key)'")
            }
            var count = 0
            for i in (0..<8).reversed() { count = count << 8 | Int(bytes[position + i]) }
            position += 8
            let (size, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard count >= 0, !overflow, size <= bytes.count - position else {
                throw WeightsError(
                    .truncated, file: origin,
                    "storage '\(key)' at byte \(position - 8) declares \(count) elements but the file has \(bytes.count - position) bytes left"
                )
            }
            offsets[key] = position
            position += size
        }
        return (object, offsets)
    }

    private static func collectStorages(_ value: PickleValue, into dtypes: inout [String: DType]) {
        switch value {
        case .tensor(let t): dtypes[t.storage.key] = t.storage.dtype
        case .dict(let items): for (_, v) in items { collectStorages(v, into: &dtypes) }
        case .list(let items), .tuple(let items): for v in items { collectStorages(v, into: &dtypes) }
        default: break
        }
    }

    /// name → tensor for every tensor in (nested) dicts; keys of inner dicts are joined with dots.
    private static func flatten(_ object: PickleValue, origin: String) throws -> [String: TensorReference] {
        var out: [String: TensorReference] = [:]
        func walk(_ value: PickleValue, _ prefix: String) {
            switch value {
            case .tensor(let t): out[prefix] = t
            case .dict(let items):
                for (k, v) in items {
                    guard let key = k.string ?? k.int.map(String.init) else { continue }
                    walk(v, prefix.isEmpty ? key : prefix + "." + key)
                }
            default: break
            }
        }
        walk(object, "")
        guard !out.isEmpty else { throw WeightsError(.badHeader, file: origin, "the checkpoint holds no tensors") }
        return out
    }

    private static func checkSizes(
        _ tensors: [String: TensorReference], sizes: [String: ZipDirectory.Entry], prefix: String, origin: String
    ) throws {
        for (name, t) in tensors {
            guard let entry = sizes[prefix + t.storage.key] else { continue }
            guard entry.range.count >= t.storage.count * t.storage.dtype.size else {
                throw WeightsError(
                    .truncated, file: origin, tensor: name,
                    "storage '\(t.storage.key)' has \(entry.range.count) bytes, \(t.storage.count) elements need \(t.storage.count * t.storage.dtype.size)"
                )
            }
        }
    }

    public var names: [String] { tensors.keys.sorted() }

    public func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors[name], let base = storageOffsets[t.storage.key] else {
            throw WeightsError(.missingTensor, file: origin, tensor: name, "no such tensor in the checkpoint")
        }
        let size = t.storage.dtype.size
        let count = t.shape.reduce(1, *)
        let source = UnsafeRawPointer(file.base) + base + t.offset * size
        var contiguous = true
        var expected = 1
        for (n, s) in zip(t.shape, t.strides).reversed() where n > 1 {
            if s != expected { contiguous = false }
            expected *= n
        }
        if contiguous {
            let storage = TensorStorage(borrowing: source, byteCount: count * size, owner: file)
            return Tensor(shape: t.shape, dtype: t.storage.dtype, storage: storage)
        }
        // A strided view (e.g. TensorFlow layouts expressed through strides): gather in row-major order, the
        // innermost dimension in one loop (a byte copy when its elements are adjacent).
        let storage = TensorStorage(zeroedByteCount: count * size)
        var destination = storage.pointer
        let dims = zip(t.shape, t.strides).filter { $0.0 > 1 }  // size-1 dimensions move nothing
        let (shape, strides) = (dims.map(\.0), dims.map(\.1))
        let last = shape.count - 1
        func copy(_ dim: Int, _ from: UnsafeRawPointer) {
            if dim < last {
                for i in 0..<shape[dim] { copy(dim + 1, from + i * strides[dim] * size) }
                return
            }
            let (n, stride) = (shape[last], strides[last])
            if stride == 1 {
                destination.copyMemory(from: from, byteCount: n * size)
            } else {
                for i in 0..<n { (destination + i * size).copyMemory(from: from + i * stride * size, byteCount: size) }
            }
            destination += n * size
        }
        if count > 0 { copy(0, source) }
        return Tensor(shape: t.shape, dtype: t.storage.dtype, storage: storage)
    }
}

/// The central directory of a zip archive whose entries are stored uncompressed, as `torch.save` writes them.
struct ZipDirectory {
    struct Entry {
        let range: Range<Int>
    }

    let entries: [String: Entry]

    init(_ bytes: UnsafeRawBufferPointer, origin: String) throws {
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        func bad(_ message: String) -> WeightsError { WeightsError(.badHeader, file: origin, "zip: \(message)") }
        // End of central directory: 22 bytes plus a comment of up to 65,535 bytes at the end of the file.
        guard bytes.count >= 22 else { throw bad("the file is too short for an archive") }
        var eocd: Int?
        var i = bytes.count - 22
        while i >= max(0, bytes.count - 22 - 65_535) {
            if u32(i) == 0x0605_4B50 {
                eocd = i
                break
            }
            i -= 1
        }
        guard let end = eocd else { throw bad("no end-of-central-directory record (truncated?)") }
        let count = u16(end + 10)
        var position = u32(end + 16)
        if count == 0xFFFF || position == 0xFFFF_FFFF { throw bad("zip64 archives (over 4 GiB) are not supported") }
        var entries: [String: Entry] = [:]
        for _ in 0..<count {
            guard position + 46 <= bytes.count, u32(position) == 0x0201_4B50 else {
                throw bad("central directory entry at byte \(position) is damaged")
            }
            let method = u16(position + 10)
            let compressed = u32(position + 20)
            let nameLength = u16(position + 28)
            let extraLength = u16(position + 30)
            let commentLength = u16(position + 32)
            let local = u32(position + 42)
            guard position + 46 + nameLength <= bytes.count else { throw bad("an entry name runs past the end") }
            let name = String(decoding: bytes[(position + 46)..<(position + 46 + nameLength)], as: UTF8.self)
            guard method == 0 else {
                throw bad("entry '\(name)' is compressed (method \(method)); only stored entries are read")
            }
            guard local + 30 <= bytes.count, u32(local) == 0x0403_4B50 else {
                throw bad("the local header of '\(name)' at byte \(local) is damaged")
            }
            let start = local + 30 + u16(local + 26) + u16(local + 28)
            guard start + compressed <= bytes.count else {
                throw WeightsError(.truncated, file: origin, "zip: entry '\(name)' runs past the end of the file")
            }
            entries[name] = Entry(range: start..<(start + compressed))
            position += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
    }
}
