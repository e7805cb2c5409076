public import Foundation
import SQLKit

/// The job queue in the registry's database (tables `jobs`, `job_logs`). Workers on any machine that reach the
/// database share it: a claim takes the oldest queued job in one transaction (on PostgreSQL with
/// `FOR UPDATE SKIP LOCKED`, so concurrent claims never wait on each other nor take the same job; on SQLite the
/// file's write lock serialises them). A running job's worker sends heartbeats; a job whose heartbeat is older
/// than the claimer's `staleAfter` is taken back (queued again while attempts remain, else failed), so a worker
/// that died loses its job to the next claim.
public final class JobQueue: Sendable {
    public let database: any RegistryDatabase

    public init(database: any RegistryDatabase) { self.database = database }

    /// What the worker learns from a heartbeat.
    public enum Heartbeat: Sendable, Equatable {
        case running
        /// Someone asked to cancel: stop and report `.cancelled`.
        case cancelRequested
    }

    struct Row: Codable {
        var id: Int
        var kind: String
        var config: String
        var state: String
        var attempts: Int
        var maxAttempts: Int
        var worker: String?
        var submittedBy: String
        var submittedAt: Int
        var startedAt: Int?
        var heartbeatAt: Int?
        var finishedAt: Int?
        var cancelRequested: Int
        var progress: String?
        var error: String?
        var result: String?

        func job() throws -> Job {
            guard let state = Job.State(rawValue: state) else {
                throw RegistryError(.integrity, "job \(id) has an unknown state '\(state)'")
            }
            return Job(
                id: id, kind: kind, config: (try? JSONValue.parse(config)) ?? .string(config), state: state,
                attempts: attempts, maxAttempts: maxAttempts, worker: worker, submittedBy: submittedBy,
                submittedAt: submittedAt, startedAt: startedAt, heartbeatAt: heartbeatAt, finishedAt: finishedAt,
                cancelRequested: cancelRequested != 0, progress: progress, error: error,
                result: result.flatMap { try? JSONValue.parse($0) })
        }
    }

    // MARK: Submitting and reading

    /// Queues a job; `config` is stored as given (the caller has checked it).
    public func submit(kind: String, config: JSONValue, maxAttempts: Int = 3, actor: String) async throws -> Job {
        guard !kind.isEmpty else { throw RegistryError(.invalid, "a job needs a kind") }
        guard (1...100).contains(maxAttempts) else {
            throw RegistryError(.invalid, "'max_attempts' must be between 1 and 100")
        }
        let text = try config.text()
        let id = try await database.transaction { db in
            try await Self.insert(kind: kind, config: text, maxAttempts: maxAttempts, actor: actor, db)
        }
        return try await job(id)
    }

    /// Queues a job within the caller's transaction (a study queues a trial's job with the trial); answers its id.
    static func insert(kind: String, config: String, maxAttempts: Int, actor: String, _ db: any SQLDatabase)
        async throws -> Int
    {
        let id = try await db.insert(into: "jobs")
            .columns(
                "kind", "config", "state", "attempts", "max_attempts", "submitted_by", "submitted_at",
                "cancel_requested"
            )
            .values(
                SQLBind(kind), SQLBind(config), SQLBind(Job.State.queued.rawValue), SQLBind(0), SQLBind(maxAttempts),
                SQLBind(actor), SQLBind(Timestamp.now()), SQLBind(0)
            )
            .returning("id").first()?.decode(column: "id", as: Int.self)
        guard let id else { throw RegistryError(.unavailable, "the registry did not return the new job's id") }
        try await log(id, ["submitted by \(actor)"], db)
        return id
    }

    public func job(_ id: Int) async throws -> Job {
        let row = try await database.transaction(readOnly: true) { db in try await Self.row(id, db) }
        return try row.job()
    }

