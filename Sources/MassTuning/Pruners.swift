import Foundation

/// Decides, at each intermediate report, whether a running trial stops early.
public protocol Pruner: Sendable {
    /// Whether `trial` (its reports include the one at `step`) stops, given every other trial of the study.
    func shouldPrune(_ trial: TrialRecord, step: Int, direction: Direction, others: [TrialRecord]) -> Bool
}

/// Never prunes.
public struct NoPruner: Pruner {
    public init() {}
    public func shouldPrune(_ trial: TrialRecord, step: Int, direction: Direction, others: [TrialRecord]) -> Bool {
        false
    }
}

/// Median stopping (Golovin et al., 2017; Optuna's MedianPruner): after `startupTrials` complete trials and
/// `warmupSteps` steps, a trial stops when its best value so far is worse than the median of the complete
/// trials' values at the same step.
public struct MedianPruner: Pruner {
    public var startupTrials: Int
    public var warmupSteps: Int

    public init(startupTrials: Int = 5, warmupSteps: Int = 0) {
        self.startupTrials = startupTrials
        self.warmupSteps = warmupSteps
    }

    public func shouldPrune(_ trial: TrialRecord, step: Int, direction: Direction, others: [TrialRecord]) -> Bool {
        guard step > warmupSteps else { return false }
        let complete = others.filter { $0.state == .complete && $0.number != trial.number }
        guard complete.count >= startupTrials else { return false }
        let atStep = complete.compactMap { $0.reports[step] }.sorted()
        guard !atStep.isEmpty else { return false }
        let middle = atStep.count / 2
        let median = atStep.count % 2 == 1 ? atStep[middle] : (atStep[middle - 1] + atStep[middle]) / 2
        let sofar = trial.reports.filter { $0.key <= step }.map(\.value)
        guard let best = direction == .maximize ? sofar.max() : sofar.min() else { return false }
        return direction.better(median, than: best)
    }
}

/// Asynchronous successive halving (ASHA; Li et al., MLSys 2020): rung k sits at step
/// `minResource · η^(minEarlyStoppingRate + k)`. A trial reaching a rung continues only if its value there is among
/// the best 1/η of every trial's value at that rung so far (running, pruned or complete: no trial waits for
/// others); while a rung has fewer than η values, only a trial at least as good as all of them continues.
public struct SuccessiveHalvingPruner: Pruner {
    public var minResource: Int
    public var reductionFactor: Int
    public var minEarlyStoppingRate: Int

    public init(minResource: Int = 1, reductionFactor: Int = 3, minEarlyStoppingRate: Int = 0) {
        self.minResource = minResource
        self.reductionFactor = reductionFactor
        self.minEarlyStoppingRate = minEarlyStoppingRate
    }

    /// The step of rung `k`.
    public func rungStep(_ k: Int) -> Int {
        var step = minResource
        for _ in 0..<(minEarlyStoppingRate + k) { step *= reductionFactor }
        return step
    }

    /// A trial's value at rung `k`: its report at the first reported step at or after the rung's step.
    public func rungValue(_ trial: TrialRecord, _ k: Int) -> Double? {
        let target = rungStep(k)
        guard let step = trial.reports.keys.filter({ $0 >= target }).min() else { return nil }
        return trial.reports[step]
    }

    public func shouldPrune(_ trial: TrialRecord, step: Int, direction: Direction, others: [TrialRecord]) -> Bool {
        // The rungs this report reaches for the first time: the trial's earlier reports crossed the ones before.
        let earlier = trial.reports.keys.filter { $0 < step }.max() ?? 0
        var k = 0
        while rungStep(k) <= earlier { k += 1 }
        while rungStep(k) <= step {
            guard let value = trial.reports[step] else { return false }
            var competing = others.filter { $0.number != trial.number }.compactMap { rungValue($0, k) }
            competing.append(value)
            if !Self.promotable(value, competing, reductionFactor: reductionFactor, direction: direction) {
                return true
            }
            k += 1
        }
        return false
    }

    /// Whether `value` is among the best `count / η` of `competing` (itself included); the best one while fewer
    /// than η compete.
    static func promotable(_ value: Double, _ competing: [Double], reductionFactor: Int, direction: Direction) -> Bool {
        let kept = max(competing.count / reductionFactor, 1)
        let ranked = competing.sorted { direction.better($0, than: $1) }
        let threshold = ranked[kept - 1]
        return !direction.better(threshold, than: value)
    }
}
