import Foundation
import MassImage
import MassModels
import MassTensor
import MassTesting
import MassWeights
import Testing

/// EfficientNet-Lite0 against the reference (fixtures/README.md gates): model only, max |diff| <= 1e-3 and the
/// same top-5 order; end to end from the file, max |diff| <= 0.25 and the stated top-1.
@Suite struct EfficientNetParityTests {
    static let classifier: ImageClassifier? = try? ImageClassifier(directory: EfficientNetFixture.modelDirectory)

    func top(_ logits: [Float], _ k: Int) -> [Int] {
        Array(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(k))
    }

    func logits(
        _ inputs: [Float], batch: Int, threads: Int, classifier: ImageClassifier? = Self.classifier
    ) throws -> [[Float]] {
        let classifier = try #require(classifier)
        return inputs.withUnsafeBufferPointer {
            classifier.logits(
                $0.baseAddress!, batch: batch, workspace: EfficientNetWorkspace(), pool: ComputePool(threads: threads))
        }
    }

    func prepared(_ image: RGBImage) throws -> [Float] {
        let classifier = try #require(Self.classifier)
        var input = [Float](repeating: 0, count: classifier.inputSize)
        input.withUnsafeMutableBufferPointer { classifier.prepare(image, into: $0.baseAddress!) }
        return input
    }

    @Test(arguments: [1, 2]) func recordedInputTensorGivesTheGoldenLogits(threads: Int) throws {
        let chelsea = try #require(try EfficientNetFixture.load().images.first { $0.id == "chelsea" })
        let input = try FixturePaths.readFloats(EfficientNetFixture.url("chelsea.input.f32"))
        let out = try logits(input, batch: 1, threads: threads)[0]
        #expect(Comparison.maxAbsDiff(out, chelsea.logits) <= 1e-3)
        #expect(top(out, 5) == chelsea.top5.map(\.index))
    }

