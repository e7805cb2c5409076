import Foundation
import MassTensor
import MassTesting
import MassWeights
import Testing

/// Writes CTranslate2 `model.bin` files record by record (little-endian, strings with a u16 length that
/// counts their NUL).
struct CT2Writer {
    var bytes: [UInt8] = []

    mutating func u8(_ v: Int) { bytes.append(UInt8(v)) }
    mutating func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { bytes += $0 } }
    mutating func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) {
        u16(s.utf8.count + 1)
        bytes += Array(s.utf8) + [0]
    }
    /// A variable record of binary version 4 and later.
    mutating func variable(_ name: String, shape: [Int], code: Int, data: [UInt8]) {
        string(name)
        u8(shape.count)
        for d in shape { u32(d) }
        u8(code)
        u32(data.count)
        bytes += data
    }

    static func floats(_ v: [Float]) -> [UInt8] {
        v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }
    }

    /// Version 6: a float32 matrix, float16 and bfloat16 vectors, int8/int16/int32 scalars, an int8 weight with
    /// its scale, and aliases to both.
    static func sample() -> [UInt8] {
        var w = CT2Writer()
        w.u32(6)
        w.string("TestSpec")
        w.u32(3)
        w.u32(8)
        w.variable("a/weight", shape: [2, 2], code: 0, data: floats([1, -2, 3.5, 4]))
        w.variable("a/half", shape: [2], code: 4, data: [0x00, 0x3C, 0x00, 0xC0])
        w.variable("a/brain", shape: [2], code: 5, data: [0x80, 0x3F, 0x40, 0xC0])
        w.variable("heads", shape: [], code: 2, data: [6, 0])
        w.variable("flag", shape: [], code: 1, data: [3])
        w.variable("big", shape: [], code: 3, data: [0xFF, 0xFF, 0xFF, 0xFF])
        w.variable("q/weight", shape: [2], code: 1, data: [0x7F, 0x81])
        w.variable("q/weight_scale", shape: [1], code: 0, data: floats([127]))
        w.u32(2)
        w.string("b/weight")
        w.string("a/weight")
        w.string("p/weight")
        w.string("q/weight")
        return w.bytes
    }
}

@Suite struct CTranslate2ModelTests {
    func write(_ bytes: [UInt8], _ name: String) throws -> String { try temporaryFile(bytes, named: name) }

    @Test func readsEveryDTypeScalarsAndAliases() throws {
        let model = try CTranslate2Model(path: write(CT2Writer.sample(), "sample.bin"))
        #expect(model.binaryVersion == 6 && model.specName == "TestSpec" && model.specRevision == 3)
        #expect(model.variables.count == 8 && model.aliases == ["b/weight": "a/weight", "p/weight": "q/weight"])
        #expect(try model.float32("a/weight", shape: [2, 2]).array == [1, -2, 3.5, 4])
        #expect(try model.float32("b/weight").array == [1, -2, 3.5, 4], "an alias reads its target")
        #expect(try model.float32("a/half").array == [1, -2])
        #expect(try model.float32("a/brain").array == [1, -3])
        #expect(try model.integer("heads") == 6 && model.integer("flag") == 3 && model.integer("big") == -1)
        #expect(try model.tensor("q/weight").dtype == .int8)
        #expect(try model.float32("p/weight_scale").array == [127], "an alias's _scale follows the alias")
        #expect(caught(WeightsError.self) { _ = try model.tensor("nope") }?.code == .missingTensor)
    }

    @Test func readsLegacyBinaryVersions() throws {
        var v1 = CT2Writer()
        v1.u32(1)
        v1.u32(1)
        v1.string("w")
        v1.u8(1)
        v1.u32(2)
        v1.u8(4)  // item size 4: float32
        v1.u32(2)  // element count
        v1.bytes += CT2Writer.floats([0.5, 8])
        let model = try CTranslate2Model(path: write(v1.bytes, "v1.bin"))
        #expect(model.specName == nil && model.specRevision == 1 && model.aliases.isEmpty)
        #expect(try model.float32("w").array == [0.5, 8])
    }

