import Foundation
import MassTensor
import MassTesting
import MassWeights
import Testing

/// Writes a safetensors file from a header object and a data buffer; returns its path.
func writeSafeTensors(header: String, data: [UInt8], rawLength: UInt64? = nil, name: String = #function) throws
    -> String
{
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mass-weights-tests-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name.filter { $0.isLetter } + ".safetensors").path
    var bytes: [UInt8] = []
    let length = rawLength ?? UInt64(header.utf8.count)
    withUnsafeBytes(of: length.littleEndian) { bytes += $0 }
    bytes += Array(header.utf8)
    bytes += data
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

func floatBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
}

@Suite struct SafeTensorsTests {
    @Test func readsF32F16AndBF16() throws {
        let header = #"""
            {"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
             "h": {"dtype": "F16", "shape": [2], "data_offsets": [16, 20]},
             "b": {"dtype": "BF16", "shape": [2], "data_offsets": [20, 24]}}
            """#
        let data = floatBytes([1, -2, 3.5, 4]) + [0x00, 0x3C, 0x00, 0xC0] + [0x80, 0x3F, 0x40, 0xC0]
        let file = try SafeTensorsFile(path: try writeSafeTensors(header: header, data: data))
        #expect(file.names == ["a", "b", "h"])
        #expect(file.metadata["format"] == "pt")
        #expect(try file.float32("a", shape: [2, 2]).array == [1, -2, 3.5, 4])
        #expect(try file.float32("h").array == [1, -2])
        #expect(try file.float32("b").array == [1, -3])
    }

    @Test func missingFileNamesThePath() {
        let e = caught(WeightsError.self) { _ = try SafeTensorsFile(path: "/nonexistent/model.safetensors") }
        #expect(e?.code == .fileUnreadable)
        #expect(e?.description.contains("/nonexistent/model.safetensors") == true)
    }

    @Test func truncatedFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mass-weights-tests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tiny = dir.appendingPathComponent("tiny.safetensors").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: tiny))
        #expect(caught(WeightsError.self) { _ = try SafeTensorsFile(path: tiny) }?.code == .truncated)
        // Header length larger than the file.
        let cut = try writeSafeTensors(header: "{}", data: [], rawLength: 500)
        let e = caught(WeightsError.self) { _ = try SafeTensorsFile(path: cut) }
        #expect(e?.code == .truncated)
        #expect(e?.description.contains(cut) == true)
        // Data shorter than the offsets say.
        let short = try writeSafeTensors(
            header: #"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#, data: floatBytes([1, 2]))
        let e2 = caught(WeightsError.self) { _ = try SafeTensorsFile(path: short) }
        #expect(e2?.code == .badOffsets)
        #expect(e2?.tensor == "w")
        // An absurd header length.
        let huge = try writeSafeTensors(header: "{}", data: [], rawLength: 1 << 40)
        #expect(caught(WeightsError.self) { _ = try SafeTensorsFile(path: huge) }?.code == .badHeader)
    }

    @Test func badHeaders() throws {
        let cases: [(String, WeightsError.Code, String?)] = [
            ("{not json", .badHeader, nil),
            ("[1, 2]", .badHeader, nil),
            (#"{"w": {"dtype": "F32", "shape": [1]}}"#, .badHeader, "w"),
            (#"{"w": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}}"#, .unknownDType, "w"),
            (#"{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, .badHeader, "w"),
            (#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}"#, .badOffsets, "w"),
            (#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}"#, .badOffsets, "w"),
            (#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}}"#, .badHeader, "w"),
            (#"{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}"#, .badHeader, "w"),
            (
                #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#,
                .badOffsets, nil
            ),
            (#"{"__metadata__": {"k": 1}}"#, .badHeader, "__metadata__"),
        ]
        for (index, (header, code, tensor)) in cases.enumerated() {
            let path = try writeSafeTensors(header: header, data: floatBytes([1, 2]), name: "bad\(index)")
            let e = caught(WeightsError.self) { _ = try SafeTensorsFile(path: path) }
            #expect(e?.code == code, "header \(header): \(String(describing: e))")
            if let tensor { #expect(e?.tensor == tensor, "header \(header)") }
            #expect(e?.description.contains(path) == true)
        }
    }

    @Test func missingTensorAndWrongShape() throws {
        let path = try writeSafeTensors(
            header: #"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, data: floatBytes([1, 2]))
        let file = try SafeTensorsFile(path: path)
        #expect(caught(WeightsError.self) { _ = try file.tensor("v") }?.code == .missingTensor)
        let e = caught(WeightsError.self) { _ = try file.float32("w", shape: [3]) }
        #expect(e?.code == .shapeMismatch)
        #expect(e?.description.contains("'w'") == true)
    }
}
