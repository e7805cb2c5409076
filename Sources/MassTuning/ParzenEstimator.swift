import Foundation
import MassAutograd

/// One parameter's kernels in the tree-structured Parzen estimator (Bergstra et al., 2011) as Optuna 5 builds
/// them: one kernel per observation plus a prior kernel. Numerical parameters (in the internal scale) get truncated
/// normals centred on the observations, each as wide as its larger gap to a neighbouring observation (at the two
/// ends the inner gap once there are two), clipped to [range / min(100, kernels + 1), range]; the prior is centred
/// with the whole range as its width. A categorical observation's kernel puts `prior / kernels` on every choice
/// and 1 more on its own; the prior's is uniform. The kernels' weights are shared by all parameters of a trial
/// (`ParzenMixture`).
public struct ParzenEstimator: Sendable {
    public let parameter: SearchSpace.Parameter
    private(set) var mus: [Double] = []
    private(set) var sigmas: [Double] = []
    /// Categorical: each kernel's probability of each choice.
    private(set) var choiceProbabilities: [[Double]] = []

    /// Kernels for `observations` (oldest first) and the prior, as the last kernel.
    public init(_ parameter: SearchSpace.Parameter, observations: [TuningValue], priorWeight: Double) {
        self.parameter = parameter
        let kernels = Double(observations.count + 1)
        if parameter.type == .categorical {
            let choices = parameter.choices!
            let uniform = [Double](repeating: 1 / Double(choices.count), count: choices.count)
            choiceProbabilities =
                observations.map { value in
                    var row = [Double](repeating: priorWeight / kernels, count: choices.count)
                    if let index = choices.firstIndex(of: value) { row[index] += 1 }
                    let sum = row.reduce(0, +)
                    return row.map { $0 / sum }
                } + [uniform]
            return
        }
        let (low, high) = parameter.internalBounds
        let points = observations.compactMap(parameter.internalValue)
        let order = points.indices.sorted { points[$0] < points[$1] }
        let withEnds = [low] + order.map { points[$0] } + [high]
        var sorted: [Double] = []
        for i in 1..<max(1, withEnds.count - 1) {
            let left: Double = withEnds[i] - withEnds[i - 1]
            let right: Double = withEnds[i + 1] - withEnds[i]
            sorted.append(max(left, right))
        }
        if withEnds.count >= 4 {
            sorted[0] = withEnds[2] - withEnds[1]
            sorted[sorted.count - 1] = withEnds[withEnds.count - 2] - withEnds[withEnds.count - 3]
        }
        let range = high - low
        let smallest = range / min(100, 1 + kernels)
        var widths = [Double](repeating: 0, count: points.count)
        for (rank, index) in order.enumerated() { widths[index] = min(max(sorted[rank], smallest), range) }
        mus = points + [(low + high) / 2]
        sigmas = widths + [range]
    }

    public var kernelCount: Int { parameter.type == .categorical ? choiceProbabilities.count : mus.count }

    /// A draw from kernel `k`.
    public func sample(kernel k: Int, using generator: inout SeededGenerator) -> TuningValue {
        if parameter.type == .categorical {
            return parameter.choices![ParzenMixture.pick(choiceProbabilities[k], using: &generator)]
        }
        let (low, high) = parameter.internalBounds
        // Rejection: every centre lies within the bounds, so at least about half of each normal's mass does.
        for _ in 0..<1000 {
            let x = mus[k] + sigmas[k] * Self.normal(using: &generator)
            if x >= low && x <= high { return parameter.value(internal: x) }
        }
        return parameter.value(internal: min(max(mus[k], low), high))
    }

    /// The log density (continuous) or log probability (a grid value's cell, a choice) of `value` under each kernel.
    public func logDensities(_ value: TuningValue) -> [Double] {
        if parameter.type == .categorical {
            guard let index = parameter.choices!.firstIndex(of: value) else {
                return [Double](repeating: -.infinity, count: kernelCount)
            }
            return choiceProbabilities.map { Foundation.log($0[index]) }
        }
        let (low, high) = parameter.internalBounds
        guard let x = parameter.internalValue(value) else { return [Double](repeating: -.infinity, count: kernelCount) }
        // A grid value stands for its cell: half a step each side (for log ints, ±0.5 before the log).
        var cell: (Double, Double)?
        if let step = parameter.gridStep, let number = value.number {
            cell =
                parameter.isLog
                ? (Foundation.log(number - 0.5), Foundation.log(number + 0.5)) : (x - step / 2, x + step / 2)
        }
        return mus.indices.map { k in
            let (mu, sigma) = (mus[k], sigmas[k])
            let mass = Self.cdf((high - mu) / sigma) - Self.cdf((low - mu) / sigma)
            let p: Double
            if let (a, b) = cell {
                p = (Self.cdf((min(b, high) - mu) / sigma) - Self.cdf((max(a, low) - mu) / sigma)) / mass
            } else {
                let z = (x - mu) / sigma
                p = Foundation.exp(-0.5 * z * z) / (sigma * (2 * Double.pi).squareRoot()) / mass
            }
            return Foundation.log(max(p, 1e-300))
        }
    }

    static func cdf(_ z: Double) -> Double { 0.5 * Foundation.erfc(-z / 2.0.squareRoot()) }

    /// A standard normal draw (Box–Muller).
    static func normal(using generator: inout SeededGenerator) -> Double {
        let u = Double.random(in: Double.leastNonzeroMagnitude..<1, using: &generator)
        let v = Double.random(in: 0..<1, using: &generator)
        return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * v)
    }
}

/// Several parameters' kernels joined per trial (Optuna 5's default "multivariate" TPE): kernel k of every
/// parameter comes from the same trial, so a draw picks one trial's kernel (by weight) and draws every parameter
/// from it, keeping what worked together together.
public struct ParzenMixture: Sendable {
    public let names: [String]
    public let estimators: [ParzenEstimator]
    /// One per kernel (the prior's last), summing to 1.
    public let weights: [Double]

    /// `observations[i]` holds trial i's values of `names` (oldest first), `trialWeights` one per trial.
    public init(
        names: [String], space: SearchSpace, observations: [[TuningValue]], trialWeights: [Double], priorWeight: Double
    ) {
        self.names = names
        estimators = names.enumerated().map { p, name in
            ParzenEstimator(space.parameters[name]!, observations: observations.map { $0[p] }, priorWeight: priorWeight)
        }
        let raw = observations.isEmpty ? [1] : trialWeights + [priorWeight]
        let total = raw.reduce(0, +)
        weights = raw.map { $0 / total }
    }

    public func sample(using generator: inout SeededGenerator) -> [TuningValue] {
        let k = Self.pick(weights, using: &generator)
        return estimators.map { $0.sample(kernel: k, using: &generator) }
    }

    public func logDensity(_ values: [TuningValue]) -> Double {
        var terms = weights.map { Foundation.log($0) }
        for (estimator, value) in zip(estimators, values) {
            for (k, term) in estimator.logDensities(value).enumerated() { terms[k] += term }
        }
        let top = terms.max() ?? -.infinity
        guard top.isFinite else { return top }
        return top + Foundation.log(terms.reduce(0) { $0 + Foundation.exp($1 - top) })
    }

    /// An index drawn with probability proportional to `weights`.
    static func pick(_ weights: [Double], using generator: inout SeededGenerator) -> Int {
        var u = Double.random(in: 0..<weights.reduce(0, +), using: &generator)
        for (index, weight) in weights.enumerated() {
            if u < weight { return index }
            u -= weight
        }
        return weights.count - 1
    }
}
