import Foundation
import MassAutograd
import MassRuntime
import MassTensor
import MassTesting
import Testing

/// Calibration maps on synthetic spaces whose true relation is known: a service whose vectors are a rotation
/// (or a semi-orthogonal embedding into more dimensions) of the local model's, plus noise.
@Suite struct CalibrationTests {
    func gaussian(_ rng: inout SeededGenerator) -> Double {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &rng)
        let v = Double.random(in: 0..<1, using: &rng)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }

    /// A random orthogonal n x n matrix: the eigenvectors of a random symmetric one.
    func orthogonal(_ n: Int, _ rng: inout SeededGenerator) throws -> [Double] {
        var s = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                let v = gaussian(&rng)
                s[i * n + j] = v
                s[j * n + i] = v
            }
        }
        return try LinearAlgebra.symmetricEigen(s, n: n).vectors
    }

    @Test func linearAlgebraRoundTrips() throws {
        var rng = SeededGenerator(seed: 1)
        let q = try orthogonal(6, &rng)
        // QᵀQ = I.
        let qtq = LinearAlgebra.transposeTimes(q, q, rows: 6, p: 6, q: 6)
        for i in 0..<6 { for j in 0..<6 { #expect(abs(qtq[i * 6 + j] - (i == j ? 1 : 0)) < 1e-9) } }
        // A positive definite system.
        let a: [Double] = [4, 1, 0, 1, 3, 1, 0, 1, 2]
        let x = try LinearAlgebra.solvePositiveDefinite(a, n: 3, [1, 2, 3, 4, 5, 6], columns: 2)
        let back = LinearAlgebra.times(a, x, n: 3, k: 3, m: 2)
        #expect(zip(back, [1.0, 2, 3, 4, 5, 6]).allSatisfy { abs($0 - $1) < 1e-9 })
        #expect(throws: TensorError.self) {
            _ = try LinearAlgebra.solvePositiveDefinite([1, 2, 2, 1], n: 2, [1, 1], columns: 1)
        }
    }

    func pairs(count: Int, local dx: Int, service dy: Int, noise: Double, seed: UInt64) throws -> (
        [[Float]], [[Float]], [String]
    ) {
        var rng = SeededGenerator(seed: seed)
        let q = try orthogonal(dy, &rng)  // the first dx rows: a semi-orthogonal dx x dy map
        var local: [[Float]] = []
        var service: [[Float]] = []
        for _ in 0..<count {
            let x = (0..<dx).map { _ in gaussian(&rng) }
            var y = [Double](repeating: 0, count: dy)
            for i in 0..<dx { for j in 0..<dy { y[j] += x[i] * q[i * dy + j] } }
            y = y.map { $0 + noise * gaussian(&rng) }
            local.append(x.map(Float.init))
            service.append(y.map(Float.init))
        }
        return (local, service, (0..<count).map { "text \($0)" })
    }

    @Test func procrustesRecoversARotation() throws {
        let (local, service, keys) = try pairs(count: 600, local: 16, service: 16, noise: 0.05, seed: 7)
        let (report, procrustes, affine) = try EmbeddingCalibration.calibrate(
            local: local, service: service, keys: keys)
        #expect(report.trainPairs + report.heldOutPairs == 600)
        #expect(report.heldOutPairs > 80 && report.heldOutPairs < 160)
        // Before: a rotated space; cosine near 0, neighbours found by chance only.
        #expect(abs(report.before.meanCosine ?? 1) < 0.2)
        #expect((report.before.recallAt10 ?? 1) < 0.3)
        // After: the rotation is undone; the re-embed's neighbours are the service's (the spaces are isometric).
        #expect((report.procrustes.meanCosine ?? 0) > 0.99)
        #expect((report.procrustes.recallAt10 ?? 0) > 0.85)
        #expect((report.affine.meanCosine ?? 0) > 0.99)
        #expect(report.reembedRecallAt10 > 0.85)
        #expect(procrustes.kind == "procrustes" && procrustes.bias == nil)
        #expect(affine.kind == "affine" && affine.bias?.count == 16)
        // Orthogonal: WᵀW = I.
        let w = procrustes.weight.map(Double.init)
        let wtw = LinearAlgebra.transposeTimes(w, w, rows: 16, p: 16, q: 16)
        for i in 0..<16 { #expect(abs(wtw[i * 16 + i] - 1) < 1e-4) }
    }

    @Test func mapsIntoAServiceOfAnotherDimension() throws {
        let (local, service, keys) = try pairs(count: 500, local: 12, service: 20, noise: 0.02, seed: 11)
        let (report, procrustes, _) = try EmbeddingCalibration.calibrate(local: local, service: service, keys: keys)
        #expect(report.before.meanCosine == nil && report.before.recallAt10 == nil)
        #expect(procrustes.inputDimension == 12 && procrustes.outputDimension == 20)
        #expect((report.procrustes.meanCosine ?? 0) > 0.99)
        #expect((report.affine.recallAt10 ?? 0) > 0.85)
    }

    @Test func temperatureAndVectorScalingRecoverTheServicesConfidence() throws {
        var rng = SeededGenerator(seed: 5)
        let local = (0..<400).map { _ in (0..<4).map { _ in Float(gaussian(&rng)) } }
        let keys = (0..<400).map { "input \($0)" }
        // A sharper service: logits x 2.5.
        let sharper = local.map { $0.map { $0 * 2.5 } }
        let (report, temperature, _) = try ClassificationCalibration.calibrate(
            local: local, service: sharper, keys: keys)
        #expect(abs(report.temperatureValue - 0.4) < 1e-3)
        #expect(report.before.agreement == 1 && report.temperature.agreement == 1)
        #expect(report.temperature.crossEntropy < report.before.crossEntropy)
        #expect(temperature.kind == "temperature" && abs(temperature.scale[0] - 2.5) < 0.01)
        // A service with per-label biases disagrees on some inputs; vector scaling learns the biases back.
        let biased = sharper.map { row in row.enumerated().map { $0.element + [1.5, 0, -1, 0.5][$0.offset] } }
        let (second, _, vector) = try ClassificationCalibration.calibrate(local: local, service: biased, keys: keys)
        #expect(second.before.agreement < 0.9)
        #expect(second.vectorScaling.agreement > 0.97)
        #expect(second.vectorScaling.crossEntropy < second.temperature.crossEntropy)
        #expect(zip(vector.scale, [2.5, 2.5, 2.5, 2.5]).allSatisfy { abs($0 - Float($1)) < 0.2 })
        // Relative biases (softmax ignores a common shift).
        let shift = vector.bias[1]
        #expect(zip(vector.bias.map { $0 - shift }, [1.5, 0, -1, 0.5]).allSatisfy { abs($0 - Float($1)) < 0.2 })
        // The adapter file round-trips, reordered for a model whose labels come in another order.
        let reordered = vector.reordered(from: ["a", "b", "c", "d"], to: ["d", "c", "b", "a"])
        #expect(reordered.scale == vector.scale.reversed() && reordered.bias == vector.bias.reversed())
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("logits-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try vector.encoded().write(to: url)
        #expect(try LogitAdapter.load(url, file: "adapter.safetensors") == vector)
    }

    @Test func adapterFileRoundTripsAndBadInputIsRefused() throws {
        let adapter = LinearAdapter(
            kind: "affine", inputDimension: 2, outputDimension: 3, weight: [1, 0, 0, 0, 1, 0], bias: [0, 0, 1])
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("adapter-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try adapter.encoded().write(to: url)
        let loaded = try LinearAdapter.load(url, file: "adapter.safetensors")
        #expect(loaded == adapter)
        let mapped = try loaded.apply([[3, 4]])
        let norm = Float(26).squareRoot()
        #expect(zip(mapped[0], [3 / norm, 4 / norm, 1 / norm]).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(throws: RuntimeError.self) { _ = try loaded.apply([[1, 2, 3]]) }
        try Data("not safetensors".utf8).write(to: url)
        #expect(throws: RuntimeError.self) { _ = try LinearAdapter.load(url, file: "adapter.safetensors") }
        #expect(throws: RuntimeError.self) {
            _ = try EmbeddingCalibration.calibrate(local: [[1]], service: [[1]], keys: ["a"])
        }
    }
}
