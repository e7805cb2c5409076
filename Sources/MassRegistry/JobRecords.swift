/// A queued unit of work (today: a training run) in the registry's database, as `mass jobs` and
/// `GET /admin/v1/jobs` show it.
public struct Job: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable, CaseIterable {
        case queued, running, succeeded, failed, cancelled

        public var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
    }

    public var id: Int
    /// What runs it: "train".
    public var kind: String
    /// The job's configuration, as submitted.
    public var config: JSONValue
    public var state: State
    /// Runs started so far (a run whose worker stopped sending heartbeats counts).
    public var attempts: Int
    public var maxAttempts: Int
    /// The worker running it, or the last one that did.
    public var worker: String?
    public var submittedBy: String
    /// Milliseconds since 1970.
    public var submittedAt: Int
    public var startedAt: Int?
    public var heartbeatAt: Int?
    public var finishedAt: Int?
    public var cancelRequested: Bool
    /// The worker's last progress line.
    public var progress: String?
    public var error: String?
    /// What a finished job produced (metrics, the registered version).
    public var result: JSONValue?
}

/// One line of a job's log.
public struct JobLogLine: Codable, Sendable, Equatable {
    public var id: Int
    /// Milliseconds since 1970.
    public var at: Int
    public var line: String
}
