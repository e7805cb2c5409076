public import Foundation
import SQLKit

/// A tuning study as the registry keeps it (`mass studies`, `GET /admin/v1/studies`).
public struct Study: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable, CaseIterable {
        /// Trials are still proposed (while the budget lasts) or running.
        case running
        /// The budget is spent and every trial has ended.
        case finished
        /// Too many trials failed before one completed.
        case failed
        /// Stopped by hand: no new trials; running ones were asked to cancel.
        case stopped
    }

    public var id: Int
    public var name: String
    /// The `mass tune` document: the space, objectives, sampler, pruner, budget and the base training config.
    public var config: JSONValue
    public var state: State
    public var createdBy: String
    /// Milliseconds since 1970.
    public var createdAt: Int
    public var finishedAt: Int?
    /// Why it ended: the trials' tally, the failures, who stopped it.
    public var reason: String?
}

/// One trial of a study, with its intermediate reports (step → value).
public struct StudyTrial: Codable, Sendable, Equatable {
    /// queued or running (its job's state), complete, pruned or failed.
    public var id: Int
    public var number: Int
    public var params: JSONValue
    public var state: String
    public var job: Int?
    /// One per objective, when complete.
    public var values: [Double]?
    public var reports: [Int: Double]
    public var createdAt: Int
    public var finishedAt: Int?
    /// The job's error when the trial failed.
    public var error: String?
}

/// Studies and their trials in the registry's database. The decisions (what to try next, whether a trial stops)
/// are the caller's: `propose` hands it the study and its trials under the study's row lock, so workers on any
/// machine take turns and each proposal sees every trial before it.
public final class StudyStore: Sendable {
    public let database: any RegistryDatabase

    public init(database: any RegistryDatabase) { self.database = database }

    /// What `propose`'s decision asks for.
    public enum Proposal: Sendable {
        /// Queue trial `number` with `params`, run as a job of kind "trial" with `config`.
        case trial(params: JSONValue, config: JSONValue)
        /// End the study in `state` (finished, failed) with an optional reason.
        case end(Study.State, String?)
        /// Nothing to do now (in flight at the limit, or waiting for running trials to end).
        case wait
    }

    struct StudyRow: Codable {
        var id: Int
        var name: String
        var config: String
        var state: String
        var createdBy: String
        var createdAt: Int
        var finishedAt: Int?
        var reason: String?

        func study() throws -> Study {
            guard let state = Study.State(rawValue: state) else {
                throw RegistryError(.integrity, "study \(name) has an unknown state '\(state)'")
            }
            return Study(
                id: id, name: name, config: try JSONValue.parse(config), state: state, createdBy: createdBy,
                createdAt: createdAt, finishedAt: finishedAt, reason: reason)
        }
    }

    struct TrialRow: Codable {
        var id: Int
        var number: Int
        var params: String
        var job: Int?
        var state: String
        var metricValues: String?
        var createdAt: Int
        var finishedAt: Int?
        var jobState: String?
        var jobError: String?
    }

    struct ReportRow: Codable {
        var trial: Int
        var step: Int
        var value: Double
    }

    // MARK: Studies

    /// Creates a running study; `config` is stored as given (the caller has checked it).
    public func create(name: String, config: JSONValue, actor: String) async throws -> Study {
        try Names.check(subject: name, "study")
        let text = try config.text()
        try await database.transaction { db in
            let existing = try await db.select().column("id").from("studies").where("name", .equal, name).first()
            guard existing == nil else { throw RegistryError(.conflict, "a study named '\(name)' exists") }
            try await db.insert(into: "studies").columns("name", "config", "state", "created_by", "created_at")
                .values(
                    SQLBind(name), SQLBind(text), SQLBind(Study.State.running.rawValue), SQLBind(actor),
                    SQLBind(Timestamp.now())
                ).run()
        }
        return try await study(name)
    }

    public func study(_ name: String) async throws -> Study {
        try await database.transaction(readOnly: true) { db in try await Self.row(name, db).study() }
    }

    /// Studies, newest first; only those in `states` when given.
    public func studies(states: Set<Study.State> = [], limit: Int = 100) async throws -> [Study] {
        let rows = try await database.transaction(readOnly: true) { db in
            var query = db.select().columns("*").from("studies")
            if !states.isEmpty { query = query.where("state", .in, states.map(\.rawValue).sorted()) }
            return try await query.orderBy("id", .descending).limit(limit)
                .all(decoding: StudyRow.self, keyDecodingStrategy: .convertFromSnakeCase)
        }
        return try rows.map { try $0.study() }
    }

    /// The study's trials in order, with their reports.
    public func trials(_ name: String) async throws -> [StudyTrial] {
        try await database.transaction(readOnly: true) { db in
            try await Self.trials(studyID: try await Self.row(name, db).id, db)
        }
    }

