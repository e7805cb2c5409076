import Foundation
import MassModels
import MassTensor
import MassTesting
import Testing

/// EfficientNet-Lite1 (240x240) and Lite2 (260x260), the same architecture file as Lite0 with the blocks read from
/// the checkpoint and the input side from the folder's preprocessing.json (`scripts/fetch-models.sh models-extra
/// extra`), against the reference PyTorch implementation's logits (scripts/make-effnet-lite-goldens.py): end to
/// end from the image files, on oneDNN and on Mass's own kernels.
@Suite(.serialized) struct EfficientNetLiteVariantsTests {
    struct Golden: Decodable {
        struct Image: Decodable {
            let top5: [Int]
            let logits: [Float]
        }
        struct Model: Decodable {
            let crop: Int
            let images: [String: Image]
        }
        let models: [String: Model]
    }

    @Test(arguments: ["efficientnet-lite1", "efficientnet-lite2"], [true, false])
    func logitsMatchTheReference(model name: String, onednn: Bool) throws {
        let golden = try JSONDecoder().decode(
            Golden.self,
            from: Data(
                contentsOf: FixturePaths.packageRoot.appendingPathComponent(
                    "Tests/MassModelsTests/Goldens/efficientnet-lite12.json")))
        let model = try #require(golden.models[name])
        let classifier = try ImageClassifier(
            directory: FixturePaths.extraModels.appendingPathComponent("\(name)/1"), onednn: onednn)
        #expect(classifier.inputSide == model.crop)
        let files = model.images.keys.sorted()
        let results = classifier.logits(
            encoded: try files.map { Array(try Data(contentsOf: EfficientNetFixture.url($0))) },
            workspace: EfficientNetWorkspace(), pool: ComputePool(threads: 2))
        var worst: Float = 0
        for (file, result) in zip(files, results) {
            let logits = try result.get()
            let expected = model.images[file]!
            #expect(classifier.top(logits, k: 5).map(\.index) == expected.top5, "\(name) \(file)")
            let diff = Comparison.maxAbsDiff(logits, expected.logits)
            worst = max(worst, diff)
            #expect(diff <= 5e-5, "\(name) \(file): max |diff| \(diff)")  // measured at most 1.2e-5
        }
        print("\(name) onednn \(onednn): largest |logit diff| \(worst)")
    }
}
