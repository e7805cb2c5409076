import Foundation

/// What a study searches and how: its space, objectives, sampler, pruner and budget (the `mass tune`
/// configuration less the training configuration its trials start from).
public struct StudySettings: Sendable, Equatable, Codable {
    public struct Objective: Sendable, Equatable, Codable {
        /// A number in a trial's summary ("validation_accuracy"), or "seconds" (the trial's wall time).
        public var metric: String
        public var direction: Direction

        public init(metric: String, direction: Direction) {
            self.metric = metric
            self.direction = direction
        }
    }

    public struct SamplerSettings: Sendable, Equatable, Codable {
        /// "tpe" or "random".
        public var type: String
        public var seed: UInt64?
        public var startupTrials: Int?
        public var candidates: Int?

        public init(type: String, seed: UInt64? = nil, startupTrials: Int? = nil, candidates: Int? = nil) {
            self.type = type
            self.seed = seed
            self.startupTrials = startupTrials
            self.candidates = candidates
        }

        enum CodingKeys: String, CodingKey {
            case type, seed, candidates
            case startupTrials = "startup_trials"
        }
    }

    public struct PrunerSettings: Sendable, Equatable, Codable {
        /// "asha", "hyperband", "median" or "none".
        public var type: String
        public var minResource: Int?
        /// Hyperband: the last step a trial reports (its epochs).
        public var maxResource: Int?
        public var reductionFactor: Int?
        public var startupTrials: Int?
        public var warmupSteps: Int?

        public init(
            type: String, minResource: Int? = nil, maxResource: Int? = nil, reductionFactor: Int? = nil,
            startupTrials: Int? = nil, warmupSteps: Int? = nil
        ) {
            self.type = type
            self.minResource = minResource
            self.maxResource = maxResource
            self.reductionFactor = reductionFactor
            self.startupTrials = startupTrials
            self.warmupSteps = warmupSteps
        }

        enum CodingKeys: String, CodingKey {
            case type
            case minResource = "min_resource"
            case maxResource = "max_resource"
            case reductionFactor = "reduction_factor"
            case startupTrials = "startup_trials"
            case warmupSteps = "warmup_steps"
        }
    }

    public struct Budget: Sendable, Equatable, Codable {
        /// Trials to create (complete, pruned and failed ones count).
        public var trials: Int?
        /// Wall-clock seconds from the study's start the study aims to end by: a search trial starts only when it
        /// is expected to end within them, with time left for the confirmation's re-runs (`StudyPlan`).
        public var seconds: Double?

        public init(trials: Int? = nil, seconds: Double? = nil) {
            self.trials = trials
            self.seconds = seconds
        }
    }

    /// Re-runs of a study's best configurations with other training seeds, once the search's budget is spent: the
    /// study's best is then the configuration with the best mean over its runs, not the luckiest single run.
    public struct Confirm: Sendable, Equatable, Codable {
        /// How many of the best complete trials run again (default 3).
        public var top: Int?
        /// How many more runs each, with the seeds after the base configuration's (default 2).
        public var repeats: Int?
        /// The dotted path of the whole-number key each re-run varies (re-run r has the base's value plus r): a
        /// training seed ("head.seed"), or the validation fold ("split.fold": other validation examples, the same
        /// test part).
        public var seed: String
        /// What ranks the confirmed configurations (the mean over their runs, in the objective's direction): a
        /// metric of the runs' summaries, recorded with every trial (default: the objective). A metric that
        /// estimates the objective with less luck in it (`crossed_validation_accuracy`) picks better.
        public var metric: String?

        public init(top: Int? = nil, repeats: Int? = nil, seed: String, metric: String? = nil) {
            self.top = top
            self.repeats = repeats
            self.seed = seed
            self.metric = metric
        }

        public var count: Int { top ?? 3 }
        public var runs: Int { repeats ?? 2 }
    }

    public var space: SearchSpace
    /// One objective, or several (then the study keeps a Pareto set and prunes nothing).
    public var objective: Objective?
    public var objectives: [Objective]?
    /// What the trials' per-epoch reports hold, for the pruner (default: the objective, when the runs report it).
    public var intermediate: Objective?
    public var sampler: SamplerSettings?
    public var pruner: PrunerSettings?
    public var budget: Budget
    /// A study stops as failed when this many trials failed and none completed.
    public var maxFailures: Int?
    public var confirm: Confirm?

