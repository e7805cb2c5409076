import Foundation
import MassTensor
import MassTesting
import MassWeights
import Testing

/// The ONNX weight reader on hand-written protobuf: initializers as raw_data (borrowed) and float_data, nodes,
/// and what is refused (external data, truncation, a file that is not protobuf).
@Suite struct ONNXModelTests {
    func write(_ bytes: [UInt8], _ name: String) throws -> String { try temporaryFile(bytes, named: name) }

    @Test func readsInitializersAndNodes() throws {
        var file = ONNXTestFile()
        file.nodes = [
            ONNXTestFile.Node("/encoder/layer.0/output/dense/MatMul", "MatMul", inputs: ["x", "w"], outputs: ["y"])
        ]
        file.initializers = [("w", [2, 3], [1, 2, 3, 4, 5, 6], false, false), ("b", [3], [0.5, -1, 2], true, false)]
        let model = try ONNXModel(path: write(file.bytes, "ok.onnx"))
        #expect(model.names == ["b", "w"])
        #expect(try model.tensor("w").shape == [2, 3] && model.float32("w").array == [1, 2, 3, 4, 5, 6])
        #expect(try model.float32("b").array == [0.5, -1, 2])
        #expect(
            model.nodes == [
                ONNXModel.Node(
                    name: "/encoder/layer.0/output/dense/MatMul", opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])
            ])
        #expect(caught(WeightsError.self) { _ = try model.tensor("nope") }?.code == .missingTensor)
    }

    @Test func refusesWhatItCannotRead() throws {
        var external = ONNXTestFile()
        external.initializers = [("w", [2], [1, 2], false, true)]
        let e = caught(WeightsError.self) { _ = try ONNXModel(path: write(external.bytes, "external.onnx")) }
        #expect(e?.description.contains("external data") == true, "\(String(describing: e))")
        var short = ONNXTestFile()
        short.initializers = [("w", [4], [1, 2], false, false)]
        let s = caught(WeightsError.self) { _ = try ONNXModel(path: write(short.bytes, "short.onnx")) }
        #expect(s?.code == .badOffsets && s?.description.contains("holds 8 bytes") == true, "\(String(describing: s))")
        let whole = ONNXTestFile().bytes
        let cut = caught(WeightsError.self) { _ = try ONNXModel(path: write(Array(whole.dropLast(3)), "cut.onnx")) }
        #expect(cut?.code == .truncated && cut?.description.contains("at byte") == true, "\(String(describing: cut))")
        let text = caught(WeightsError.self) {
            _ = try ONNXModel(path: write(Array("not an onnx file".utf8), "t.onnx"))
        }
        #expect(
            text?.code == .truncated && text?.description.contains("wire type 6") == true, "\(String(describing: text))"
        )
    }
}