    /// Stops a running study: no new trials, and the running trials' jobs asked to cancel.
    public func stop(_ name: String, actor: String) async throws -> Study {
        try await database.transaction { db in
            let row = try await Self.row(name, db, lock: true)
            guard row.state == Study.State.running.rawValue else {
                throw RegistryError(.conflict, "study \(name) is \(row.state); only a running study stops")
            }
            try await db.update("studies").set("state", to: Study.State.stopped.rawValue)
                .set("finished_at", to: Timestamp.now()).set("reason", to: "stopped by \(actor)")
                .where("id", .equal, row.id).run()
            for trial in try await Self.trials(studyID: row.id, db) where ["queued", "running"].contains(trial.state) {
                guard let job = trial.job else { continue }
                try await db.update("jobs").set("cancel_requested", to: 1).where("id", .equal, job).run()
                try await db.update("jobs").set("state", to: Job.State.cancelled.rawValue)
                    .set("finished_at", to: Timestamp.now()).where("id", .equal, job)
                    .where("state", .equal, Job.State.queued.rawValue).run()
                try await JobQueue.log(job, ["study \(name) stopped by \(actor)"], db)
            }
        }
        return try await study(name)
    }

    // MARK: Trials

    /// Under the lock of running study `name`'s row, asks `decide` what to do given the study and its trials, and
    /// does it: queues the proposed trial's job (answering the new trial) or ends the study. Nil when the study is
    /// not running or `decide` waits.
    public func propose(
        _ name: String, actor: String,
        decide: @escaping @Sendable (Study, [StudyTrial]) throws -> Proposal
    ) async throws -> StudyTrial? {
        try await database.transaction { db in
            let row = try await Self.row(name, db, lock: true)
            let study = try row.study()
            guard study.state == .running else { return nil }
            let trials = try await Self.trials(studyID: study.id, db)
            switch try decide(study, trials) {
            case .wait:
                return nil
            case .end(let state, let reason):
                var update = db.update("studies").set("state", to: state.rawValue)
                    .set("finished_at", to: Timestamp.now()).where("id", .equal, study.id)
                if let reason { update = update.set("reason", to: reason) }
                try await update.run()
                return nil
            case .trial(let params, let config):
                let number = (trials.map(\.number).max() ?? -1) + 1
                let now = Timestamp.now()
                let trialID = try await db.insert(into: "trials")
                    .columns("study", "number", "params", "state", "created_at")
                    .values(
                        SQLBind(study.id), SQLBind(number), SQLBind(try params.text()), SQLBind("running"),
                        SQLBind(now)
                    )
                    .returning("id").first()?.decode(column: "id", as: Int.self)
                guard let trialID else {
                    throw RegistryError(.unavailable, "the registry did not return the trial's id")
                }
                // The job knows its trial; a retried job resumes the same trial.
                guard case .object(var fields) = config else {
                    throw RegistryError(.invalid, "a trial's config is an object")
                }
                fields["trial"] = .object([
                    "study": .string(name), "number": .int(Int64(number)), "id": .int(Int64(trialID)),
                ])
                let job = try await JobQueue.insert(
                    kind: "trial", config: try JSONValue.object(fields).text(), maxAttempts: 3, actor: actor, db)
                try await db.update("trials").set("job", to: job).where("id", .equal, trialID).run()
                return try await Self.trials(studyID: study.id, db).first { $0.id == trialID }
            }
        }
    }

    /// Records trial `id`'s value at `step` (a repeated step replaces the earlier value: a retried trial reports
    /// its epochs again) and answers the study's trials as they stand, for the pruner.
    public func report(trial id: Int, step: Int, value: Double) async throws -> [StudyTrial] {
        guard value.isFinite else { throw RegistryError(.invalid, "trial \(id) reported \(value) at step \(step)") }
        return try await database.transaction { db in
            let study = try await Self.studyOf(trial: id, db)
            try await db.delete(from: "trial_reports").where("trial", .equal, id).where("step", .equal, step).run()
            try await db.insert(into: "trial_reports").columns("trial", "step", "value", "at")
                .values(SQLBind(id), SQLBind(step), SQLBind(value), SQLBind(Timestamp.now())).run()
            return try await Self.trials(studyID: study, db)
        }
    }

    /// Records reports of trial `id` that no verdict waits on (steps its pruner does not judge), in one
    /// transaction; a step reported again keeps its last value.
    public func record(trial id: Int, reports: [(step: Int, value: Double)]) async throws {
        guard !reports.isEmpty else { return }
        for report in reports where !report.value.isFinite {
            throw RegistryError(.invalid, "trial \(id) reported \(report.value) at step \(report.step)")
        }
        try await database.transaction { db in
            _ = try await Self.studyOf(trial: id, db)
            try await db.delete(from: "trial_reports").where("trial", .equal, id)
                .where("step", .in, reports.map(\.step)).run()
            var latest: [Int: Double] = [:]
            for report in reports { latest[report.step] = report.value }
            let insert = db.insert(into: "trial_reports").columns("trial", "step", "value", "at")
            let now = Timestamp.now()
            for (step, value) in latest.sorted(by: { $0.key < $1.key }) {
                insert.values(SQLBind(id), SQLBind(step), SQLBind(value), SQLBind(now))
            }
            try await insert.run()
        }
    }

