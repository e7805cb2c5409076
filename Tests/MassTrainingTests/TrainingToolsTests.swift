import Dispatch
import Foundation
import MassAutograd
import MassModels
import MassTensor
import MassTesting
import MassTokenizers
import MassTraining
import MassWeights
import Synchronization
import Testing

/// The pieces a training loop is made of: deterministic order, the learning-rate schedule, gradient clipping,
/// early stopping, checkpoints that the inference code serves, and resuming an optimizer exactly.
@Suite struct TrainingToolsTests {
    @Test func shufflesAndSplitsRepeatExactly() {
        let order = Sampling.shuffled(100, seed: 7)
        #expect(order.sorted() == Array(0..<100))
        #expect(order == Sampling.shuffled(100, seed: 7))
        #expect(order != Sampling.shuffled(100, seed: 8))
        #expect(Array(order.prefix(5)) == [order[0], order[1], order[2], order[3], order[4]])
        let split = Sampling.split(100, validation: 0.15, test: 0.1, seed: 7)
        #expect(split.train.count == 75 && split.validation.count == 15 && split.test.count == 10)
        #expect(Set(split.train + split.validation + split.test) == Set(0..<100))
        // Another fold: the same test part, the next 15 shuffled examples as validation, the rest (fold 0's
        // validation among them) as train, in the shuffled order.
        let fold = Sampling.split(100, validation: 0.15, test: 0.1, seed: 7, fold: 2)
        #expect(fold.test == split.test && fold.validation == Array(order[40..<55]))
        #expect(
            fold.train == Array(order[10..<40] + order[55...])
                && Sampling.split(100, validation: 0.15, test: 0.1, seed: 7, fold: 0) == split)
        // Lengths 0..<1000 in batches of 8: every index once, and little padding in each batch.
        let lengths = (0..<1000).map { ($0 * 7919) % 1000 }
        let batches = Sampling.batchesByLength(Array(0..<1000), lengths: { lengths[$0] }, size: 8, seed: 3)
        #expect(batches.flatMap { $0 }.sorted() == Array(0..<1000))
        #expect(batches.count == 125)
        let spread = batches.map { b in b.map { lengths[$0] }.max()! - b.map { lengths[$0] }.min()! }
        #expect(spread.max()! < 100)  // random batches of 8 would spread about 780
        #expect(batches == Sampling.batchesByLength(Array(0..<1000), lengths: { lengths[$0] }, size: 8, seed: 3))
    }

    @Test func augmentedTextsAreCroppedRunsOfTheirWordsWithSomeLeftOut() throws {
        let texts = [
            "the quick brown fox jumps over the lazy dog", "one", "a story of two cities told twice",
            "  spaced   out\twords here  ",
        ]
        let augment = TextAugmentation(copies: 3, crop: 0.5, drop: 0.2)
        let variants = augment.variants(of: texts, seed: 7)
        #expect(variants == augment.variants(of: texts, seed: 7))
        #expect(variants != augment.variants(of: texts, seed: 8))
        // At most one variant per copy of each text of two words or more, none the text itself.
        #expect(!variants.isEmpty && variants.count <= 3 * 3)
        for variant in variants {
            let words = variant.split(separator: " ")
            #expect(!words.isEmpty && !variant.contains("  ") && !variant.contains("\t"))
            // Some text, not the variant itself, holds the variant's words in order.
            let source = try #require(
                texts.map { $0.split(whereSeparator: \.isWhitespace) }.first { original in
                    var next = original.startIndex
                    for word in words {
                        guard let found = original[next...].firstIndex(of: word) else { return false }
                        next = found + 1
                    }
                    return words.joined(separator: " ") != original.joined(separator: " ")
                }, "\(variant)")
            #expect(source.count > 1)
        }
        // Without dropping, a variant is a contiguous run of at least half the words.
        for variant in TextAugmentation(copies: 5, crop: 0.5, drop: 0).variants(of: [texts[0]], seed: 1) {
            #expect(texts[0].contains(variant) && variant.split(separator: " ").count >= 5, "\(variant)")
        }
        // Cropping nothing and dropping every word but one: single words of the text.
        for variant in TextAugmentation(copies: 2, crop: 1, drop: 0.99).variants(of: [texts[2]], seed: 3) {
            #expect(texts[2].split(separator: " ").contains(Substring(variant)), "\(variant)")
        }
        func refusal(_ augment: TextAugmentation) -> String {
            do {
                try augment.validate()
                return "accepted"
            } catch { return "\(error)" }
        }
        #expect(refusal(TextAugmentation(copies: 0)) == "'augment.copies' must be from 1 to 10")
        #expect(refusal(TextAugmentation(crop: 0)) == "'augment.crop' must be above 0 and at most 1")
        #expect(refusal(TextAugmentation(drop: 1)) == "'augment.drop' must be from 0 to below 1")
        #expect(refusal(TextAugmentation(crop: 1, drop: 0)).contains("would only repeat the texts"))
        #expect(refusal(TextAugmentation()) == "accepted")
    }

    @Test func scheduleWarmsUpAndDecays() {
        let linear = LearningRateSchedule(peak: 1, warmupSteps: 10, totalSteps: 110, decay: .linear)
        #expect(linear.rate(at: 0) == 0 && linear.rate(at: 5) == 0.5 && linear.rate(at: 10) == 1)
        #expect(abs(linear.rate(at: 60) - 0.5) < 1e-6 && linear.rate(at: 110) == 0 && linear.rate(at: 200) == 0)
        let cosine = LearningRateSchedule(peak: 2, warmupSteps: 0, totalSteps: 100, decay: .cosine)
        #expect(cosine.rate(at: 0) == 2 && abs(cosine.rate(at: 50) - 1) < 1e-6 && abs(cosine.rate(at: 100)) < 1e-6)
        #expect(LearningRateSchedule(peak: 3, warmupSteps: 2, totalSteps: 5, decay: .constant).rate(at: 4) == 3)
    }

    @Test func clipsTheJointGradientNorm() {
        let a = Variable([0, 0], shape: [2], requiresGrad: true)
        let b = Variable([0], shape: [1], requiresGrad: true)
        a.grad = [3, 0]
        b.grad = [4]
        #expect(clipGradientNorm([a, b], maxNorm: 1) == 5)
        #expect(abs(a.grad![0] - 0.6) < 1e-6 && abs(b.grad![0] - 0.8) < 1e-6)
        #expect(abs(clipGradientNorm([a, b], maxNorm: 10) - 1) < 1e-5)
        #expect(abs(a.grad![0] - 0.6) < 1e-6)  // under the bound: unchanged
        b.grad = [.nan]
        #expect(clipGradientNorm([a, b], maxNorm: 1).isNaN)
    }

    @Test func earlyStoppingWaitsForPatience() {
        var stopping = EarlyStopping(patience: 2, minDelta: 0.01)
        var improved: [Bool] = []
        var stop: [Bool] = []
        for metric in [0.50, 0.60, 0.605, 0.55] {  // 0.605 is within minDelta: no improvement
            improved.append(stopping.record(metric))
            stop.append(stopping.shouldStop)
        }
        #expect(improved == [true, true, false, false] && stop == [false, false, false, true])
        #expect(stopping.best == 0.60 && stopping.bestEvaluation == 1)
        var loss = EarlyStopping(patience: 1, higherIsBetter: false)
        let lossImproved = [2, 1, 1.5].map { loss.record($0) }
        #expect(lossImproved == [true, true, false] && loss.shouldStop)
        // An accuracy that saturates: the same accuracy with a lower validation loss is the better model, a
        // lower accuracy is not, however low its loss.
        var saturated = EarlyStopping(patience: 2)
        let tied = [(1.0, 0.29), (1.0, 0.016), (0.9, 0.001), (1.0, 0.02), (1.0, 0.009)].map {
            saturated.record($0.0, tieBreak: $0.1)
        }
        #expect(tied == [true, true, false, false, true] && saturated.bestEvaluation == 4)
        #expect(saturated.best == 1.0 && saturated.bestTieBreak == 0.009 && !saturated.shouldStop)
    }

    /// The crossed accuracy: the epoch picked on one half of the validation part, scored on the other.
    @Test func crossedAccuracyPicksTheEpochOnTheOtherHalf() throws {
        // Positions 0, 2, 4 are the even half, 1, 3 the odd one.
        #expect(ValidationHalves.accuracies([true, false, true, true, false]) == [2.0 / 3, 0.5])
        #expect(ValidationHalves.accuracies([true]) == nil)
        // A run whose accuracy swings: epoch 2 is best on the even half (0.9) but 0.5 on the odd one; the odd half
        // picks epoch 3 (0.8), 0.7 on the even half. Crossed: (0.5 + 0.7) / 2, below the best epoch's 0.7.
        let swinging = [[0.6, 0.6], [0.9, 0.5], [0.7, 0.8]]
        #expect(abs(try #require(ValidationHalves.crossed(swinging)) - 0.6) < 1e-12)
        // Ties on the picking half average the other half's accuracy over the tied epochs: the even half ties
        // epochs 1 and 2 (0.8) for (0.6 + 0.7) / 2; the odd half picks epoch 3 (0.9), 0.5 on the even half.
        let tied = [[0.8, 0.6], [0.8, 0.7], [0.5, 0.9]]
        #expect(abs(try #require(ValidationHalves.crossed(tied)) - (0.65 + 0.5) / 2) < 1e-12)
        // A steady run loses nothing.
        #expect(ValidationHalves.crossed([[0.7, 0.7], [0.75, 0.75]]) == 0.75)
        #expect(ValidationHalves.crossed([]) == nil && ValidationHalves.crossed([[0.5]]) == nil)
    }

    /// Writers racing for one file (a study's trials filling a shared cache) all succeed, and the file is one
    /// writer's data whole, with no temporary file left behind.
    @Test func atomicWritesRaceForOneFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("embeddings.safetensors")
        let failures = Mutex([String]())
        DispatchQueue.concurrentPerform(iterations: 64) { writer in
            do {
                try Checkpoint.writeAtomically(Data(repeating: UInt8(writer), count: 200_000), to: target)
            } catch { failures.withLock { $0.append("\(error)") } }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let written = try Data(contentsOf: target)
        #expect(written.count == 200_000 && Set(written).count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["embeddings.safetensors"])
    }

    /// A few AdamW steps on four labelled texts, saved, then loaded by the inference classifier: it gives the
    /// trained model's logits; the loss fell and every text is classified as labelled.
    @Test func trainedModelIsServedByTheInferenceCode() throws {
        let source = TextHeadFixture.classifierDirectory
        let model = try BertClassifier(directory: source)
        let inference = try SequenceClassifier(directory: source, encoder: BertModel.encoder)
        let texts = [
            "I loved every minute of this concert.", "The service was slow and the food was cold.",
            "Hello world", "How do I reset my password?",
        ]
        let labels = [2, 0, 1, 1]
        let encodings = try texts.map { try inference.encode($0) }
        let length = encodings.map(\.ids.count).max()!
        let ids = encodings.map { $0.ids + [Int32](repeating: 0, count: length - $0.ids.count) }
        let types = encodings.map { $0.typeIds + [Int32](repeating: 0, count: length - $0.typeIds.count) }
        let mask = encodings.map { e in (0..<length).map { $0 < e.ids.count } }
        var optimizer = AdamW(model.parameters.map(\.variable), learningRate: 3e-3)
        var generator = SeededGenerator(seed: 1)
        var losses: [Float] = []
        for _ in 0..<30 {
            let loss = Loss.crossEntropy(
                model.logits(ids: ids, typeIds: types, mask: mask, generator: &generator), labels: labels)
            losses.append(loss.scalar)
            for p in model.parameters { p.variable.zeroGrad() }
            loss.backward()
            optimizer.step()
        }
        #expect(losses.last! < 0.2 * losses.first!, "loss \(losses.first!) → \(losses.last!)")
        let trained = model.logits(ids: ids, typeIds: types, mask: mask, generator: &generator)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mass-trained-\(UUID())")
        defer { try? FileManager.default.removeItem(at: out) }
        try model.save(to: out, copyingFrom: source, metadata: ["mass.steps": "30"])
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("tokenizer.json").path))
        let served = try SequenceClassifier(directory: out, encoder: BertModel.encoder)
        let logits = try served.logits(encodings, workspace: EncoderWorkspace(), pool: ComputePool(threads: 1))
        for (i, row) in logits.enumerated() {
            let expected = Array(trained.value[(i * 3)..<((i + 1) * 3)])
            #expect(Comparison.maxAbsDiff(row, expected) < 1e-4, "\(texts[i])")
            #expect(row.firstIndex(of: row.max()!) == labels[i], "\(texts[i]) → \(row)")
        }
        #expect(
            try SafeTensorsFile(path: out.appendingPathComponent("model.safetensors").path).metadata["mass.steps"]
                == "30")
    }

    /// Two AdamW steps in one go equal one step, a save and restore of the state into a fresh optimizer over
    /// reloaded weights, and the second step.
    @Test func optimizerStateResumesExactly() throws {
        func gradients(_ p: Variable, _ step: Int) { p.grad = p.value.indices.map { Float(($0 + step) % 5) - 2 } }
        let a = Variable([1, 2, 3, 4], shape: [2, 2], requiresGrad: true)
        var straight = AdamW([a], learningRate: 0.1)
        for step in 0..<2 {
            gradients(a, step)
            straight.step()
        }
        let b = Variable([1, 2, 3, 4], shape: [2, 2], requiresGrad: true)
        var first = AdamW([b], learningRate: 0.1)
        gradients(b, 0)
        first.step()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("adam-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try first.state().write(to: url)
        let c = Variable(b.value, shape: [2, 2], requiresGrad: true)
        var resumed = AdamW([c], learningRate: 0.1)
        try resumed.restore(SafeTensorsFile(path: url.path))
        #expect(resumed.steps == 1)
        gradients(c, 1)
        resumed.step()
        #expect(c.value == a.value)
        var wrong = AdamW([Variable([1], shape: [1], requiresGrad: true)], learningRate: 0.1)
        do {
            try wrong.restore(SafeTensorsFile(path: url.path))
            Issue.record("a state for other parameters was restored")
        } catch let error as TrainingError {
            #expect(error.code == .badState && error.message.contains("has shape [2, 2], the parameter [1]"))
        }
    }
}