    public init(
        space: SearchSpace, objectives: [Objective], intermediate: Objective? = nil, sampler: SamplerSettings? = nil,
        pruner: PrunerSettings? = nil, budget: Budget, maxFailures: Int? = nil, confirm: Confirm? = nil
    ) {
        self.space = space
        self.objectives = objectives
        self.intermediate = intermediate
        self.sampler = sampler
        self.pruner = pruner
        self.budget = budget
        self.maxFailures = maxFailures
        self.confirm = confirm
    }

    enum CodingKeys: String, CodingKey {
        case space, objective, objectives, intermediate, sampler, pruner, budget, confirm
        case maxFailures = "max_failures"
    }

    /// The objectives, however given.
    public var allObjectives: [Objective] { objectives ?? objective.map { [$0] } ?? [] }

    public var directions: [Direction] { allObjectives.map(\.direction) }

    /// What every complete trial records: the objectives' values, then the confirmation's own metric if it has one.
    public var recordedMetrics: [String] { allObjectives.map(\.metric) + (confirm?.metric.map { [$0] } ?? []) }

    /// The metric the pruner watches: `intermediate`, else the single objective.
    public var prunedOn: Objective? { intermediate ?? (allObjectives.count == 1 ? allObjectives[0] : nil) }

    public var failureLimit: Int { maxFailures ?? 3 }

    /// Refuses settings a study cannot run, naming the key.
    public func validate() throws(TuningError) {
        try space.validate()
        let objectives = allObjectives
        guard objective == nil || self.objectives == nil else {
            throw TuningError("give 'objective' or 'objectives', not both")
        }
        guard !objectives.isEmpty else { throw TuningError("'objective' is missing: a metric and a direction") }
        guard Set(objectives.map(\.metric)).count == objectives.count, objectives.allSatisfy({ !$0.metric.isEmpty })
        else { throw TuningError("'objectives' must name distinct metrics") }
        guard budget.trials != nil || budget.seconds != nil else {
            throw TuningError("'budget' needs 'trials' or 'seconds' (or both)")
        }
        if let trials = budget.trials, !(1...100_000).contains(trials) {
            throw TuningError("'budget.trials' must be between 1 and 100000")
        }
        if let seconds = budget.seconds, !(seconds > 0 && seconds.isFinite) {
            throw TuningError("'budget.seconds' must be positive")
        }
        if let maxFailures, maxFailures < 1 { throw TuningError("'max_failures' must be positive") }
        if let confirm {
            guard objectives.count == 1 else {
                throw TuningError("'confirm' needs one objective (a Pareto set has no single best to confirm)")
            }
            guard (1...100).contains(confirm.count) else { throw TuningError("'confirm.top' must be from 1 to 100") }
            guard (1...20).contains(confirm.runs) else { throw TuningError("'confirm.repeats' must be from 1 to 20") }
            guard !confirm.seed.isEmpty else { throw TuningError("'confirm.seed' is empty") }
            guard space.parameters[confirm.seed] == nil else {
                throw TuningError("'confirm.seed' '\(confirm.seed)' is a parameter of the search space")
            }
            if let metric = confirm.metric, metric.isEmpty { throw TuningError("'confirm.metric' is empty") }
        }
        let samplerType = sampler?.type ?? "tpe"
        guard ["tpe", "random"].contains(samplerType) else {
            throw TuningError("'sampler.type' must be tpe or random, not '\(samplerType)'")
        }
        if let startup = sampler?.startupTrials, startup < 0 {
            throw TuningError("'sampler.startup_trials' must not be negative")
        }
        if let candidates = sampler?.candidates, candidates < 1 {
            throw TuningError("'sampler.candidates' must be positive")
        }
        let prunerType = pruner?.type ?? "none"
        guard ["asha", "hyperband", "median", "none"].contains(prunerType) else {
            throw TuningError("'pruner.type' must be asha, hyperband, median or none, not '\(prunerType)'")
        }
        if prunerType == "hyperband" {
            guard let top = pruner?.maxResource, top >= (pruner?.minResource ?? 1) else {
                throw TuningError(
                    "'pruner.max_resource' (the epochs a full trial reports) must be at least min_resource")
            }
        }
        if prunerType != "none" {
            guard objectives.count == 1 || intermediate != nil else {
                throw TuningError("a pruner needs one objective, or 'intermediate' naming what it watches")
            }
            if let r = pruner?.minResource, r < 1 { throw TuningError("'pruner.min_resource' must be positive") }
            if let f = pruner?.reductionFactor, f < 2 {
                throw TuningError("'pruner.reduction_factor' must be at least 2")
            }
            if let s = pruner?.startupTrials, s < 0 {
                throw TuningError("'pruner.startup_trials' must not be negative")
            }
            if let w = pruner?.warmupSteps, w < 0 { throw TuningError("'pruner.warmup_steps' must not be negative") }
        }
    }