    /// Ends trial `id` as complete (with its objective values), pruned or failed. A trial that already ended keeps
    /// its record (a finished trial never changes).
    public func finish(trial id: Int, state: String, values: [Double]? = nil) async throws {
        guard ["complete", "pruned", "failed"].contains(state) else {
            throw RegistryError(.invalid, "a trial ends complete, pruned or failed, not \(state)")
        }
        if state == "complete" {
            guard let values, values.allSatisfy(\.isFinite) else {
                throw RegistryError(.invalid, "a complete trial needs finite objective values")
            }
        }
        let text = try values.map { try JSONValue.array($0.map { .double($0) }).text() }
        try await database.transaction { db in
            try await db.update("trials").set("state", to: state)
                .set("metric_values", to: text.map { SQLBind($0) } ?? SQLLiteral.null)
                .set("finished_at", to: Timestamp.now()).where("id", .equal, id).where("state", .equal, "running").run()
        }
    }

    // MARK: Helpers

    private static func row(_ name: String, _ db: any SQLDatabase, lock: Bool = false) async throws -> StudyRow {
        var query = db.select().columns("*").from("studies").where("name", .equal, name)
        if lock { query = query.for(.update) }
        guard let row = try await query.first(decoding: StudyRow.self, keyDecodingStrategy: .convertFromSnakeCase)
        else {
            throw RegistryError(.notFound, "no study named '\(name)'")
        }
        return row
    }

    private static func studyOf(trial id: Int, _ db: any SQLDatabase) async throws -> Int {
        guard let row = try await db.select().column("study").from("trials").where("id", .equal, id).first() else {
            throw RegistryError(.notFound, "no trial \(id)")
        }
        return try row.decode(column: "study", as: Int.self)
    }

    static func trials(studyID: Int, _ db: any SQLDatabase) async throws -> [StudyTrial] {
        let rows = try await db.select()
            .column(SQLColumn("id", table: "trials")).column(SQLColumn("number", table: "trials"))
            .column(SQLColumn("params", table: "trials")).column(SQLColumn("job", table: "trials"))
            .column(SQLColumn("state", table: "trials")).column(SQLColumn("metric_values", table: "trials"))
            .column(SQLColumn("created_at", table: "trials")).column(SQLColumn("finished_at", table: "trials"))
            .column(SQLAlias(SQLColumn("state", table: "jobs"), as: SQLIdentifier("job_state")))
            .column(SQLAlias(SQLColumn("error", table: "jobs"), as: SQLIdentifier("job_error")))
            .from("trials")
            .join(
                "jobs", method: SQLJoinMethod.left, on: SQLColumn("job", table: "trials"), .equal,
                SQLColumn("id", table: "jobs")
            )
            .where(SQLColumn("study", table: "trials"), .equal, SQLBind(studyID))
            .orderBy(SQLColumn("number", table: "trials"))
            .all(decoding: TrialRow.self, keyDecodingStrategy: .convertFromSnakeCase)
        let reports = try await db.select().column(SQLColumn("trial", table: "trial_reports"))
            .column(SQLColumn("step", table: "trial_reports")).column(SQLColumn("value", table: "trial_reports"))
            .from("trial_reports")
            .join("trials", on: SQLColumn("trial", table: "trial_reports"), .equal, SQLColumn("id", table: "trials"))
            .where(SQLColumn("study", table: "trials"), .equal, SQLBind(studyID))
            .all(decoding: ReportRow.self)
        var byTrial: [Int: [Int: Double]] = [:]
        for report in reports { byTrial[report.trial, default: [:]][report.step] = report.value }
        return try rows.map { row in
            var state = row.state
            var error: String?
            if state == "running" {
                switch row.jobState {
                case Job.State.queued.rawValue: state = "queued"
                case Job.State.failed.rawValue, Job.State.cancelled.rawValue, nil:
                    state = "failed"
                    error = row.jobError ?? (row.jobState == Job.State.cancelled.rawValue ? "cancelled" : nil)
                default: break
                }
            }
            let values = try row.metricValues.map { text -> [Double] in
                guard case .array(let items) = try JSONValue.parse(text) else { return [] }
                return items.compactMap(\.number)
            }
            return StudyTrial(
                id: row.id, number: row.number, params: try JSONValue.parse(row.params), state: state, job: row.job,
                values: values, reports: byTrial[row.id] ?? [:], createdAt: row.createdAt, finishedAt: row.finishedAt,
                error: error)
        }
    }
}
