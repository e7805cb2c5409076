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
        public var values: [Double]
        public var params: JSONValue
    }

    public init(_ study: Study, _ trials: [StudyTrial], plan: StudyPlan) {
        name = study.name
        state = study.state.rawValue
        reason = study.reason
        counts = Dictionary(grouping: trials, by: \.state).mapValues(\.count)
        seconds = study.finishedAt.map { Double($0 - study.createdAt) / 1000 }
        let records = trials.map(StudyPlan.record)
        let bestNumbers = Set(plan.settings.best(records).map(\.number))
        best = trials.filter { bestNumbers.contains($0.number) }.map {
            Best(number: $0.number, values: $0.values ?? [], params: $0.params)
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
