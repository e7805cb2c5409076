public import MassRegistry
import MassTuning

/// A study's outcome as `mass tune` prints it and `GET /admin/v1/studies/NAME` begins it.
public struct StudySummary: Encodable, Sendable {
    public var name: String
    public var state: String
    public var reason: String?
    public var counts: [String: Int]
    public var seconds: Double?
    /// The best trial (one objective) or the Pareto set.
    public var best: [Best]

    public struct Best: Encodable, Sendable {
        public var number: Int
        /// The trial's values; for a confirmed configuration, the mean over its runs.
        public var values: [Double]
        public var params: JSONValue
        /// A confirmed configuration's runs (its trial and the re-runs that completed).
        public var runs: Int?
        /// The confirmation's own metric, when it ranks by one: its name and mean over the runs.
        public var confirmed: [String: Double]?
    }

    public init(_ study: Study, _ trials: [StudyTrial], plan: StudyPlan) {
        name = study.name
        state = study.state.rawValue
        reason = study.reason
        counts = Dictionary(grouping: trials, by: \.state).mapValues(\.count)
        seconds = study.finishedAt.map { Double($0 - study.createdAt) / 1000 }
        let records = trials.map(plan.record)
        let runs = Dictionary(plan.settings.confirmed(records).map { ($0.trial.number, $0.runs) }) { $1 }
        let metric = plan.settings.confirm?.metric
        best = plan.settings.best(records).compactMap { record in
            trials.first { $0.number == record.number }.map {
                Best(
                    number: $0.number, values: record.values ?? [], params: $0.params, runs: runs[$0.number],
                    confirmed: metric.flatMap { name in record.confirmValue.map { [name: $0] } })
            }
        }
    }
}

/// A study with its trials, as `mass studies show --json` and the admin API give it.
public struct StudyDetail: Encodable, Sendable {
    public var study: Study
    public var summary: StudySummary
    public var trials: [StudyTrial]

    public init(study: Study, trials: [StudyTrial], plan: StudyPlan) {
        self.init(study: study, summary: StudySummary(study, trials, plan: plan), trials: trials)
    }

    public init(study: Study, summary: StudySummary, trials: [StudyTrial]) {
        self.study = study
        self.summary = summary
        self.trials = trials
    }
}
