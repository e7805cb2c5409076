import Foundation
import MassTensor
import MassWeights

/// A per-label affine map of a classifier's logits, `z' = scale ⊙ z + bias`: temperature scaling (one scale,
/// no bias) or vector scaling (Platt scaling per label). Stored as `adapter.safetensors` with `scale` and `bias`
/// [labels] in the model's label order and its kind in the metadata.
public struct LogitAdapter: Sendable, Equatable {
    /// "temperature" or "vector_scaling".
    public let kind: String
    public let scale: [Float]
    public let bias: [Float]

    public init(kind: String, scale: [Float], bias: [Float]) {
        precondition(scale.count == bias.count)
        self.kind = kind
        self.scale = scale
        self.bias = bias
    }

    public func apply(_ logits: [[Float]]) throws -> [[Float]] {
        try logits.map { row in
            guard row.count == scale.count else {
                throw RuntimeError(
                    .modelFailed, "the adapter maps \(scale.count) labels; the model gave \(row.count)")
            }
            return row.indices.map { scale[$0] * row[$0] + bias[$0] }
        }
    }

    /// The same map for a model whose labels are in another order (`from` is this adapter's order).
    public func reordered(from: [String], to: [String]) -> LogitAdapter {
        let position = Dictionary(from.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        return LogitAdapter(
            kind: kind, scale: to.map { scale[position[$0]!] }, bias: to.map { bias[position[$0]!] })
    }

    public func encoded() -> Data {
        SafeTensorsWriter.encode(
            [("scale", [scale.count], scale), ("bias", [bias.count], bias)], metadata: ["kind": kind])
    }

    public static func load(_ url: URL, file: String) throws -> LogitAdapter {
        let weights: SafeTensorsFile
        do {
            weights = try SafeTensorsFile(path: url.path)
        } catch {
            throw RuntimeError(.badConfig, "\(file): not a readable safetensors file (\(error))")
        }
        guard let scale = weights.entries["scale"], let bias = weights.entries["bias"], scale.shape.count == 1,
            bias.shape == scale.shape
        else { throw RuntimeError(.badConfig, "\(file): needs 1-D tensors 'scale' and 'bias' of one length") }
        return LogitAdapter(
            kind: weights.metadata["kind"] ?? "vector_scaling", scale: try weights.tensor("scale").toFloat32().array,
            bias: try weights.tensor("bias").toFloat32().array)
    }
}

/// Fits what makes a local classifier's probabilities agree with a service's (Guo et al. 2017): temperature
/// scaling and vector scaling against the service's probabilities, judged on held-out pairs by agreement (the
/// same top label as the service), expected calibration error against the service's labels, and cross-entropy
/// to the service's probabilities.
public enum ClassificationCalibration {
    public struct Evaluation: Codable, Sendable, Equatable {
        public var agreement: Double
        /// Expected calibration error (15 equal-width confidence bins) with the service's labels as the truth.
        public var ece: Double
        /// Mean cross-entropy from the service's probabilities to the local model's.
        public var crossEntropy: Double

        enum CodingKeys: String, CodingKey {
            case agreement, ece
            case crossEntropy = "cross_entropy"
        }
    }

    public struct Report: Codable, Sendable, Equatable {
        public var trainPairs: Int
        public var heldOutPairs: Int
        public var labels: Int
        public var temperatureValue: Double
        public var before: Evaluation
        public var temperature: Evaluation
        public var vectorScaling: Evaluation

        enum CodingKeys: String, CodingKey {
            case trainPairs = "train_pairs"
            case heldOutPairs = "held_out_pairs"
            case labels
            case temperatureValue = "temperature_value"
            case before, temperature
            case vectorScaling = "vector_scaling"
        }
    }

