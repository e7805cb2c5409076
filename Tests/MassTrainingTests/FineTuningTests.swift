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
}
