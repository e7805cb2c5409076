import Foundation
import MassAutograd
import MassModels
import MassTensor
import MassTesting
import MassTokenizers
import MassTraining
import Testing

/// Fine-tuning MiniLM (the default model): the trainable encoder computes what the inference encoder computes,
/// and a fine-tuned encoder saved by Mass is served by the inference code with the trained weights.
@Suite struct FineTuningTests {
    static let texts = [
        "A three-hour cinema master class.", "The plot is thin and the jokes fall flat.", "Hello world",
        "Two dogs play in the snow near a frozen lake while their owners watch from a bench.",
    ]

    /// Mean-pooled, L2-normalised token states of the trainable encoder against SentenceEmbedder's embeddings.
    func agreement(_ model: SentenceEncoderClassifier, _ served: SentenceEmbedder) throws -> Float {
        let (ids, types, mask) = model.batch(Self.texts, maxLength: 128)
        var generator = SeededGenerator(seed: 0)
        let pooled = model.encoder.hidden(ids: ids, typeIds: types, mask: mask, generator: &generator)
            .meanPooled(mask: mask).l2Normalized()
        let expected = try served.embed(
            Self.texts.map { served.tokenize($0).ids }, workspace: served.makeWorkspace(), pool: ComputePool(threads: 1)
        )
        return Comparison.maxAbsDiff(pooled.value, expected.flatMap { $0 })
    }

    @Test func trainableEncoderMatchesInferenceAndSavesServably() throws {
        let source = MiniLMFixture.modelDirectory
        let model = try SentenceEncoderClassifier(directory: source, classes: 2, seed: 1, dropout: 0)
        let before = try agreement(model, try SentenceEmbedder.load(source))
        #expect(before < 1e-5, "trainable vs inference encoder: \(before)")
        // Two AdamW steps move the weights; the saved folder serves the moved encoder.
        var optimizer = AdamW(model.parameters, learningRate: 1e-3)
        var generator = SeededGenerator(seed: 2)
        let (ids, types, mask) = model.batch(Self.texts, maxLength: 128)
        for _ in 0..<2 {
            let loss = Loss.crossEntropy(
                model.logits(ids: ids, typeIds: types, mask: mask, generator: &generator), labels: [0, 1, 0, 1])
            for p in model.parameters { p.zeroGrad() }
            loss.backward()
            optimizer.step()
        }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mass-finetuned-\(UUID())")
        defer { try? FileManager.default.removeItem(at: out) }
        try model.save(to: out, copyingFrom: source, metadata: ["mass.parent": source.path])
        let original = try SentenceEmbedder.load(source)
        let tuned = try SentenceEmbedder.load(out)
        #expect(try agreement(model, tuned) < 1e-5)
        #expect(try agreement(model, original) > 1e-3)  // the weights did move
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("head.safetensors").path))
    }

    /// The saved folder with its labels serves as a text classifier: SequenceClassifier's logits (the inference
    /// encoder, mean pooling, the head) are the trainable model's.
    @Test func savedFolderServesTheTrainedLogits() throws {
        let source = MiniLMFixture.modelDirectory
        let model = try SentenceEncoderClassifier(directory: source, classes: 3, seed: 5, dropout: 0)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mass-classifier-\(UUID())")
        defer { try? FileManager.default.removeItem(at: out) }
        try model.save(to: out, copyingFrom: source, metadata: ["mass.labels": #"["a","b","c"]"#])
        let served = try SequenceClassifier(directory: out, encoder: BertModel.encoder)
        #expect(served.labels == ["a", "b", "c"])
        var generator = SeededGenerator(seed: 0)
        let (ids, types, mask) = model.batch(Self.texts, maxLength: 128)
        let trained = model.logits(ids: ids, typeIds: types, mask: mask, generator: &generator).value
        let logits = try served.logits(
            Self.texts.map { try served.encode($0) }, workspace: served.makeWorkspace(), pool: ComputePool(threads: 1))
        let difference = Comparison.maxAbsDiff(trained, logits.flatMap { $0 })
        #expect(difference < 1e-5, "served vs trained logits: \(difference)")
        #expect(throws: ModelError.self) { try served.encode(pair: "a", "b") }
    }

    /// Two batches' gradients accumulated equal the gradient of one batch of both.
    @Test func accumulatedGradientsEqualOneBatch() throws {
        let model = try SentenceEncoderClassifier(
            directory: MiniLMFixture.modelDirectory, classes: 2, seed: 3, dropout: 0)
        let tuning = FineTuning(FineTuning.Settings())
        let labels = [0, 1, 1, 0]
        var generator = SeededGenerator(seed: 0)
        let whole = try tuning.accumulateGradients(
            model, group: [[0, 1, 2, 3]], texts: Self.texts, labels: labels, generator: &generator, step: 0)
        let expected = model.parameters.map { $0.grad ?? [] }
        // Uneven parts: each batch's mean loss weighs by its share of the group. Measured: 9.5e-6 at most.
        let parts = try tuning.accumulateGradients(
            model, group: [[0], [1, 2, 3]], texts: Self.texts, labels: labels, generator: &generator, step: 0)
        #expect(abs(parts - whole) < 1e-5)
        // The attention key biases are left out: their gradient is zero in theory and rounding noise in practice
        // (BertStepParityTests says why).
        let names = model.encoder.parameters.map(\.name) + ["out.weight", "out.bias"]
        var worst: (Float, String) = (0, "")
        for (name, (p, e)) in zip(names, zip(model.parameters, expected)) where !name.hasSuffix("key.bias") {
            let scale = max(e.map(abs).max() ?? 0, 1e-6)
            let difference = Comparison.maxAbsDiff(p.grad ?? [], e) / scale
            if difference > worst.0 { worst = (difference, name) }
        }
        #expect(worst.0 < 1e-4, "largest relative gradient difference: \(worst)")
    }
}