    public static func calibrate(
        local: [[Float]], service: [[Float]], keys: [String], heldOut fraction: Double = 0.2
    ) throws -> (report: Report, temperature: LogitAdapter, vectorScaling: LogitAdapter) {
        guard local.count == service.count, local.count == keys.count, let k = local.first?.count, k >= 2,
            local.allSatisfy({ $0.count == k }), service.allSatisfy({ $0.count == k })
        else { throw RuntimeError(.invalidInput, "pairs must have logits over the same labels (at least 2)") }
        var train: [Int] = []
        var held: [Int] = []
        for i in keys.indices {
            if EmbeddingCalibration.isHeldOut(keys[i], fraction: fraction) { held.append(i) } else { train.append(i) }
        }
        guard train.count >= 2, held.count >= 2 else {
            throw RuntimeError(
                .invalidInput,
                "\(local.count) pairs give \(train.count) to fit and \(held.count) to judge; at least 2 each")
        }
        let x = train.map { local[$0].map(Double.init) }
        let p = train.map { softmax(service[$0].map(Double.init)) }
        // Temperature: golden-section search on log T.
        func loss(_ t: Double) -> Double {
            zip(x, p).reduce(0) { $0 + crossEntropy($1.1, softmax($1.0.map { $0 / t })) }
        }
        var (a, b) = (-4.0, 4.0)
        let ratio = (5.0.squareRoot() - 1) / 2
        for _ in 0..<80 {
            let c = b - ratio * (b - a)
            let d = a + ratio * (b - a)
            if loss(exp(c)) < loss(exp(d)) { b = d } else { a = c }
        }
        let t = exp((a + b) / 2)
        let temperature = LogitAdapter(
            kind: "temperature", scale: Array(repeating: Float(1 / t), count: k), bias: Array(repeating: 0, count: k))
        // Vector scaling: gradient descent (Adam) on the same loss, from the temperature's solution.
        var scale = [Double](repeating: 1 / t, count: k)
        var bias = [Double](repeating: 0, count: k)
        var moments = [Double](repeating: 0, count: 4 * k)
        let rate = 0.01
        for step in 1...1500 {
            var gScale = [Double](repeating: 0, count: k)
            var gBias = [Double](repeating: 0, count: k)
            for (z, target) in zip(x, p) {
                let q = softmax(z.indices.map { scale[$0] * z[$0] + bias[$0] })
                for j in 0..<k {
                    let g = (q[j] - target[j]) / Double(x.count)
                    gScale[j] += g * z[j]
                    gBias[j] += g
                }
            }
            let gradients = gScale + gBias
            for i in gradients.indices {
                moments[i] = 0.9 * moments[i] + 0.1 * gradients[i]
                moments[2 * k + i] = 0.999 * moments[2 * k + i] + 0.001 * gradients[i] * gradients[i]
                let m = moments[i] / (1 - pow(0.9, Double(step)))
                let v = moments[2 * k + i] / (1 - pow(0.999, Double(step)))
                let delta = rate * m / (v.squareRoot() + 1e-8)
                if i < k { scale[i] -= delta } else { bias[i - k] -= delta }
            }
        }
        let vector = LogitAdapter(kind: "vector_scaling", scale: scale.map(Float.init), bias: bias.map(Float.init))
        let heldLocal = held.map { local[$0] }
        let heldService = held.map { service[$0] }
        func judge(_ adapter: LogitAdapter?) throws -> Evaluation {
            evaluate(try adapter?.apply(heldLocal) ?? heldLocal, service: heldService)
        }
        let report = Report(
            trainPairs: train.count, heldOutPairs: held.count, labels: k, temperatureValue: t, before: try judge(nil),
            temperature: try judge(temperature), vectorScaling: try judge(vector))
        return (report, temperature, vector)
    }

    static func evaluate(_ local: [[Float]], service: [[Float]]) -> Evaluation {
        let bins = 15
        var count = [Int](repeating: 0, count: bins)
        var confidence = [Double](repeating: 0, count: bins)
        var correct = [Double](repeating: 0, count: bins)
        var agree = 0
        var entropy = 0.0
        for (z, s) in zip(local, service) {
            let q = softmax(z.map(Double.init))
            let p = softmax(s.map(Double.init))
            let mine = q.indices.max { q[$0] < q[$1] }!
            let theirs = p.indices.max { p[$0] < p[$1] }!
            let bin = min(bins - 1, Int(q[mine] * Double(bins)))
            count[bin] += 1
            confidence[bin] += q[mine]
            correct[bin] += mine == theirs ? 1 : 0
            agree += mine == theirs ? 1 : 0
            entropy += crossEntropy(p, q)
        }
        let n = Double(max(1, local.count))
        let ece = (0..<bins).reduce(0.0) { $0 + abs(correct[$1] - confidence[$1]) } / n
        return Evaluation(agreement: Double(agree) / n, ece: ece, crossEntropy: entropy / n)
    }

    static func softmax(_ z: [Double]) -> [Double] {
        let top = z.max() ?? 0
        let e = z.map { exp($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    static func crossEntropy(_ p: [Double], _ q: [Double]) -> Double {
        zip(p, q).reduce(0) { $0 - $1.0 * log(max($1.1, 1e-12)) }
    }
}
