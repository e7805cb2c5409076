import Foundation
import MassAutograd
import Testing

/// The forward passes that are not MassTensor's tested kernels, against naive formulas written out here.
@Suite struct ForwardValueTests {
    @Test func convolutionMatchesTheDefinition() {
        let x = GradientCheckTests.random([1, 4, 5, 2], seed: 1, requiresGrad: false)
        let w = GradientCheckTests.random([4, 1, 3, 2], seed: 2, requiresGrad: false)
        let b = GradientCheckTests.random([4], seed: 3, requiresGrad: false)
        let conv = Variable.Convolution(stride: 2, padding: (top: 1, left: 0, bottom: 1, right: 1), groups: 2)
        let y = x.conv2d(w, b, conv)
        #expect(y.shape == [1, 2, 3, 4])
        var worst: Float = 0
        for oy in 0..<2 {
            for ox in 0..<3 {
                for co in 0..<4 {
                    let group = co / 2
                    var sum = b.value[co]
                    for ky in 0..<3 {
                        for kx in 0..<2 {
                            let (iy, ix) = (oy * 2 + ky - 1, ox * 2 + kx)
                            guard iy >= 0 && iy < 4 && ix >= 0 && ix < 5 else { continue }
                            sum += x.value[(iy * 5 + ix) * 2 + group] * w.value[(co * 3 + ky) * 2 + kx]
                        }
                    }
                    worst = max(worst, abs(sum - y.value[(oy * 3 + ox) * 4 + co]))
                }
            }
        }
        #expect(worst < 1e-5)
    }

    /// Several input channels per group: the weights' (channel, ky, kx) order against the patches'.
    @Test func denseConvolutionMatchesTheDefinition() {
        let (n, h, w, cin, cout) = (2, 4, 5, 3, 4)
        let x = GradientCheckTests.random([n, h, w, cin], seed: 7, requiresGrad: false)
        let weight = GradientCheckTests.random([cout, cin, 3, 2], seed: 8, requiresGrad: false)
        let y = x.conv2d(weight, nil, .init(stride: 1, padding: 1))
        let (oh, ow) = (h + 2 - 3 + 1, w + 2 - 2 + 1)
        #expect(y.shape == [n, oh, ow, cout])
        var worst: Float = 0
        for b in 0..<n {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    for co in 0..<cout {
                        var sum: Float = 0
                        for ci in 0..<cin {
                            for ky in 0..<3 {
                                for kx in 0..<2 {
                                    let (iy, ix) = (oy + ky - 1, ox + kx - 1)
                                    guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                                    sum +=
                                        x.value[((b * h + iy) * w + ix) * cin + ci]
                                        * weight.value[((co * cin + ci) * 3 + ky) * 2 + kx]
                                }
                            }
                        }
                        worst = max(worst, abs(sum - y.value[((b * oh + oy) * ow + ox) * cout + co]))
                    }
                }
            }
        }
        #expect(worst < 1e-5)
    }

    @Test func attentionMatchesTheDefinition() {
        let (length, heads, d) = (3, 2, 2)
        let q = GradientCheckTests.random([2 * length, heads * d], seed: 4, requiresGrad: false)
        let k = GradientCheckTests.random([2 * length, heads * d], seed: 5, requiresGrad: false)
        let v = GradientCheckTests.random([2 * length, heads * d], seed: 6, requiresGrad: false)
        let mask = [[true, true, true], [true, false, true]]
        let out = Variable.attention(q, k, v, heads: heads, mask: mask)
        var worst: Float = 0
        for b in 0..<2 {
            for h in 0..<heads {
                for i in 0..<length {
                    var scores = (0..<length).map { j -> Float in
                        guard mask[b][j] else { return -.infinity }
                        return (0..<d).reduce(0) {
                            $0 + q.value[(b * length + i) * 4 + h * d + $1] * k.value[(b * length + j) * 4 + h * d + $1]
                        } / Float(d).squareRoot()
                    }
                    let top = scores.max()!
                    scores = scores.map { Foundation.exp($0 - top) }
                    let total = scores.reduce(0, +)
                    for c in 0..<d {
                        let expected = (0..<length).reduce(Float(0)) {
                            $0 + scores[$1] / total * v.value[(b * length + $1) * 4 + h * d + c]
                        }
                        worst = max(worst, abs(expected - out.value[(b * length + i) * 4 + h * d + c]))
                    }
                }
            }
        }
        #expect(worst < 1e-5)
    }

    @Test func lossValues() {
        let logits = Variable([2, 0, -1, 0.5, 0.5, 3], shape: [2, 3])
        let lse0 = Foundation.log(Foundation.exp(2.0) + 1 + Foundation.exp(-1.0))
        let lse1 = Foundation.log(2 * Foundation.exp(0.5) + Foundation.exp(3.0))
        let nll = ((lse0 - 2) + (lse1 - 3)) / 2
        #expect(abs(Double(Loss.crossEntropy(logits, labels: [0, 2]).scalar) - nll) < 1e-6)
        // Smoothing 0.3 over 3 classes: 0.7·nll + 0.3·mean(−log p).
        let mean0 = (3 * lse0 - (2 + 0 - 1)) / 3
        let mean1 = (3 * lse1 - (0.5 + 0.5 + 3)) / 3
        let smoothed = 0.7 * nll + 0.3 * (mean0 + mean1) / 2
        #expect(abs(Double(Loss.crossEntropy(logits, labels: [0, 2], labelSmoothing: 0.3).scalar) - smoothed) < 1e-6)
        let bce = Loss.binaryCrossEntropy(Variable([0, 2], shape: [2]), targets: [1, 0]).scalar
        #expect(abs(Double(bce) - (Foundation.log(2.0) + Foundation.log(1 + Foundation.exp(2.0))) / 2) < 1e-6)
        let a = Variable([1, 0, 0, 1], shape: [2, 2])
        let b = Variable([1, 0, 1, 1], shape: [2, 2])
        #expect(abs(Loss.cosine(a, b).scalar - Float(1 - (1 + 1 / 2.0.squareRoot()) / 2)) < 1e-6)
        #expect(Loss.meanSquaredError(a, b).scalar == 0.25)
    }

    /// A trainable value and its graph: gradients accumulate over two backward passes until cleared, and values
    /// computed from inputs alone keep no graph.
    @Test func gradientsAccumulateAndFrozenGraphsAreNotKept() {
        let w = Variable([1, 2], shape: [2], requiresGrad: true)
        let x = Variable([3, 4], shape: [2])
        (w * x).sum().backward()
        (w * x).sum().backward()
        #expect(w.grad == [6, 8])
        w.zeroGrad()
        #expect(w.grad == nil)
        let frozen = (x * x).sum()
        #expect(!frozen.requiresGrad)
        frozen.backward()
        #expect(x.grad == nil)
    }
}
