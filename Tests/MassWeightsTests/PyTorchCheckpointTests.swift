import Foundation
import MassTensor
import MassTesting
import MassWeights
import Testing

/// Builds pickles opcode by opcode, the way `torch.save` writes them (protocol 2).
struct PickleWriter {
    var bytes: [UInt8] = [0x80, 2]

    mutating func op(_ b: UInt8) { bytes.append(b) }
    mutating func string(_ s: String) {
        op(0x58)
        withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian) { bytes += $0 }
        bytes += Array(s.utf8)
    }
    mutating func int(_ i: Int) {
        op(0x4A)
        withUnsafeBytes(of: Int32(i).littleEndian) { bytes += $0 }
    }
    mutating func global(_ module: String, _ name: String) {
        op(0x63)
        bytes += Array("\(module)\n\(name)\n".utf8)
    }
    mutating func tuple(_ values: [Int]) {
        op(0x28)
        for v in values { int(v) }
        op(0x74)
    }
    /// `_rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())`.
    mutating func tensor(key: String, storage: String, count: Int, offset: Int, shape: [Int], strides: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(0x28)  // MARK: the arguments
        op(0x28)  // MARK: the persistent id
        string("storage")
        global("torch", storage)
        string(key)
        string("cpu")
        int(count)
        op(0x74)
        op(0x51)  // BINPERSID
        int(offset)
        tuple(shape)
        tuple(strides)
        op(0x89)  // NEWFALSE
        global("collections", "OrderedDict")
        op(0x29)
        op(0x52)
        op(0x74)  // TUPLE
        op(0x52)  // REDUCE
    }
    /// An OrderedDict state dict of the tensors `body` writes, each after its key.
    mutating func stateDict(_ body: (inout PickleWriter) -> Void) {
        global("collections", "OrderedDict")
        op(0x29)
        op(0x52)
        op(0x71)
        op(0)  // BINPUT 0
        op(0x28)
        body(&self)
        op(0x75)  // SETITEMS
    }
    mutating func stop() -> [UInt8] {
        op(0x2E)
        return bytes
    }
}

