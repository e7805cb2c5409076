import Foundation
import MassAutograd

/// The tree-structured Parzen estimator (Bergstra et al., 2011) with Optuna 5's defaults: after `startupTrials`
/// random trials, the finished trials are split into the best `γ(n) = min(⌈n/10⌉, 25)` and the rest (running
/// trials join the rest, Optuna's "constant liar", so parallel trials spread out); `candidates` draws from the
/// good trials' density l(x) are scored by l(x) / g(x) against the rest's, and the best is taken. The parameters
/// every trial has are drawn jointly (a kernel per trial across all of them: Optuna's multivariate TPE); a
/// conditional parameter is drawn on its own from the trials it was active in. Pruned trials rank below every
/// complete one, the further-run first; with several objectives the good trials are whole non-dominated fronts,
/// the last one cut by crowding distance (Optuna cuts it by hypervolume contribution).
public struct TPESampler: Sampler {
    public var seed: UInt64
    public var startupTrials: Int
    public var candidates: Int
    public var priorWeight: Double

    public init(seed: UInt64 = 0, startupTrials: Int = 10, candidates: Int = 24, priorWeight: Double = 1) {
        self.seed = seed
        self.startupTrials = startupTrials
        self.candidates = candidates
        self.priorWeight = priorWeight
    }

    public func sample(_ space: SearchSpace, directions: [Direction], trials: [TrialRecord], number: Int)
        -> [String: TuningValue]
    {
        let finished = trials.filter {
            ($0.state == .complete && $0.values?.count == directions.count)
                || ($0.state == .pruned && $0.lastStep != nil)
        }
        guard finished.count >= max(startupTrials, 1) else {
            return RandomSampler(seed: seed).sample(space, directions: directions, trials: trials, number: number)
        }
        let good = Set(Self.best(finished, directions: directions, count: Self.gamma(finished.count)))
        let others = trials.filter { $0.state == .running || $0.state == .queued }.filter { $0.number != number }
        let below = finished.filter { good.contains($0.number) }.sorted { $0.number < $1.number }
        let above = (finished.filter { !good.contains($0.number) } + others).sorted { $0.number < $1.number }
        var generator = RandomSampler.generator(seed: seed, number: number)
        var drawn: [String: TuningValue] = [:]
        // The unconditional parameters together, then each conditional one given what was drawn.
        let order = space.order
        let joint = order.filter { space.parameters[$0]?.when == nil }
        var groups = joint.isEmpty ? [] : [joint]
        groups += order.filter { space.parameters[$0]?.when != nil }.map { [$0] }
        for names in groups {
            guard names.allSatisfy({ space.isActive($0, given: drawn) }) else { continue }
            func mixture(_ group: [TrialRecord]) -> ParzenMixture {
                let observed = group.compactMap { t -> [TuningValue]? in
                    let values = names.compactMap { t.params[$0] }
                    return values.count == names.count ? values : nil
                }
                return ParzenMixture(
                    names: names, space: space, observations: observed, trialWeights: Self.weights(observed.count),
                    priorWeight: priorWeight)
            }
            let l = mixture(below)
            let g = mixture(above)
            var best: [TuningValue] = []
            var bestScore = -Double.infinity
            for _ in 0..<max(1, candidates) {
                let candidate = l.sample(using: &generator)
                let score = l.logDensity(candidate) - g.logDensity(candidate)
                if best.isEmpty || score > bestScore {
                    best = candidate
                    bestScore = score
                }
            }
            for (name, value) in zip(names, best) { drawn[name] = value }
        }
        return drawn
    }

    /// How many of `n` finished trials count as good.
    public static func gamma(_ n: Int) -> Int { min(Int((0.1 * Double(n)).rounded(.up)), 25) }

    /// The observations' weights, oldest first: equal up to 25 trials, then the older ones ramped down linearly
    /// from 1/n so that the newest 25 weigh 1.
    public static func weights(_ n: Int) -> [Double] {
        guard n >= 25 else { return [Double](repeating: 1, count: n) }
        let ramp = n - 25
        let first = 1 / Double(n)
        let rising = (0..<ramp).map { i in ramp == 1 ? first : first + (1 - first) * Double(i) / Double(ramp - 1) }
        return rising + [Double](repeating: 1, count: 25)
    }

    /// The numbers of the `count` best trials of `finished`.
    public static func best(_ finished: [TrialRecord], directions: [Direction], count: Int) -> [Int] {
        if directions.count == 1 {
            let direction = directions[0]
            // Complete trials by value; then pruned ones, the further they ran the better, then by their last value.
            func key(_ t: TrialRecord) -> (Int, Int, Double) {
                if t.state == .complete { return (0, 0, direction.loss(t.values![0])) }
                let step = t.lastStep!
                return (1, -step, direction.loss(t.reports[step]!))
            }
            return finished.sorted { key($0) < key($1) }.prefix(count).map(\.number)
        }
        let complete = finished.filter { $0.state == .complete }
        let points = complete.map { t in zip(t.values!, directions).map { $1.loss($0) } }
        var chosen: [Int] = []
        for front in Pareto.fronts(points) {
            if chosen.count + front.count <= count {
                chosen += front
            } else {
                let distance = Pareto.crowding(front.map { points[$0] })
                let ranked = front.indices.sorted { distance[$0] > distance[$1] }
                chosen += ranked.prefix(count - chosen.count).map { front[$0] }
            }
            if chosen.count >= count { break }
        }
        return chosen.map { complete[$0].number }
    }
}
