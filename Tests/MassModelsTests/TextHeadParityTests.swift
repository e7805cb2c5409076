import Foundation
import MassModels
import MassTensor
import MassTesting
import MassTokenizers
import Testing

/// Text classification and rerank heads (BertForSequenceClassification) against transformers, on the small
/// random-weight checkpoints that ship with the tests: identical token ids and type ids (pairs, longest-first
/// truncation), logits within 1e-4, batched equal to single.
@Suite struct TextHeadParityTests {
    let fixture: TextHeadFixture
    init() throws { fixture = try TextHeadFixture.load() }

    func logits(_ model: SequenceClassifier, _ encodings: [Encoding]) throws -> [[Float]] {
        try model.logits(encodings, workspace: EncoderWorkspace(), pool: ComputePool(threads: 2))
    }

    @Test func classifierMatchesTransformers() throws {
        let model = try SequenceClassifier(directory: TextHeadFixture.classifierDirectory, encoder: BertModel.encoder)
        #expect(model.labels == ["negative", "neutral", "positive"])
        #expect(model.problemType == .singleLabel)
        let encodings = try fixture.classification.map { try model.encode($0.text) }
        for (golden, encoding) in zip(fixture.classification, encodings) {
            #expect(encoding.ids == golden.ids, "ids of \(golden.text)")
            #expect(encoding.typeIds == golden.typeIds, "type ids of \(golden.text)")
        }
        let single = try encodings.map { try logits(model, [$0])[0] }
        let batched = try logits(model, encodings)
        for (i, golden) in fixture.classification.enumerated() {
            let diff = Comparison.maxAbsDiff(single[i], golden.logits)
            #expect(diff < 1e-4, "logits of '\(golden.text)' differ by \(diff)")
            #expect(Comparison.maxAbsDiff(batched[i], single[i]) < 1e-5, "batched != single for '\(golden.text)'")
        }
        // Softmax over the labels.
        let p = model.scores(single[0])
        #expect(abs(p.reduce(0, +) - 1) < 1e-6)
    }

    @Test func rerankerMatchesTransformers() throws {
        let entry = try ArchitectureRegistry.standard.load(TextHeadFixture.rerankerDirectory, task: .rerank)
        let model = try #require(entry as? SequenceClassifier)
        #expect(model.labels.count == 1)
        let encodings = try fixture.rerank.map { try model.encode(pair: $0.query ?? "", $0.text) }
        for (golden, encoding) in zip(fixture.rerank, encodings) {
            #expect(encoding.ids == golden.ids, "ids of (\(golden.query ?? ""), \(golden.text))")
            #expect(encoding.typeIds == golden.typeIds, "type ids of (\(golden.query ?? ""), \(golden.text))")
        }
        let batched = try logits(model, encodings)
        for (i, golden) in fixture.rerank.enumerated() {
            let diff = Comparison.maxAbsDiff(batched[i], golden.logits)
            #expect(diff < 1e-4, "logit of '\(golden.text)' differs by \(diff)")
        }
    }

    /// Hugging Face's longest_first: both fit, the short side fits, both cut (odd and even room), first longer.
    @Test func pairTruncationMatchesTransformers() throws {
        let model = try SequenceClassifier(directory: TextHeadFixture.rerankerDirectory, encoder: BertModel.encoder)
        for golden in fixture.truncation {
            let encoding = try model.tokenizer.encode(
                pair: golden.query ?? "", golden.text, maxLength: golden.maxLength)
            #expect(encoding.ids == golden.ids, "ids at max_length \(golden.maxLength ?? 0)")
            #expect(encoding.typeIds == golden.typeIds, "type ids at max_length \(golden.maxLength ?? 0)")
            let diff = Comparison.maxAbsDiff(try logits(model, [encoding])[0], golden.logits)
            #expect(diff < 1e-4, "logit at max_length \(golden.maxLength ?? 0) differs by \(diff)")
        }
    }

    @Test func overLongInputIsRefusedWithoutTruncation() throws {
        let model = try SequenceClassifier(directory: TextHeadFixture.classifierDirectory, encoder: BertModel.encoder)
        let long = String(repeating: "hello world ", count: 100)
        let error = caught(ModelError.self) { _ = try model.encode(long, truncate: false) }
        #expect(error?.code == .inputTooLong)
        let count = model.tokenizer.encode(long).untruncatedCount
        #expect(count > model.maxSequenceLength)
        #expect(error?.message.contains("has \(count) tokens") == true, "\(error?.message ?? "")")
        #expect(try model.encode(long).ids.count == model.maxSequenceLength)
    }

    /// A copy of a checkpoint folder with its config edited (weights and tokenizer linked).
    func edited(_ source: URL, _ name: String, _ change: (inout [String: Any]) -> Void) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mass-head-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for file in ["model.safetensors", "tokenizer.json"] {
            try FileManager.default.createSymbolicLink(
                at: dir.appendingPathComponent(file), withDestinationURL: source.appendingPathComponent(file))
        }
        var config =
            try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json")))
            as! [String: Any]
        change(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        return dir
    }

    @Test func multiLabelScoresEachLabelBySigmoid() throws {
        let dir = try edited(TextHeadFixture.classifierDirectory, "multi") {
            $0["problem_type"] = "multi_label_classification"
        }
        let model = try SequenceClassifier(directory: dir, encoder: BertModel.encoder)
        #expect(model.problemType == .multiLabel)
        let row = fixture.classification[0].logits
        let scores = model.scores(row)
        for (s, l) in zip(scores, row) { #expect(abs(s - 1 / (1 + exp(-l))) < 1e-6) }
    }

    @Test func brokenHeadsAreRefusedByName() throws {
        let noLabel = try edited(TextHeadFixture.classifierDirectory, "labels") {
            $0["id2label"] = ["0": "a", "1": "b"]
        }
        let labels = caught(ModelError.self) {
            _ = try SequenceClassifier(directory: noLabel, encoder: BertModel.encoder)
        }
        #expect(labels?.message.contains("'id2label' has no label 2") == true, "\(labels?.message ?? "")")
        let problem = try edited(TextHeadFixture.classifierDirectory, "problem") { $0["problem_type"] = "regression" }
        let type = caught(ModelError.self) {
            _ = try SequenceClassifier(directory: problem, encoder: BertModel.encoder)
        }
        #expect(type?.code == .unsupported)
        // Three labels cannot rank: the registry refuses the classifier as a reranker.
        let rerank = caught(ModelError.self) {
            _ = try ArchitectureRegistry.standard.load(TextHeadFixture.classifierDirectory, task: .rerank)
        }
        #expect(rerank?.message.contains("has 3 labels") == true, "\(rerank?.message ?? "")")
        let unknown = caught(ModelError.self) {
            _ = try ArchitectureRegistry.standard.load(
                TextHeadFixture.classifierDirectory, task: .rerank, architecture: "gpt")
        }
        #expect(unknown?.message.contains("architecture 'gpt' is unknown") == true)
        let other = try edited(TextHeadFixture.classifierDirectory, "type") { $0["model_type"] = "t5" }
        let unmatched = caught(ModelError.self) {
            _ = try ArchitectureRegistry.standard.load(other, task: .textClassification)
        }
        #expect(unmatched?.message.contains("model_type 't5'") == true, "\(unmatched?.message ?? "")")
    }
}