    /// oneDNN's 49 convolutions (JIT kernels, never its reference code) and Mass's own give the same logits.
    @Test func oneDNNAndMassKernelsAgree() throws {
        let checkpoint = try PyTorchCheckpoint(path: EfficientNetFixture.checkpoint.path)
        let own = try EfficientNetLite(weights: checkpoint, onednn: false)
        let onednn = try EfficientNetLite(weights: checkpoint, onednn: true)
        let implementations = try #require(try onednn.onednnImplementations())
        #expect(implementations.count == 49 && !implementations.contains { $0.hasPrefix("ref") }, "\(implementations)")
        #expect(try own.onednnImplementations() == nil)
        let input = try FixturePaths.readFloats(EfficientNetFixture.url("chelsea.input.f32"))
        let batch = input + input + input
        let pool = ComputePool(threads: 2)
        let a = batch.withUnsafeBufferPointer {
            own.logits($0.baseAddress!, batch: 3, workspace: EfficientNetWorkspace(), pool: pool)
        }
        let b = batch.withUnsafeBufferPointer {
            onednn.logits($0.baseAddress!, batch: 3, workspace: EfficientNetWorkspace(), pool: pool)
        }
        for (x, y) in zip(a, b) { #expect(Comparison.maxAbsDiff(x, y) <= 1e-4) }
    }

    /// Each recorded 224×224 crop, normalised, through the model; all four as one batch must equal one by one.
    @Test func recordedCropsGiveTheGoldenLogitsBatchedOrNot() throws {
        let classifier = try #require(Self.classifier)
        let images = try EfficientNetFixture.load().images
        var batch: [Float] = []
        var single: [[Float]] = []
        for image in images {
            let crop = try ImageDecoder.decode(Array(Data(contentsOf: EfficientNetFixture.url(image.crop224_file))))
            var input = [Float](repeating: 0, count: classifier.inputSize)
            input.withUnsafeMutableBufferPointer { classifier.preprocessing.normalize(crop, into: $0.baseAddress!) }
            let out = try logits(input, batch: 1, threads: 2)[0]
            let diff = Comparison.maxAbsDiff(out, image.logits)
            #expect(diff <= 1e-3, "\(image.id): max |diff| \(diff)")
            #expect(top(out, 5) == image.top5.map(\.index), "\(image.id)")
            let probabilities = classifier.top(out, k: 5)
            for (p, golden) in zip(probabilities, image.top5) {
                #expect(abs(Double(p.score) - golden.prob) <= 1e-4 + 1e-6, "\(image.id) \(p.label)")
            }
            batch += input
            single.append(out)
        }
        let batched = try logits(batch, batch: images.count, threads: 2)
        for (b, s) in zip(batched, single) { #expect(Comparison.maxAbsDiff(b, s) <= 1e-5) }
    }

    /// From the image files with Mass's own decode and resize.
    @Test func endToEndFromTheFiles() throws {
        let classifier = try #require(Self.classifier)
        for image in try EfficientNetFixture.load().images {
            let decoded = try ImageDecoder.decode(Array(Data(contentsOf: EfficientNetFixture.url(image.file))))
            let out = try logits(try prepared(decoded), batch: 1, threads: 2)[0]
            let diff = Comparison.maxAbsDiff(out, image.logits)
            #expect(diff <= 0.25, "\(image.id): max |diff| \(diff)")
            let best = top(out, 1)[0]
            if image.id == "coffee" || image.id == "rocket" {
                #expect(best == image.top5[0].index, "\(image.id): top-1 \(classifier.labels[best])")
            } else {
                #expect(
                    image.top5.prefix(2).map(\.index).contains(best), "\(image.id): top-1 \(classifier.labels[best])")
            }
        }
    }

    /// Files given encoded are decoded and prepared by the lane that runs them: the logits equal those of inputs
    /// prepared beforehand, on oneDNN and on Mass's kernels, one image or a batch on one or two threads; a file
    /// that cannot be read is reported in its place and the others still classified. (Mass's kernels, slow in
    /// debug builds, run two of the images.)
    @Test(arguments: [true, false]) func encodedFilesGiveTheLogitsOfTheirPreparedInputs(onednn: Bool) throws {
        let classifier = try ImageClassifier(directory: EfficientNetFixture.modelDirectory, onednn: onednn)
        let names = try EfficientNetFixture.load().images.map(\.file).filter { onednn || $0.hasSuffix(".jpg") }
        var files = try names.map { Array(try Data(contentsOf: EfficientNetFixture.url($0))) }
        files.insert(Array(files.last!.prefix(5000)), at: files.count - 1)  // a truncated JPEG
        var expected: [[Float]?] = []
        for file in files {
            var input = [Float](repeating: 0, count: classifier.inputSize)
            let ok = input.withUnsafeMutableBufferPointer { buffer in
                (try? classifier.prepare(encoded: file, into: buffer.baseAddress!)) != nil
            }
            expected.append(
                ok ? try logits(input, batch: 1, threads: 1, classifier: classifier)[0] : nil)
        }
        #expect(expected.map { $0 == nil } == (onednn ? [false, false, false, true, false] : [true, false]))
        for threads in onednn ? [1, 2] : [2] {
            for batch in [1, files.count] {
                var results: [Result<[Float], ImageError>] = []
                for start in stride(from: 0, to: files.count, by: batch) {
                    results += classifier.logits(
                        encoded: Array(files[start..<min(files.count, start + batch)]),
                        workspace: EfficientNetWorkspace(), pool: ComputePool(threads: threads))
                }
                for (result, want) in zip(results, expected) {
                    switch (result, want) {
                    case (.success(let got), let want?):
                        #expect(Comparison.maxAbsDiff(got, want) <= 1e-5, "threads \(threads), batch \(batch)")
                    case (.failure(let error), nil):
                        #expect(error.code == .corrupt, "\(error)")
                    default:
                        Issue.record("threads \(threads), batch \(batch): \(result) where \(String(describing: want))")
                    }
                }
            }
        }
    }

    @Test func brokenModelFoldersNameTheProblem() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mass-effnet-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let missing = caught(ModelError.self) { _ = try ImageClassifier(directory: dir) }
        #expect(missing?.code == .missingFile && missing!.message.contains("no PyTorch checkpoint"))
        try FileManager.default.createSymbolicLink(
            at: dir.appendingPathComponent("model.pth"), withDestinationURL: EfficientNetFixture.checkpoint)
        let noLabels = caught(ModelError.self) { _ = try ImageClassifier(directory: dir) }
        #expect(noLabels?.code == .missingFile && noLabels!.message.contains("labels.txt"))
        try Data("a\nb\n".utf8).write(to: dir.appendingPathComponent("labels.txt"))
        let fewLabels = caught(ModelError.self) { _ = try ImageClassifier(directory: dir) }
        #expect(fewLabels!.message.contains("has 2 labels but the model has 1000 classes"))
    }
}