    /// Jobs, newest first; only those in `states` when given.
    public func jobs(states: Set<Job.State> = [], kind: String? = nil, limit: Int = 100) async throws -> [Job] {
        let rows = try await database.transaction(readOnly: true) { db in
            var query = db.select().columns("*").from("jobs")
            if !states.isEmpty { query = query.where("state", .in, states.map(\.rawValue).sorted()) }
            if let kind { query = query.where("kind", .equal, kind) }
            return try await query.orderBy("id", .descending).limit(limit)
                .all(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
        }
        return try rows.map { try $0.job() }
    }

    /// The log lines of a job after line `after` (0: from the start), oldest first.
    public func logs(_ id: Int, after: Int = 0, limit: Int = 10_000) async throws -> [JobLogLine] {
        try await database.transaction(readOnly: true) { db in
            _ = try await Self.row(id, db)
            return try await db.select().columns("id", "at", "line").from("job_logs").where("job", .equal, id)
                .where("id", .greaterThan, after).orderBy("id").limit(limit).all(decoding: JobLogLine.self)
        }
    }

    // MARK: Changing

    /// Cancels a queued job at once; asks the worker of a running one to stop (it reports `.cancelled`).
    public func cancel(_ id: Int, actor: String) async throws -> Job {
        try await database.transaction { db in
            let row = try await Self.row(id, db, lock: true)
            switch Job.State(rawValue: row.state) {
            case .queued:
                try await db.update("jobs").set("state", to: Job.State.cancelled.rawValue)
                    .set("finished_at", to: Timestamp.now()).set("cancel_requested", to: 1)
                    .where("id", .equal, id).run()
            case .running:
                try await db.update("jobs").set("cancel_requested", to: 1).where("id", .equal, id).run()
            default:
                throw RegistryError(.conflict, "job \(id) is \(row.state); only queued and running jobs cancel")
            }
            try await Self.log(id, ["cancel requested by \(actor)"], db)
        }
        return try await job(id)
    }

    /// Takes the oldest queued job for `worker`, after taking back the running jobs whose heartbeat is older
    /// than `staleAfter` (queued again while attempts remain, else failed). Nil when nothing is queued.
    public func claim(worker: String, kinds: Set<String>, staleAfter: Duration) async throws -> Job? {
        let postgres = database.isPostgres
        let row = try await database.transaction { db -> Row? in
            let now = Timestamp.now()
            let cutoff = now - Int(staleAfter.components.seconds * 1000)
            var stale = db.select().columns("*").from("jobs").where("state", .equal, Job.State.running.rawValue)
                .where("heartbeat_at", .lessThan, cutoff)
            if postgres { stale = stale.lockingClause(SQLRaw("FOR UPDATE SKIP LOCKED")) }
            for lost in try await stale.all(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase) {
                let next: Job.State =
                    lost.cancelRequested != 0 ? .cancelled : lost.attempts < lost.maxAttempts ? .queued : .failed
                let why = "worker \(lost.worker ?? "?") sent no heartbeat for \(staleAfter.components.seconds) s"
                var update = db.update("jobs").set("state", to: next.rawValue).where("id", .equal, lost.id)
                if next.isFinished { update = update.set("finished_at", to: now) }
                if next == .failed { update = update.set("error", to: "\(why) on its last attempt") }
                try await update.run()
                try await Self.log(
                    lost.id,
                    ["\(why): \(next == .queued ? "queued again (resumes from its checkpoint)" : next.rawValue)"],
                    db)
            }
            guard !kinds.isEmpty else { return nil }
            var queued = db.select().columns("*").from("jobs").where("state", .equal, Job.State.queued.rawValue)
                .where("kind", .in, kinds.sorted()).orderBy("id").limit(1)
            if postgres { queued = queued.lockingClause(SQLRaw("FOR UPDATE SKIP LOCKED")) }
            guard var job = try await queued.first(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
            else { return nil }
            job.attempts += 1
            try await db.update("jobs").set("state", to: Job.State.running.rawValue).set("worker", to: worker)
                .set("attempts", to: job.attempts).set("started_at", to: now).set("heartbeat_at", to: now)
                .set("progress", to: SQLLiteral.null).where("id", .equal, job.id).run()
            try await Self.log(job.id, ["attempt \(job.attempts) of \(job.maxAttempts) on worker \(worker)"], db)
            return job
        }
        guard let row else { return nil }
        return try await job(row.id)
    }

    /// Records that `worker` still runs job `id`, with its progress and new log lines. Throws `.conflict` when the
    /// job is no longer this worker's (taken back as stale, or finished): the worker must stop it.
    public func heartbeat(_ id: Int, worker: String, progress: String?, lines: [String] = []) async throws
        -> Heartbeat
    {
        try await database.transaction { db in
            let row = try await Self.owned(id, worker: worker, db)
            var update = db.update("jobs").set("heartbeat_at", to: Timestamp.now()).where("id", .equal, id)
            if let progress { update = update.set("progress", to: progress) }
            try await update.run()
            try await Self.log(id, lines, db)
            return row.cancelRequested != 0 ? .cancelRequested : .running
        }
    }

    /// Appends log lines to a job.
    public func appendLog(_ id: Int, _ lines: [String]) async throws {
        guard !lines.isEmpty else { return }
        try await database.transaction { db in try await Self.log(id, lines, db) }
    }

    /// Ends `worker`'s run of job `id`: succeeded (with `result`), cancelled, or failed. A failed run is queued
    /// again while attempts remain and `retry` is true (a crash); an error in the job itself (`retry` false)
    /// fails it at once.
    public func finish(
        _ id: Int, worker: String, state: Job.State, error: String? = nil, result: JSONValue? = nil,
        retry: Bool = false,
        lines: [String] = []
    ) async throws -> Job {
        precondition(state.isFinished, "finish needs a final state")
        let resultText = try result?.text()
        try await database.transaction { db in
            let row = try await Self.owned(id, worker: worker, db)
            let again = state == .failed && retry && row.attempts < row.maxAttempts && row.cancelRequested == 0
            let next: Job.State = again ? .queued : state
            var update = db.update("jobs").set("state", to: next.rawValue).set(
                "error", to: error.map { SQLBind($0) } ?? SQLLiteral.null
            )
            .where("id", .equal, id)
            if !again { update = update.set("finished_at", to: Timestamp.now()) }
            if let resultText { update = update.set("result", to: resultText) }
            try await update.run()
            var log = lines
            if let error { log.append("error: \(error)") }
            log.append(again ? "attempt \(row.attempts) failed: queued again" : "finished: \(next.rawValue)")
            try await Self.log(id, log, db)
        }
        return try await job(id)
    }

    // MARK: Helpers

    private static func row(_ id: Int, _ db: any SQLDatabase, lock: Bool = false) async throws -> Row {
        var query = db.select().columns("*").from("jobs").where("id", .equal, id)
        if lock { query = query.for(.update) }
        guard let row = try await query.first(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase) else {
            throw RegistryError(.notFound, "no job \(id)")
        }
        return row
    }

    private static func owned(_ id: Int, worker: String, _ db: any SQLDatabase) async throws -> Row {
        let row = try await row(id, db, lock: true)
        guard row.state == Job.State.running.rawValue, row.worker == worker else {
            throw RegistryError(
                .conflict, "job \(id) is no longer worker \(worker)'s (it is \(row.state) on \(row.worker ?? "none"))")
        }
        return row
    }

    static func log(_ id: Int, _ lines: [String], _ db: any SQLDatabase) async throws {
        guard !lines.isEmpty else { return }
        let now = Timestamp.now()
        var insert = db.insert(into: "job_logs").columns("job", "at", "line")
        for line in lines { insert = insert.values(SQLBind(id), SQLBind(now), SQLBind(line)) }
        try await insert.run()
    }
}
