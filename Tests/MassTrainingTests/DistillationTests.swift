import Foundation
import MassAutograd
import MassModels
import MassTensor
import MassTesting
import MassTokenizers
import MassTraining
import Testing

/// Distilling MiniLM (the default model) into a student with three of its six layers: the student starts from the
/// teacher's layers, learns the teacher's embeddings, and its saved folder (layers renumbered, config.json
/// rewritten) is served by the inference code with the student's weights.
@Suite struct DistillationTests {
    static let texts =
        FineTuningTests.texts + [
            "Markets fell sharply after the central bank raised interest rates.",
            "Return the number of items in the container.", "The museum reopens on Monday with a new exhibition.",
            "Rain is expected across the north of the country tonight.",
        ]

    @Test func studentLearnsTheTeacherAndSavesServably() throws {
        let teacherFolder = MiniLMFixture.modelDirectory
        let teacher = try SentenceEmbedder.load(teacherFolder)
        let targets = try teacher.embed(
            Self.texts.map { teacher.tokenize($0).ids }, workspace: teacher.makeWorkspace(),
            pool: ComputePool(threads: 1))
        let student = try TrainableSentenceEncoder(directory: teacherFolder, layers: [0, 4, 5])
        #expect(student.bert.config.numHiddenLayers == 3)
        #expect(student.parameters.contains { $0.name == "encoder.layer.2.output.dense.weight" })
        #expect(!student.parameters.contains { $0.name.hasPrefix("encoder.layer.3.") })
        let objective = DistillationObjective(student, texts: Self.texts, targets: targets)
        let all = Array(Self.texts.indices)
        let before = objective.evaluate(all, maxLength: 128).metric
        var optimizer = AdamW(objective.parameters, learningRate: 1e-4)
        var generator = SeededGenerator(seed: 3)
        for _ in 0..<8 {
            for p in objective.parameters { p.zeroGrad() }
            objective.loss(all, maxLength: 128, generator: &generator).backward()
            optimizer.step()
        }
        let after = objective.evaluate(all, maxLength: 128).metric
        // Measured: 0.7637 before, 0.9850 after eight steps on these eight texts.
        #expect(after > before + 0.1, "mean cosine to the teacher: \(before) -> \(after)")

        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mass-student-\(UUID())")
        defer { try? FileManager.default.removeItem(at: out) }
        try student.save(to: out, copyingFrom: teacherFolder, metadata: ["mass.parent": teacherFolder.path])
        let config = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json")))
                as? [String: Any])
        #expect(config["num_hidden_layers"] as? Int == 3)
        let served = try SentenceEmbedder.load(out)
        let embedded = try served.embed(
            Self.texts.map { served.tokenize($0).ids }, workspace: served.makeWorkspace(),
            pool: ComputePool(threads: 1))
        let (ids, types, mask) = student.batch(Self.texts, maxLength: 128)
        let pooled = student.pooled(ids: ids, typeIds: types, mask: mask, generator: &generator).l2Normalized()
        let difference = Comparison.maxAbsDiff(pooled.value, embedded.flatMap { $0 })
        // Measured: 1.6e-7 (the same float32 sums in another order).
        #expect(difference < 1e-5, "served vs trained student embeddings: \(difference)")
    }

    /// The token term lines the teacher's ragged token states up with the student's padded batch: a "student"
    /// with all six layers has none of it (and a cosine of 1), one with three layers has some.
    @Test func tokenTermComparesEveryTokenState() throws {
        let teacherFolder = MiniLMFixture.modelDirectory
        let teacher = try SentenceEmbedder.load(teacherFolder)
        let workspace = teacher.makeWorkspace()
        let pool = ComputePool(threads: 1)
        let targets = try teacher.embed(
            Self.texts.map { teacher.tokenize($0).ids }, workspace: workspace, pool: pool)
        func states(_ sequences: [[Int32]]) throws -> [Float] {
            let pointer = try teacher.encoder.hiddenStates(sequences, typeIds: nil, workspace: workspace, pool: pool)
            return Array(UnsafeBufferPointer(start: pointer, count: sequences.reduce(0) { $0 + $1.count } * 384))
        }
        var tokenTerms: [Double] = []
        for layers in [nil, [0, 4, 5]] {
            let student = try TrainableSentenceEncoder(directory: teacherFolder, layers: layers)
            let objective = DistillationObjective(
                student, texts: Self.texts, targets: targets, tokenWeight: 1, teacherStates: states)
            let (loss, cosine) = objective.evaluate(Array(Self.texts.indices), maxLength: 128)
            tokenTerms.append(loss - (1 - cosine))
            if layers == nil { #expect(cosine > 0.99999, "\(cosine)") }
        }
        // Measured: 1.8e-13 for the teacher's own layers, 0.088 for three of them.
        #expect(abs(tokenTerms[0]) < 1e-6 && tokenTerms[1] > 0.05, "\(tokenTerms)")
    }

    @Test func refusesLayersTheTeacherDoesNotHave() throws {
        let teacher = MiniLMFixture.modelDirectory
        for layers in [[4, 2], [6], [], [-1, 0]] {
            #expect(throws: ModelError.self, "\(layers)") {
                try TrainableSentenceEncoder(directory: teacher, layers: layers)
            }
        }
        var settings = Distillation.Settings(layers: [3, 3])
        #expect(throws: TrainingError.self) { try settings.validate() }
        settings.layers = nil
        #expect(settings.studentLayers(teacherLayers: 6) == [0, 3, 5])
        #expect(settings.studentLayers(teacherLayers: 12) == [0, 2, 4, 7, 9, 11])
        #expect(settings.studentLayers(teacherLayers: 1) == [0])
    }
}