    @Test func damagedFilesNameTheOffsetAndVariable() throws {
        let good = CT2Writer.sample()
        func error(_ bytes: [UInt8], _ name: String) throws -> WeightsError? {
            let path = try write(bytes, name)
            return caught(WeightsError.self) { _ = try CTranslate2Model(path: path) }
        }
        // Cut inside the data of the second variable.
        let cut = try #require(try error(Array(good.prefix(80)), "cut.bin"))
        #expect(cut.code == .truncated && cut.description.contains("a/half") && cut.description.contains("at byte"))
        #expect(cut.description.contains("cut.bin"))
        var seven = good
        seven[0] = 7
        #expect(try error(seven, "v7.bin")?.description.contains("binary version 7") == true)
        var badCode = CT2Writer()
        badCode.u32(6)
        badCode.string("S")
        badCode.u32(1)
        badCode.u32(1)
        badCode.variable("x", shape: [1], code: 9, data: [0])
        #expect(try error(badCode.bytes, "code.bin")?.code == .unknownDType)
        var mismatch = CT2Writer()
        mismatch.u32(6)
        mismatch.string("S")
        mismatch.u32(1)
        mismatch.u32(1)
        mismatch.variable("x", shape: [3], code: 0, data: [0, 0, 0, 0])
        #expect(try error(mismatch.bytes + [0, 0, 0, 0], "size.bin")?.description.contains("declares 4 bytes") == true)
        var noNul = CT2Writer()
        noNul.u32(6)
        noNul.u16(3)
        noNul.bytes += Array("abc".utf8)
        #expect(try error(noNul.bytes, "nul.bin")?.description.contains("NUL-terminated") == true)
        #expect(try error(good + [1], "trailing.bin")?.description.contains("1 bytes follow") == true)
        // The alias section (a count and four 11-byte strings) replaced by one alias to nothing.
        var w = CT2Writer()
        w.u32(1)
        w.string("c/weight")
        w.string("missing")
        let aliasFile = Array(good.prefix(good.count - (4 + 4 * 11))) + w.bytes
        #expect(try error(aliasFile, "alias.bin")?.description.contains("names 'missing'") == true)
    }

    /// faster-whisper's tiny.en package: header and variables as ../shared/reference documents them.
    @Test func readsTheWhisperTinyEnModel() throws {
        let path = FixturePaths.models.appendingPathComponent("whisper-tiny.en/1/model.bin").path
        let model = try CTranslate2Model(path: path)
        #expect(model.binaryVersion == 6 && model.specName == "WhisperSpec" && model.specRevision == 3)
        #expect(
            model.variables.count == 148 && model.aliases == ["decoder/projection/weight": "decoder/embeddings/weight"])
        #expect(model.variables.values.map(\.offset).min() == 53)
        #expect(try model.integer("decoder/num_heads") == 6 && model.integer("encoder/num_heads") == 6)
        #expect(try model.integer("decoder/activation") == 3 && model.integer("decoder/alignment_layer") == -1)
        #expect(model.variable("encoder/conv1/weight")?.shape == [384, 80, 3])
        #expect(model.variable("encoder/layer_3/self_attention/linear_0/weight")?.shape == [1152, 384])
        let projection = try model.tensor("decoder/projection/weight")
        #expect(projection.shape == [51864, 384] && projection.dtype == .float16)
        // Whisper's key projection has no bias: CTranslate2 stores zeros in the K third of the fused bias.
        let bias = try model.float32("encoder/layer_0/self_attention/linear_0/bias").array
        #expect(bias[384..<768].allSatisfy { $0 == 0 } && bias[0..<384].contains { $0 != 0 })
    }
}

