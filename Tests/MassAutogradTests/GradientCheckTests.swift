import Foundation
import MassAutograd
import Testing

/// Every op's and loss's backward pass against central finite differences of its forward pass: the loss
/// Σ out ⊙ R (R fixed and random) is differentiated both ways with respect to every input element (a sample of
/// 48 per input for larger ones), with a step of 1e-2. The bound is 2e-3 absolute plus 1e-2 relative: a 10 %
/// error in GELU's derivative, or LayerNorm's backward without its x̂·Σ(dx̂·x̂) term, exceeds it (tried).
@Suite struct GradientCheckTests {
    static func random(_ shape: [Int], seed: UInt64, scale: Float = 1, requiresGrad: Bool = true) -> Variable {
        var generator = SeededGenerator(seed: seed)
        let values = (0..<shape.reduce(1, *)).map { _ in Float.random(in: -scale...scale, using: &generator) }
        return Variable(values, shape: shape, requiresGrad: requiresGrad)
    }

    /// Checks d(Σ f() ⊙ R)/d(input) for every input; returns the largest absolute error seen.
    @discardableResult
    static func check(
        _ inputs: [Variable], step: Float = 1e-2, sourceLocation: SourceLocation = #_sourceLocation,
        _ f: () -> Variable
    ) -> Float {
        let first = f()
        var generator = SeededGenerator(seed: 99)
        let weights = (0..<first.count).map { _ in Double.random(in: -1...1, using: &generator) }
        func objective() -> Double { zip(f().value, weights).reduce(0) { $0 + Double($1.0) * $1.1 } }
        for input in inputs { input.zeroGrad() }
        first.backward(seed: weights.map(Float.init))
        var worst: Float = 0
        for input in inputs {
            let analytic = input.grad ?? [Float](repeating: 0, count: input.count)
            var indices = Array(0..<input.count)
            if indices.count > 48 {
                indices.shuffle(using: &generator)
                indices = Array(indices.prefix(48))
            }
            for i in indices {
                let original = input.value[i]
                input.set(i, original + step)
                let plus = objective()
                input.set(i, original - step)
                let minus = objective()
                input.set(i, original)
                let numeric = Float((plus - minus) / (2 * Double(step)))
                let error = abs(numeric - analytic[i])
                worst = max(worst, error)
                #expect(
                    error <= 2e-3 + 1e-2 * abs(numeric), "element \(i) of \(input.shape): \(analytic[i]) vs \(numeric)",
                    sourceLocation: sourceLocation)
            }
        }
        return worst
    }

    @Test func linearAndMatmul() {
        let x = Self.random([5, 7], seed: 1)
        let w = Self.random([3, 7], seed: 2)
        let b = Self.random([3], seed: 3)
        Self.check([x, w, b]) { x.linear(w, b) }
        let x3 = Self.random([2, 3, 7], seed: 4)
        Self.check([x3, w]) { x3.linear(w) }
        let a = Self.random([4, 6], seed: 5)
        let at = Self.random([6, 4], seed: 6)
        let c = Self.random([6, 3], seed: 7)
        let ct = Self.random([3, 6], seed: 8)
        Self.check([a, c]) { a.matmul(c) }
        Self.check([a, ct]) { a.matmul(ct, transposeB: true) }
        Self.check([at, c]) { at.matmul(c, transposeA: true) }
        Self.check([at, ct]) { at.matmul(ct, transposeA: true, transposeB: true) }
    }

    @Test func elementwise() {
        let a = Self.random([4, 5], seed: 10)
        let b = Self.random([4, 5], seed: 11)
        let row = Self.random([5], seed: 12)
        Self.check([a, b]) { a + b }
        Self.check([a, row]) { a + row }
        Self.check([a, b]) { a - b }
        Self.check([a, b]) { a * b }
        Self.check([a]) { a.scaled(-2.5).reshaped([20]) }
        Self.check([a]) { a.gelu() }
        Self.check([a]) { a.tanh() }
        Self.check([a]) { a.sum() }
        Self.check([a]) { a.mean() }
        // Away from the kinks (|x| > 0.05 and not near 6).
        let spread = Variable(
            (0..<20).map { i in Float(i % 2 == 0 ? 1 : -1) * (0.1 + Float(i) * 0.37) }, shape: [4, 5],
            requiresGrad: true)
        Self.check([spread]) { spread.relu() }
        Self.check([spread]) { spread.relu6() }
        Self.check([a]) {
            var generator = SeededGenerator(seed: 5)
            return a.dropout(0.3, generator: &generator)
        }
    }

    @Test func normalizations() {
        let x = Self.random([3, 8], seed: 20, scale: 2)
        let gamma = Self.random([8], seed: 21)
        let beta = Self.random([8], seed: 22)
        Self.check([x, gamma, beta]) { x.layerNorm(gamma, beta, eps: 1e-5) }
        Self.check([x]) { x.softmax() }
        Self.check([x]) { x.l2Normalized() }
    }

    @Test func attentionWithMasksAndPooling() {
        // Two sequences of 4 tokens, 2 heads of width 3; the second sequence has one padding token.
        let q = Self.random([8, 6], seed: 30)
        let k = Self.random([8, 6], seed: 31)
        let v = Self.random([8, 6], seed: 32)
        let mask = [[true, true, true, true], [true, true, true, false]]
        Self.check([q, k, v]) { Variable.attention(q, k, v, heads: 2, mask: mask) }
        Self.check([q]) { q.meanPooled(mask: mask) }
        Self.check([q]) { q.firstTokens(batch: 2) }
    }

    @Test func embeddingGradientsSkipThePaddingRow() {
        let table = Self.random([6, 4], seed: 40)
        let ids: [Int32] = [3, 0, 3, 5, 1]
        Self.check([table]) { Variable.embedding(ids, table) }
        table.zeroGrad()
        Variable.embedding(ids, table, paddingIndex: 0).sum().backward()
        let grad = table.grad!
        #expect(grad[0..<4].allSatisfy { $0 == 0 })  // row 0: padding
        #expect(grad[12..<16].allSatisfy { $0 == 2 })  // row 3: picked twice
        #expect(grad[8..<12].allSatisfy { $0 == 0 })  // row 2: never picked
    }

    /// oneDNN's convolutions (forward, backward data, backward weights) and the im2col path compute the same
    /// values and gradients, on the ConvNet's layer shapes and on strided, unevenly padded ones; both pass the
    /// finite-difference check.
    @Test func convolutionBackendsAgree() {
        let cases: [(x: [Int], w: [Int], conv: Variable.Convolution)] = [
            ([4, 28, 28, 1], [32, 1, 3, 3], .init(stride: 1, padding: 1)),
            ([4, 14, 14, 32], [64, 32, 3, 3], .init(stride: 1, padding: 1)),
            ([3, 9, 7, 5], [6, 5, 3, 2], .init(stride: 2, padding: (top: 0, left: 1, bottom: 1, right: 0))),
        ]
        defer { ConvolutionBackend.selected = .oneDNN }
        for (index, c) in cases.enumerated() {
            var results: [[[Float]]] = []
            for backend in [ConvolutionBackend.im2col, .oneDNN] {
                ConvolutionBackend.selected = backend
                let x = Self.random(c.x, seed: 60 + UInt64(index))
                let w = Self.random(c.w, seed: 70 + UInt64(index), scale: 0.3)
                let b = Self.random([c.w[0]], seed: 80 + UInt64(index))
                let y = x.conv2d(w, b, c.conv)
                // A loss that weighs every output differently.
                let weights = Variable(
                    (0..<y.count).map { Float(($0 * 7) % 11) / 11 - 0.5 }, shape: y.shape)
                (y * weights).sum().backward()
                results.append([y.value, x.grad!, w.grad!, b.grad!])
                if index == 2 { Self.check([x, w, b]) { x.conv2d(w, b, c.conv) } }
            }
            for (part, name) in ["output", "input gradient", "weight gradient", "bias gradient"].enumerated() {
                let difference = zip(results[0][part], results[1][part]).map { abs($0 - $1) / max(1, abs($0)) }.max()!
                // Measured: at most 6.9e-6 (the weight gradient of the 32-channel layer: sums in another order).
                #expect(difference < 2e-5, "case \(index) \(name): \(difference)")
            }
        }
    }

    @Test func convolutionsAndPooling() {
        let x = Self.random([2, 5, 6, 4], seed: 50)
        let dense = Self.random([3, 4, 3, 3], seed: 51)
        let bias = Self.random([3], seed: 52)
        Self.check([x, dense, bias]) { x.conv2d(dense, bias, .init(stride: 2, padding: 1)) }
        let depthwise = Self.random([4, 1, 3, 3], seed: 53)
        Self.check([x, depthwise]) {
            x.conv2d(depthwise, nil, .init(stride: 1, padding: (top: 0, left: 1, bottom: 1, right: 1), groups: 4))
        }
        let grouped = Self.random([6, 2, 1, 1], seed: 54)
        Self.check([x, grouped]) { x.conv2d(grouped, nil, .init(groups: 2)) }
        // Distinct values at least 0.05 apart, so a step of 1e-2 never changes which one is largest.
        let distinct = Variable(
            (0..<(2 * 4 * 4 * 3)).map { Float(($0 * 37) % 96) * 0.05 }, shape: [2, 4, 4, 3], requiresGrad: true)
        Self.check([distinct]) { distinct.maxPooled(size: 2, stride: 2) }
        // Eleven channels: eight through the vector path, three through the scalar one.
        let wide = Variable(
            (0..<(2 * 4 * 4 * 11)).map { Float(($0 * 37) % 352) * 0.05 }, shape: [2, 4, 4, 11], requiresGrad: true)
        Self.check([wide]) { wide.maxPooled(size: 2, stride: 2) }
        let pooled = wide.maxPooled(size: 2, stride: 2)
        var naive: [Float] = []
        for b in 0..<2 {
            for oy in 0..<2 {
                for ox in 0..<2 {
                    for c in 0..<11 {
                        naive.append(
                            [(0, 0), (0, 1), (1, 0), (1, 1)].map {
                                wide.value[((b * 4 + oy * 2 + $0.0) * 4 + ox * 2 + $0.1) * 11 + c]
                            }.max()!)
                    }
                }
            }
        }
        #expect(pooled.value == naive)
        Self.check([x]) { x.globalAveragePooled() }
    }

    @Test func losses() {
        let logits = Self.random([4, 5], seed: 60, scale: 3)
        Self.check([logits]) { Loss.crossEntropy(logits, labels: [0, 4, 2, 2]) }
        Self.check([logits]) { Loss.crossEntropy(logits, labels: [1, 3, 0, 4], labelSmoothing: 0.1) }
        Self.check([logits]) {
            Loss.binaryCrossEntropy(logits, targets: (0..<20).map { Float($0 % 3) / 2 })
        }
        let target = Self.random([4, 5], seed: 61, requiresGrad: false)
        Self.check([logits]) { Loss.meanSquaredError(logits, target) }
        let other = Self.random([4, 5], seed: 62)
        Self.check([logits, other]) { Loss.cosine(logits, other) }
    }
}
