import Foundation
import MassAutograd
import MassTensor
import MassTesting
import MassTraining
import MassWeights
import Testing

/// One training step of a small BERT classifier (the random-weight checkpoint of the text-head tests: 2 layers,
/// hidden 32, 4 heads) against PyTorch 2.13 on the same padded batch (goldens from
/// scripts/make-bert-step-goldens.py): logits, the label-smoothed cross-entropy, every parameter's gradient, and
/// every parameter after one AdamW step.
///
/// The attention key biases' gradient is exactly zero in theory (adding q·b to every score of a query row leaves
/// its softmax unchanged); both implementations give rounding noise (PyTorch's up to 3e-8 of the largest gradient,
/// Mass's up to 6e-8), so those two are held to being below 1e-6 of the largest gradient instead, and after the
/// step, moved by Adam along the noise's sign, to Adam's first-step bound (lr).
@Suite struct BertStepParityTests {
    struct Golden: Decodable {
        struct Settings: Decodable {
            let lr: Float
            let betas: [Float]
            let eps: Float
            let weight_decay: Float
            let label_smoothing: Float
        }
        let labels: [Int]
        let settings: Settings
        let parameters: [String]
        let ids: [[Int32]]
        let type_ids: [[Int32]]
        let attention_mask: [[Int]]
        let loss: Float
        let logits: [[Float]]
    }

    static let goldens = FixturePaths.packageRoot.appendingPathComponent("Tests/MassTrainingTests/Goldens")

    /// max |a − b| / max |b| over a tensor.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        let scale = b.map(abs).max() ?? 0
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        return scale == 0 ? worst : worst / scale
    }

    @Test func oneAdamWStepMatchesPyTorch() throws {
        let golden = try JSONDecoder().decode(
            Golden.self, from: Data(contentsOf: Self.goldens.appendingPathComponent("bert-step.json")))
        let model = try BertClassifier(directory: TextHeadFixture.classifierDirectory)
        #expect(model.parameters.map(\.name) == golden.parameters)
        var generator = SeededGenerator(seed: 1)
        let logits = model.logits(
            ids: golden.ids, typeIds: golden.type_ids, mask: golden.attention_mask.map { $0.map { $0 == 1 } },
            generator: &generator)
        #expect(Self.relativeError(logits.value, golden.logits.flatMap { $0 }) < 1e-5)
        let loss = Loss.crossEntropy(logits, labels: golden.labels, labelSmoothing: golden.settings.label_smoothing)
        #expect(abs(loss.scalar - golden.loss) < 1e-6 * golden.loss)
        loss.backward()

        let gradients = try SafeTensorsFile(
            path: Self.goldens.appendingPathComponent("bert-step-gradients.safetensors").path)
        let expectedGradients = try model.parameters.map { try gradients.tensor($0.name).toFloat32().array }
        let largest = expectedGradients.flatMap { $0 }.map(abs).max()!
        var noise = Set<String>()  // tensors whose true gradient is zero
        var worstGradient: (Float, String) = (0, "")
        for ((name, parameter), expected) in zip(model.parameters, expectedGradients) {
            let grad = parameter.grad ?? []
            if expected.map(abs).max()! < 1e-6 * largest {
                noise.insert(name)
                #expect(grad.map(abs).max()! < 1e-6 * largest, "\(name): a zero gradient's noise")
                continue
            }
            let error = Self.relativeError(grad, expected)
            if error > worstGradient.0 { worstGradient = (error, name) }
            #expect(error < 1e-4, "gradient of \(name): relative error \(error)")
        }
        print("largest relative gradient error: \(worstGradient)")
        #expect(
            noise == ["bert.encoder.layer.0.attention.self.key.bias", "bert.encoder.layer.1.attention.self.key.bias"])

        var optimizer = AdamW(
            model.parameters.map(\.variable), learningRate: golden.settings.lr,
            betas: (golden.settings.betas[0], golden.settings.betas[1]), eps: golden.settings.eps,
            weightDecay: golden.settings.weight_decay)
        optimizer.step()
        let after = try SafeTensorsFile(path: Self.goldens.appendingPathComponent("bert-step-after.safetensors").path)
        var worstWeight: (Float, String) = (0, "")
        for (name, parameter) in model.parameters {
            let expected = try after.tensor(name).toFloat32().array
            let error = zip(parameter.value, expected).map { abs($0 - $1) }.max() ?? 0
            if noise.contains(name) {
                #expect(error <= 2 * golden.settings.lr, "\(name) after the step: |difference| \(error)")
                continue
            }
            if error > worstWeight.0 { worstWeight = (error, name) }
            #expect(error < 1e-6, "\(name) after the step: |difference| \(error)")
        }
        print("largest weight difference after AdamW: \(worstWeight)")
    }
}