enum CheckpointFiles {
    static var directory: URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mass-pth-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A state dict: "w" a [2, 3] float view with strides (1, 2) over storage "0" (6 floats, transposed
    /// layout), "h" two halves in storage "1", "n" an int64 scalar in storage "2".
    static func object() -> [UInt8] {
        var p = PickleWriter()
        p.stateDict { p in
            p.string("w")
            p.tensor(key: "0", storage: "FloatStorage", count: 6, offset: 0, shape: [2, 3], strides: [1, 2])
            p.string("h")
            p.tensor(key: "1", storage: "HalfStorage", count: 2, offset: 0, shape: [2], strides: [1])
            p.string("n")
            p.tensor(key: "2", storage: "LongStorage", count: 1, offset: 0, shape: [], strides: [])
        }
        return p.stop()
    }

    /// Storage "0" holds 0...5 in column-major order of w = [[0, 1, 2], [3, 4, 5]].
    static let storages: [(String, [UInt8])] = [
        (
            "0",
            [0, 3, 1, 4, 2, 5].flatMap { (v: Float) in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        ),
        ("1", [0x00, 0x3E, 0x00, 0xC0]),  // 1.5, -2.0 in float16
        ("2", withUnsafeBytes(of: Int64(42).littleEndian) { Array($0) }),
    ]

    static func legacy(truncateBy cut: Int = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        var magic = PickleWriter()
        magic.op(0x8A)
        magic.op(10)
        magic.bytes += [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
        bytes += magic.stop()
        var version = PickleWriter()
        version.int(1001)
        bytes += version.stop()
        var info = PickleWriter()
        info.op(0x7D)
        info.string("little_endian")
        info.op(0x88)
        info.op(0x73)
        bytes += info.stop()
        bytes += object()
        var keys = PickleWriter()
        keys.op(0x5D)
        keys.op(0x28)
        for (key, _) in storages { keys.string(key) }
        keys.op(0x65)
        bytes += keys.stop()
        for (key, data) in storages {
            let count = key == "0" ? 6 : key == "1" ? 2 : 1
            withUnsafeBytes(of: Int64(count).littleEndian) { bytes += $0 }
            bytes += data
        }
        return Array(bytes.dropLast(cut))
    }

    /// A zip archive of stored entries, as torch.save has written since 1.6.
    static func zip(_ files: [(String, [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func u16(_ v: Int, _ b: inout [UInt8]) { withUnsafeBytes(of: UInt16(v).littleEndian) { b += $0 } }
        func u32(_ v: Int, _ b: inout [UInt8]) { withUnsafeBytes(of: UInt32(v).littleEndian) { b += $0 } }
        for (name, data) in files {
            let offset = out.count
            u32(0x0403_4B50, &out)
            for v in [20, 0, 0, 0, 0] { u16(v, &out) }
            u32(0, &out)  // crc (not checked)
            u32(data.count, &out)
            u32(data.count, &out)
            u16(name.utf8.count, &out)
            u16(0, &out)
            out += Array(name.utf8)
            out += data
            u32(0x0201_4B50, &central)
            for v in [20, 20, 0, 0, 0, 0] { u16(v, &central) }
            u32(0, &central)
            u32(data.count, &central)
            u32(data.count, &central)
            u16(name.utf8.count, &central)
            for v in [0, 0, 0, 0] { u16(v, &central) }
            u32(0, &central)
            u32(offset, &central)
            central += Array(name.utf8)
        }
        let start = out.count
        out += central
        u32(0x0605_4B50, &out)
        for v in [0, 0, files.count, files.count] { u16(v, &out) }
        u32(central.count, &out)
        u32(start, &out)
        u16(0, &out)
        return out
    }

    static func zipCheckpoint() -> [UInt8] {
        zip(
            [("model/data.pkl", object()), ("model/byteorder", Array("little".utf8))]
                + storages.map { ("model/data/\($0.0)", $0.1) })
    }
}

@Suite struct PyTorchCheckpointTests {
    func expectSmallStateDict(_ checkpoint: PyTorchCheckpoint) throws {
        #expect(checkpoint.names == ["h", "n", "w"])
        let w = try checkpoint.float32("w", shape: [2, 3])
        #expect(w.array == [0, 1, 2, 3, 4, 5], "the strided view is materialised in row-major order")
        #expect(try checkpoint.float32("h").array == [1.5, -2])
        let n = try checkpoint.tensor("n")
        #expect(n.shape == [] && n.dtype == .int64)
        // A zip entry may start at any offset: the scalar is read unaligned.
        #expect(UnsafeRawPointer(n.storage.pointer).loadUnaligned(as: Int64.self) == 42)
    }

    @Test func readsTheLegacyFormat() throws {
        try expectSmallStateDict(PyTorchCheckpoint(path: CheckpointFiles.write(CheckpointFiles.legacy(), "legacy.pth")))
    }

    @Test func readsTheZipFormat() throws {
        try expectSmallStateDict(
            PyTorchCheckpoint(path: CheckpointFiles.write(CheckpointFiles.zipCheckpoint(), "zip.pt")))
    }

    @Test func truncatedFilesNameTheStorage() throws {
        let path = try CheckpointFiles.write(CheckpointFiles.legacy(truncateBy: 5), "cut.pth")
        let error = try #require(caught(WeightsError.self) { _ = try PyTorchCheckpoint(path: path) })
        #expect(
            error.code == .truncated && error.description.contains("storage '2'")
                && error.description.contains("cut.pth"))
        let zip = Array(CheckpointFiles.zipCheckpoint().dropLast(30))
        let zipError = try #require(
            caught(WeightsError.self) {
                _ = try PyTorchCheckpoint(path: try CheckpointFiles.write(zip, "cut.pt"))
            })
        #expect(zipError.description.contains("end-of-central-directory"), "\(zipError)")
        let garbage = try CheckpointFiles.write(Array("not a checkpoint at all".utf8), "garbage.pth")
        #expect(caught(WeightsError.self) { _ = try PyTorchCheckpoint(path: garbage) } != nil)
    }

    /// Hostile pickles: each is refused before anything could run, with the global or opcode named.
    @Test func refusesHostilePickles() throws {
        func refusal(_ build: (inout PickleWriter) -> Void) -> String {
            var p = PickleWriter()
            build(&p)
            let bytes = p.stop()
            return bytes.withUnsafeBytes { raw in
                do {
                    _ = try PickleMachine.load(raw)
                    return "accepted"
                } catch {
                    return "\(error)"
                }
            }
        }
        let system = refusal { p in
            p.global("os", "system")
            p.op(0x28)
            p.string("echo pwned")
            p.op(0x74)
            p.op(0x52)
        }
        #expect(system.contains("refused global 'os.system'"), "\(system)")
        let eval = refusal { p in
            p.string("builtins")
            p.string("eval")
            p.op(0x93)  // STACK_GLOBAL
        }
        #expect(eval.contains("refused global 'builtins.eval'"), "\(eval)")
        let posix = refusal { p in p.global("posix", "system") }
        #expect(posix.contains("posix.system"))
        // Nested REDUCE: calling the result of an allowed call.
        let nested = refusal { p in
            p.global("collections", "OrderedDict")
            p.op(0x29)
            p.op(0x52)
            p.op(0x29)
            p.op(0x52)
        }
        #expect(nested.contains("REDUCE on a value that is not a global"), "\(nested)")
        // A storage class used as a callable.
        let storageCall = refusal { p in
            p.global("torch", "FloatStorage")
            p.op(0x29)
            p.op(0x52)
        }
        #expect(storageCall.contains("refused call of 'torch.FloatStorage'"), "\(storageCall)")
        let inst = refusal { p in p.bytes += Array("ios\nsystem\n".utf8) }  // INST (protocol 0)
        #expect(inst.contains("unsupported pickle opcode 0x69"), "\(inst)")
        let outOfRange = refusal { p in
            p.tensor(key: "0", storage: "FloatStorage", count: 4, offset: 2, shape: [2, 2], strides: [2, 1])
        }
        #expect(outOfRange.contains("reaches element 5 of storage '0', which has 4"), "\(outOfRange)")
        var truncated = PickleWriter()
        truncated.string("abc")
        let cut = Array(truncated.bytes.dropLast(2))
        let message = cut.withUnsafeBytes { raw in (try? PickleMachine.load(raw)).map { _ in "accepted" } ?? "refused" }
        #expect(message == "refused")
    }

    /// The default image model's checkpoint: 296 tensors, 50 of them strided TensorFlow layouts. Element values
    /// and sums from PyTorch (`torch.load(..., weights_only=True)`).
    @Test func readsTheEfficientNetCheckpoint() throws {
        let path = FixturePaths.models.appendingPathComponent("efficientnet-lite0/1/efficientnet-lite0-57934424.pth")
            .path
        let checkpoint = try PyTorchCheckpoint(path: path)
        #expect(checkpoint.names.count == 296)
        let cases: [(String, [Int], [Int], Float, Double)] = [
            ("_conv_stem.weight", [32, 3, 3, 3], [5, 1, 2, 0], 0.06300771236419678, -26.811376610887237),
            ("_fc.weight", [1000, 1280], [3, 700], 0.1857312023639679, -470.63256730128705),
            (
                "_blocks.3._depthwise_conv.weight", [144, 1, 5, 5], [100, 0, 4, 1], 0.04458676278591156,
                25.451435315888375
            ),
            ("_blocks.1._expand_conv.weight", [96, 16, 1, 1], [50, 7, 0, 0], -0.3720570206642151, 8.296096043894067),
            ("_conv_head.weight", [1280, 320, 1, 1], [1000, 300, 0, 0], -0.08276906609535217, -21.113805372136994),
            ("_bn0.running_var", [32], [7], 6.45442008972168, 214.57079964876175),
        ]
        for (name, shape, index, value, sum) in cases {
            let t = try checkpoint.float32(name, shape: shape)
            var flat = 0
            for (i, n) in zip(index, shape) { flat = flat * n + i }
            #expect(t.array[flat] == value, "\(name)\(index)")
            let total = t.array.reduce(0.0) { $0 + Double($1) }
            #expect(abs(total - sum) < 1e-6 * max(1, abs(sum)), "\(name) sum \(total)")
        }
    }
}