    /// The sampler these settings name.
    public func makeSampler() -> any Sampler {
        let seed = sampler?.seed ?? 0
        if sampler?.type == "random" { return RandomSampler(seed: seed) }
        return TPESampler(
            seed: seed, startupTrials: sampler?.startupTrials ?? 10, candidates: sampler?.candidates ?? 24)
    }

    /// The pruner these settings name (Hyperband's brackets hash the study's name with each trial's number).
    public func makePruner(studyName: String = "") -> any Pruner {
        switch pruner?.type {
        case "hyperband":
            HyperbandPruner(
                minResource: pruner?.minResource ?? 1, maxResource: pruner?.maxResource ?? 1,
                reductionFactor: pruner?.reductionFactor ?? 3, studyName: studyName)
        case "asha":
            SuccessiveHalvingPruner(
                minResource: pruner?.minResource ?? 1, reductionFactor: pruner?.reductionFactor ?? 3)
        case "median":
            MedianPruner(startupTrials: pruner?.startupTrials ?? 5, warmupSteps: pruner?.warmupSteps ?? 0)
        default: NoPruner()
        }
    }

    /// Whether `trial` is one of the confirmation's re-runs (its parameters hold the seed).
    public func isRerun(_ trial: TrialRecord) -> Bool { confirm.map { trial.params[$0.seed] != nil } ?? false }

    /// A trial's values of the search space's parameters (a re-run's without its seed).
    public func configuration(_ trial: TrialRecord) -> [String: TuningValue] {
        trial.params.filter { space.parameters[$0.key] != nil }
    }

    /// The search's complete trials (re-runs left out), best first (one objective; ties to the earlier trial).
    public func ranked(_ trials: [TrialRecord]) -> [TrialRecord] {
        guard let direction = directions.first else { return [] }
        return trials.filter { $0.state == .complete && $0.values?.count == 1 && !isRerun($0) }.sorted {
            (direction.loss($0.values![0]), $0.number) < (direction.loss($1.values![0]), $1.number)
        }
    }

    /// The confirmed configurations: each search trial with complete re-runs, its `values` (and `confirmValue`) the
    /// mean over its own run and theirs, with how many runs that mean holds.
    public func confirmed(_ trials: [TrialRecord]) -> [(trial: TrialRecord, runs: Int)] {
        let reruns = trials.filter { $0.state == .complete && $0.values?.count == 1 && isRerun($0) }
        guard !reruns.isEmpty else { return [] }
        func mean(_ values: [Double?]) -> Double? {
            let known = values.compactMap { $0 }
            return known.count == values.count ? known.reduce(0, +) / Double(known.count) : nil
        }
        return ranked(trials).compactMap { trial in
            let own = configuration(trial)
            let runs = [trial] + reruns.filter { configuration($0) == own }
            guard runs.count > 1 else { return nil }
            var averaged = trial
            averaged.values = mean(runs.map { $0.values![0] }).map { [$0] }
            averaged.confirmValue = mean(runs.map(\.confirmValue))
            return (averaged, runs.count)
        }
    }

    /// The best trials: for one objective the best complete trial (nil when none), for several the Pareto set.
    /// With confirmation re-runs, the search trial whose configuration has the best mean (its `values` that mean).
    public func best(_ trials: [TrialRecord]) -> [TrialRecord] {
        if let direction = directions.first, directions.count == 1 {
            // By the confirmation's metric when it has one (a run without it ranks last).
            func key(_ t: TrialRecord) -> Double {
                confirm?.metric == nil ? direction.loss(t.values![0]) : t.confirmValue.map(direction.loss) ?? .infinity
            }
            if let top = confirmed(trials).map(\.trial).min(by: { (key($0), $0.number) < (key($1), $1.number) }) {
                return [top]
            }
        }
        let complete = trials.filter {
            $0.state == .complete && $0.values?.count == allObjectives.count && !isRerun($0)
        }
        let points = complete.map { t in zip(t.values!, directions).map { $1.loss($0) } }
        if directions.count == 1 {
            guard
                let index = points.indices.min(by: {
                    (points[$0][0], complete[$0].number) < (points[$1][0], complete[$1].number)
                })
            else { return [] }
            return [complete[index]]
        }
        return Pareto.front(points).map { complete[$0] }
    }
}
