import MassAutograd
import MassTraining
import Testing

/// SGD's momentum, Nesterov and weight-decay rules on values worked out by hand from PyTorch's documented update,
/// and AdamW's second step (bias correction at t = 2) and its skipping of parameters without a gradient.
@Suite struct OptimizerTests {
    /// Two steps with a constant gradient of 0.5 from p = 1, lr 0.1.
    func twoSteps(momentum: Float, nesterov: Bool = false, weightDecay: Float = 0) -> [Float] {
        let p = Variable([1], shape: [1], requiresGrad: true)
        var sgd = SGD([p], learningRate: 0.1, momentum: momentum, weightDecay: weightDecay, nesterov: nesterov)
        var trace: [Float] = []
        for _ in 0..<2 {
            p.grad = [0.5]
            sgd.step()
            trace.append(p.value[0])
        }
        return trace
    }

    @Test func sgdFollowsPyTorchsRules() {
        func close(_ a: [Float], _ b: [Float]) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) < 1e-6 } }
        #expect(close(twoSteps(momentum: 0), [0.95, 0.9]))
        // b1 = 0.5, p = 0.95; b2 = 0.9·0.5 + 0.5 = 0.95, p = 0.855.
        #expect(close(twoSteps(momentum: 0.9), [0.95, 0.855]))
        // Nesterov: d = g + μ·b: 0.95 then 0.5 + 0.9·0.95 = 1.355.
        #expect(close(twoSteps(momentum: 0.9, nesterov: true), [0.905, 0.7695]))
        // Weight decay 0.1: d1 = 0.5 + 0.1 = 0.6 → 0.94; d2 = 0.5 + 0.094 = 0.594, b2 = 0.54 + 0.594 = 1.134 → 0.8266.
        #expect(close(twoSteps(momentum: 0.9, weightDecay: 0.1), [0.94, 0.8266]))
    }

    @Test func adamWSecondStepAndParametersWithoutGradients() {
        let p = Variable([1], shape: [1], requiresGrad: true)
        let untouched = Variable([3], shape: [1], requiresGrad: true)
        var adam = AdamW([p, untouched], learningRate: 0.1, weightDecay: 0.5)
        p.grad = [0.5]
        adam.step()
        // m = 0.05, v = 0.00025; corrected 0.5 and 0.25: p = 1·(1 − 0.05) − 0.1·0.5/(0.5 + 1e-8).
        #expect(abs(p.value[0] - (0.95 - 0.1 * 0.5 / (0.5 + 1e-8))) < 1e-6)
        p.grad = [-1]
        adam.step()
        // m = 0.9·0.05 − 0.1 = −0.055, v = 0.999·0.00025 + 0.001 = 0.00124975;
        // p ← p·0.95 − 0.1 / (1 − 0.81) · m / (√v / √(1 − 0.998001) + 1e-8).
        let m: Float = -0.055
        let v: Float = 0.001_249_75
        let denominator: Float = v.squareRoot() / Float(0.001_999).squareRoot() + 1e-8
        let stepSize: Float = 0.1 / 0.19
        let expected: Float = 0.85 * 0.95 - stepSize * m / denominator
        #expect(abs(p.value[0] - expected) < 1e-5)
        #expect(untouched.value == [3])
        #expect(adam.steps == 2)
    }
}