/// `CTranslate2Writer`: what it writes reads back unchanged, and its int8 rule is CTranslate2's (per row
/// 127 / max|w|, ties to even). The byte-for-byte comparison with CTranslate2's converter on Whisper tiny.en is
/// CompressCommandTests.whisperInt8IsCTranslate2sOwnLayout.
@Suite struct CTranslate2WriterTests {
    @Test func writesWhatReadsBackUnchanged() throws {
        let tests = CTranslate2ModelTests()
        let sample = try CTranslate2Model(path: tests.write(CT2Writer.sample(), "sample.bin"))
        var variables: [String: CTranslate2Writer.Variable] = [:]
        for (name, v) in sample.variables {
            let t = try sample.tensor(name)
            variables[name] = .init(
                shape: v.shape, dtype: v.dtype, bytes: Data(bytes: t.storage.pointer, count: v.byteCount))
        }
        let data = try CTranslate2Writer.encode(
            specName: "TestSpec", revision: 3, variables: variables, aliases: sample.aliases)
        let copy = try CTranslate2Model(path: tests.write(Array(data), "copy.bin"))
        #expect(copy.specName == "TestSpec" && copy.specRevision == 3 && copy.aliases == sample.aliases)
        #expect(copy.variables.keys.sorted() == sample.variables.keys.sorted())
        for (name, v) in sample.variables {
            let (a, b) = (try sample.tensor(name), try copy.tensor(name))
            #expect(a.shape == b.shape && a.dtype == b.dtype, "\(name)")
            #expect(
                Data(bytes: a.storage.pointer, count: v.byteCount) == Data(bytes: b.storage.pointer, count: v.byteCount)
            )
        }
        // A variable whose bytes do not match its shape is refused, not written.
        let bad = CTranslate2Writer.Variable(shape: [3], float32: [1, 2])
        #expect(throws: WeightsError.self) {
            _ = try CTranslate2Writer.encode(specName: "S", revision: 1, variables: ["x": bad], aliases: [:])
        }
    }

    @Test func int8IsCTranslate2sRuleAndDequantises() throws {
        // Row 0: max 1, scale 127: 0.5 · 127 = 63.5 rounds to even 64, -0.25 · 127 = -31.75 to -32.
        // Row 1: all zero, scale 127 / 127 = 1. Row 2: max 4, scale 31.75: -1.25 → -39.6875 → -40.
        let w: [Float] = [0.5, -1, -0.25, 0, 0, 0, 4, -1.25, 0.0625]
        let (q, scales) = CTranslate2Writer.int8(w, rows: 3)
        #expect(q == [64, -127, -32, 0, 0, 0, 127, -40, 2])
        #expect(scales == [127, 1, 31.75])
        let data = try CTranslate2Writer.encode(
            specName: "S", revision: 1,
            variables: [
                "l/weight": .init(shape: [3, 3], int8: q), "l/weight_scale": .init(shape: [3], float32: scales),
                "m/weight": .init(shape: [1, 2], int8: [1, 2]),
                "n/weight": .init(shape: [1, 1], int8: [1]), "n/weight_scale": .init(shape: [1], float32: [0]),
            ], aliases: [:])
        let model = try CTranslate2Model(path: CTranslate2ModelTests().write(Array(data), "int8.bin"))
        let back = try model.dequantized("l/weight", shape: [3, 3]).array
        #expect(back == zip(q, [127, 127, 127, 1, 1, 1, 31.75, 31.75, 31.75] as [Float]).map { Float($0) * (1 / $1) })
        #expect(caught(WeightsError.self) { _ = try model.dequantized("m/weight") }?.code == .missingTensor)
        #expect(caught(WeightsError.self) { _ = try model.dequantized("n/weight") }?.code == .badHeader)
        #expect(caught(WeightsError.self) { _ = try model.dequantized("l/weight", shape: [9]) }?.code == .shapeMismatch)
    }
}
