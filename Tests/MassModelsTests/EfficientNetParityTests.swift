import Foundation
import MassModels
import MassTensor
import MassTesting
import MassWeights
import Testing

/// EfficientNet-Lite0 against the reference logits (fixtures/README.md gates: model only, max |diff| <= 1e-3 and
/// the same top-5 order).
@Suite struct EfficientNetParityTests {
    static let model: EfficientNetLite? = try? EfficientNetLite(
        weights: PyTorchCheckpoint(path: EfficientNetFixture.checkpoint.path))

    func top(_ logits: [Float], _ k: Int) -> [Int] {
        Array(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(k))
    }

    @Test(arguments: [1, 2]) func recordedInputTensorGivesTheGoldenLogits(threads: Int) throws {
        let model = try #require(Self.model)
        let chelsea = try #require(try EfficientNetFixture.load().images.first { $0.id == "chelsea" })
        let input = try FixturePaths.readFloats(EfficientNetFixture.url("chelsea.input.f32"))
        #expect(input.count == 3 * 224 * 224)
        let logits = input.withUnsafeBufferPointer {
            model.logits(
                $0.baseAddress!, batch: 1, workspace: EfficientNetWorkspace(), pool: ComputePool(threads: threads))
        }[0]
        let diff = Comparison.maxAbsDiff(logits, chelsea.logits)
        #expect(diff <= 1e-3, "max |diff| \(diff)")
        #expect(top(logits, 5) == chelsea.top5.map(\.index))
    }
}
