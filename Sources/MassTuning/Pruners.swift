import Foundation

/// Decides, at each intermediate report, whether a running trial stops early.
public protocol Pruner: Sendable {
    /// Whether `trial` (its reports include the one at `step`) stops, given every other trial of the study.
    func shouldPrune(_ trial: TrialRecord, step: Int, direction: Direction, others: [TrialRecord]) -> Bool

    /// Whether a report of trial `number` at `step`, its previous report having been at `earlier` (0: none), can
    /// stop it: false lets the runner answer "continue" at once and record the report later, its value being no
    /// other trial's yardstick either (ASHA's and Hyperband's rungs, median stopping's warm-up).
    func judges(trial number: Int, step: Int, after earlier: Int) -> Bool
}

extension Pruner {
    public func judges(trial number: Int, step: Int, after earlier: Int) -> Bool { true }
}

/// Never prunes.
public struct NoPruner: Pruner {
    public init() {}
    public func shouldPrune(_ trial: TrialRecord, step: Int, direction: Direction, others: [TrialRecord]) -> Bool {
        false
    }

    public func judges(trial number: Int, step: Int, after earlier: Int) -> Bool { false }
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

    public func judges(trial number: Int, step: Int, after earlier: Int) -> Bool { step > warmupSteps }
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

    /// The first rung above step `earlier`: the next one a trial whose last report was there reaches.
    func firstRung(after earlier: Int) -> Int {
        var k = 0
        while rungStep(k) <= earlier { k += 1 }
        return k
    }

    /// A report judges at the rungs it reaches for the first time: a rung's step in (earlier, step].
    public func judges(trial number: Int, step: Int, after earlier: Int) -> Bool {
        rungStep(firstRung(after: earlier)) <= step
    }

    public func shouldPrune(_ trial: TrialRecord, step: Int, direction: Direction, others: [TrialRecord]) -> Bool {
        // The rungs this report reaches for the first time: the trial's earlier reports crossed the ones before.
        var k = firstRung(after: trial.reports.keys.filter { $0 < step }.max() ?? 0)
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

/// Hyperband (Li et al., JMLR 2018) as Optuna's HyperbandPruner runs it: brackets of successive halving that
/// start pruning at ever later rungs (bracket s: rung 0 at `minResource · η^s`), as many as rungs fit up to
/// `maxResource`; each trial belongs to one bracket, by a hash of the study's name and its number, with the
/// brackets weighted as Hyperband allots trials (`⌈n · η^(n−1−s) / (n − s)⌉` for n brackets), and is judged against
/// its bracket's trials only. The later brackets let some trials run their full course whatever the early
/// epochs say.
public struct HyperbandPruner: Pruner {
    public var minResource: Int
    public var maxResource: Int
    public var reductionFactor: Int
    public var studyName: String

    public init(minResource: Int = 1, maxResource: Int, reductionFactor: Int = 3, studyName: String) {
        self.minResource = minResource
        self.maxResource = maxResource
        self.reductionFactor = reductionFactor
        self.studyName = studyName
    }

    /// The number of brackets: the rungs `minResource · η^k` at or below `maxResource`.
    public var brackets: Int {
        var (count, step) = (0, minResource)
        while step <= maxResource {
            count += 1
            step *= reductionFactor
        }
        return max(count, 1)
    }

    /// Each bracket's share of the trials.
    public var allotments: [Int] {
        let n = brackets
        return (0..<n).map { s in
            let later = n - 1 - s
            var power = 1
            for _ in 0..<later { power *= reductionFactor }
            return (n * power + later) / (later + 1)  // ⌈n · η^later / (later + 1)⌉
        }
    }

    /// The bracket of trial `number`.
    public func bracket(_ number: Int) -> Int {
        let shares = allotments
        var rest = Int(Self.fnv1a("\(studyName)_\(number)") % UInt64(shares.reduce(0, +)))
        for (s, share) in shares.enumerated() {
            rest -= share
            if rest < 0 { return s }
        }
        return shares.count - 1
    }

    static func fnv1a(_ text: String) -> UInt64 {
        text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    public func judges(trial number: Int, step: Int, after earlier: Int) -> Bool {
        SuccessiveHalvingPruner(
            minResource: minResource, reductionFactor: reductionFactor, minEarlyStoppingRate: bracket(number)
        ).judges(trial: number, step: step, after: earlier)
    }

    public func shouldPrune(_ trial: TrialRecord, step: Int, direction: Direction, others: [TrialRecord]) -> Bool {
        let s = bracket(trial.number)
        let halving = SuccessiveHalvingPruner(
            minResource: minResource, reductionFactor: reductionFactor, minEarlyStoppingRate: s)
        return halving.shouldPrune(
            trial, step: step, direction: direction, others: others.filter { bracket($0.number) == s })
    }
}
