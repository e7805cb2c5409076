/// Which way an objective is better.
public enum Direction: String, Sendable, Codable, Equatable {
    case maximize, minimize

    /// `value` turned so that lower is better.
    func loss(_ value: Double) -> Double { self == .maximize ? -value : value }

    /// Whether `a` is better than `b`.
    public func better(_ a: Double, than b: Double) -> Bool { self == .maximize ? a > b : a < b }
}

/// What a sampler and a pruner know of a trial: its parameters, its state, its final objective values and the
/// intermediate values it reported by step (epoch).
public struct TrialRecord: Sendable, Equatable {
    public enum State: String, Sendable, Codable, CaseIterable {
        case queued, running, complete, pruned, failed
    }

    /// 0-based, in the order the study created its trials.
    public var number: Int
    public var params: [String: TuningValue]
    public var state: State
    /// One per objective; set when complete.
    public var values: [Double]?
    public var reports: [Int: Double]
    /// The confirmation's own metric (`StudySettings.Confirm.metric`), when the study ranks by one.
    public var confirmValue: Double?

    public init(
        number: Int, params: [String: TuningValue], state: State, values: [Double]? = nil, reports: [Int: Double] = [:],
        confirmValue: Double? = nil
    ) {
        self.number = number
        self.params = params
        self.state = state
        self.values = values
        self.reports = reports
        self.confirmValue = confirmValue
    }

    /// The last reported step, if any.
    public var lastStep: Int? { reports.keys.max() }
}
