import Foundation
import SQLKit

/// The registry's tables, as numbered migrations. A database records the migrations it has applied in
/// `mass_schema`; opening a registry applies the missing ones in order, each in its own transaction (a server
/// started against a newer schema than it knows refuses to run instead of guessing).
enum RegistrySchema {
    struct Migration: Sendable {
        let version: Int
        let summary: String
        let apply: @Sendable (any SQLDatabase) async throws -> Void
    }

    static let migrations: [Migration] = [
        Migration(version: 1, summary: "models, versions, files, aliases, tags, metrics, events") { db in
            try await db.create(table: "models")
                .column("name", type: .text, .primaryKey(autoIncrement: false))
                .column("task", type: .text, .notNull)
                .column("description", type: .text)
                .column("created_at", type: .bigint, .notNull)
                .run()
            try await db.create(table: "versions")
                .column("model", type: .text, .notNull, .references("models", "name"))
                .column("version", type: .bigint, .notNull)
                .column("task", type: .text, .notNull)
                .column("architecture", type: .text)
                .column("format", type: .text)
                .column("source_kind", type: .text, .notNull)
                .column("source_uri", type: .text, .notNull)
                .column("source_revision", type: .text)
                .column("parent", type: .bigint)
                .column("dataset", type: .text)
                .column("training_run", type: .text)
                .column("description", type: .text)
                .column("created_at", type: .bigint, .notNull)
                .column("created_by", type: .text, .notNull)
                .primaryKey("model", "version")
                .run()
            try await db.create(table: "files")
                .column("model", type: .text, .notNull)
                .column("version", type: .bigint, .notNull)
                .column("path", type: .text, .notNull)
                .column("sha256", type: .text, .notNull)
                .column("size", type: .bigint, .notNull)
                .primaryKey("model", "version", "path")
                .foreignKey(["model", "version"], references: "versions", ["model", "version"], onDelete: .cascade)
                .run()
            try await db.create(table: "aliases")
                .column("model", type: .text, .notNull, .references("models", "name"))
                .column("alias", type: .text, .notNull)
                .column("version", type: .bigint, .notNull)
                .column("updated_at", type: .bigint, .notNull)
                .primaryKey("model", "alias")
                .foreignKey(["model", "version"], references: "versions", ["model", "version"])
                .run()
            // version 0: a tag of the model itself.
            try await db.create(table: "tags")
                .column("model", type: .text, .notNull, .references("models", "name"))
                .column("version", type: .bigint, .notNull)
                .column("key", type: .text, .notNull)
                .column("value", type: .text, .notNull)
                .primaryKey("model", "version", "key")
                .run()
            try await db.create(table: "metrics")
                .column("model", type: .text, .notNull)
                .column("version", type: .bigint, .notNull)
                .column("key", type: .text, .notNull)
                .column("value", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)  // REAL is 4 bytes in PostgreSQL
                .column("recorded_at", type: .bigint, .notNull)
                .foreignKey(["model", "version"], references: "versions", ["model", "version"], onDelete: .cascade)
                .run()
            // Append-only: rows are inserted, never updated or deleted (not even with their model).
            try await db.create(table: "events")
                .column("id", type: .bigint, .primaryKey(autoIncrement: true))
                .column("model", type: .text, .notNull)
                .column("at", type: .bigint, .notNull)
                .column("actor", type: .text, .notNull)
                .column("kind", type: .text, .notNull)
                .column("version", type: .bigint)
                .column("alias", type: .text)
                .column("from_version", type: .bigint)
                .column("reason", type: .text)
                .run()
            try await db.create(index: "events_by_model").on("events").column("model").column("id").run()
        },
        Migration(version: 2, summary: "deployments") { db in
            // One deployment per registered model; `spec` is a DeploymentSpec as JSON.
            try await db.create(table: "deployments")
                .column("model", type: .text, .primaryKey(autoIncrement: false), .references("models", "name"))
                .column("spec", type: .text, .notNull)
                .column("updated_at", type: .bigint, .notNull)
                .run()
        },
        Migration(version: 3, summary: "tenants, plans, API keys, usage") { db in
            // `spec` is a PlanSpec as JSON.
            try await db.create(table: "plans")
                .column("name", type: .text, .primaryKey(autoIncrement: false))
                .column("spec", type: .text, .notNull)
                .column("updated_at", type: .bigint, .notNull)
                .run()
            try await db.create(table: "tenants")
                .column("name", type: .text, .primaryKey(autoIncrement: false))
                .column("plan", type: .text, .references("plans", "name"))
                .column("description", type: .text)
                .column("created_at", type: .bigint, .notNull)
                .run()
            // Only the secret's sha256 is kept; `roles` and `models` are JSON arrays.
            try await db.create(table: "api_keys")
                .column("prefix", type: .text, .primaryKey(autoIncrement: false))
                .column("hash", type: .text, .notNull, .unique)
                .column("tenant", type: .text, .notNull, .references("tenants", "name", onDelete: .cascade))
                .column("name", type: .text)
                .column("roles", type: .text, .notNull)
                .column("models", type: .text)
                .column("plan", type: .text, .references("plans", "name"))
                .column("created_at", type: .bigint, .notNull)
                .column("expires_at", type: .bigint)
                .column("revoked_at", type: .bigint)
                .run()
            // Append-only audit of every tenancy change; its highest id is the servers' change counter.
            try await db.create(table: "tenancy_events")
                .column("id", type: .bigint, .primaryKey(autoIncrement: true))
                .column("at", type: .bigint, .notNull)
                .column("actor", type: .text, .notNull)
                .column("kind", type: .text, .notNull)
                .column("subject", type: .text, .notNull)
                .run()
            // One row per metered request; `id` makes a retried write a no-op.
            try await db.create(table: "usage")
                .column("id", type: .text, .primaryKey(autoIncrement: false))
                .column("at", type: .bigint, .notNull)
                .column("tenant", type: .text, .notNull)
                .column("key_prefix", type: .text, .notNull)
                .column("model", type: .text, .notNull)
                .column("version", type: .bigint)
                .column("route", type: .text, .notNull)
                .column("status", type: .bigint, .notNull)
                .column("requests", type: .bigint, .notNull)
                .column("tokens", type: .bigint, .notNull)
                .column("audio_seconds", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)
                .column("images", type: .bigint, .notNull)
                .column("units", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)
                .column("queue_ms", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)
                .column("compute_ms", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)
                .run()
            try await db.create(index: "usage_by_time").on("usage").column("at").run()
            try await db.create(index: "usage_by_tenant").on("usage").column("tenant").column("at").run()
        },
        Migration(version: 4, summary: "service pairs (calibration data)") { db in
            // One input answered by a service-type model and by a local candidate; outputs as JSON arrays.
            try await db.create(table: "service_pairs")
                .column("id", type: .bigint, .primaryKey(autoIncrement: true))
                .column("service", type: .text, .notNull)
                .column("candidate", type: .text, .notNull)
                .column("kind", type: .text, .notNull)
                .column("labels", type: .text, .notNull)
                .column("input", type: .text, .notNull)
                .column("service_output", type: .text, .notNull)
                .column("candidate_output", type: .text, .notNull)
                .column("service_ms", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)
                .column("candidate_ms", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)
                .column("origin", type: .text, .notNull)
                .column("at", type: .bigint, .notNull)
                .run()
            try await db.create(index: "service_pairs_by_model").on("service_pairs").column("service")
                .column("candidate").column("id").run()
        },
        Migration(version: 5, summary: "service pairs of transcripts") { db in
            // Speech pairs keep both transcripts as text (their numeric outputs are empty). One column per
            // statement: SQLite alters a table one column at a time.
            for column in ["service_text", "candidate_text"] {
                try await db.alter(table: "service_pairs")
                    .column(column, type: .text, .notNull, .default(SQLLiteral.string(""))).run()
            }
        },
        Migration(version: 6, summary: "jobs and their logs") { db in
            // `config` and `result` are JSON documents; `state` is queued, running, succeeded, failed or cancelled.
            try await db.create(table: "jobs")
                .column("id", type: .bigint, .primaryKey(autoIncrement: true))
                .column("kind", type: .text, .notNull)
                .column("config", type: .text, .notNull)
                .column("state", type: .text, .notNull)
                .column("attempts", type: .bigint, .notNull)
                .column("max_attempts", type: .bigint, .notNull)
                .column("worker", type: .text)
                .column("submitted_by", type: .text, .notNull)
                .column("submitted_at", type: .bigint, .notNull)
                .column("started_at", type: .bigint)
                .column("heartbeat_at", type: .bigint)
                .column("finished_at", type: .bigint)
                .column("cancel_requested", type: .bigint, .notNull)
                .column("progress", type: .text)
                .column("error", type: .text)
                .column("result", type: .text)
                .run()
            try await db.create(index: "jobs_by_state").on("jobs").column("state").column("id").run()
            try await db.create(table: "job_logs")
                .column("id", type: .bigint, .primaryKey(autoIncrement: true))
                .column("job", type: .bigint, .notNull, .references("jobs", "id", onDelete: .cascade))
                .column("at", type: .bigint, .notNull)
                .column("line", type: .text, .notNull)
                .run()
            try await db.create(index: "job_logs_by_job").on("job_logs").column("job").column("id").run()
        },
        Migration(version: 7, summary: "tuning studies, trials and their reports") { db in
            // A study's `config` is its `mass tune` document; `state` is running, finished, failed or stopped.
            try await db.create(table: "studies")
                .column("id", type: .bigint, .primaryKey(autoIncrement: true))
                .column("name", type: .text, .notNull, .unique)
                .column("config", type: .text, .notNull)
                .column("state", type: .text, .notNull)
                .column("created_by", type: .text, .notNull)
                .column("created_at", type: .bigint, .notNull)
                .column("finished_at", type: .bigint)
                .column("reason", type: .text)
                .run()
            // A trial runs as a job; `state` is running until its runner records complete, pruned or failed (a
            // job that failed on its own, as a lost worker's last attempt, reads as failed).
            try await db.create(table: "trials")
                .column("id", type: .bigint, .primaryKey(autoIncrement: true))
                .column("study", type: .bigint, .notNull, .references("studies", "id", onDelete: .cascade))
                .column("number", type: .bigint, .notNull)
                .column("params", type: .text, .notNull)
                .column("job", type: .bigint, .references("jobs", "id", onDelete: .setNull))
                .column("state", type: .text, .notNull)
                .column("metric_values", type: .text)
                .column("created_at", type: .bigint, .notNull)
                .column("finished_at", type: .bigint)
                .run()
            try await db.create(index: "trials_by_number").unique().on("trials").column("study").column("number").run()
            try await db.create(table: "trial_reports")
                .column("trial", type: .bigint, .notNull, .references("trials", "id", onDelete: .cascade))
                .column("step", type: .bigint, .notNull)
                .column("value", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)
                .column("at", type: .bigint, .notNull)
                .run()
            try await db.create(index: "trial_reports_by_step").unique().on("trial_reports").column("trial")
                .column("step").run()
        },
        Migration(version: 8, summary: "model selection reports") { db in
            // A `mass select` run: its document, its report (every candidate's measures, the front, the choice)
            // and what it promoted: written when the candidates are judged, before anything is promoted, and
            // the promotion's outcome recorded after.
            try await db.create(table: "selections")
                .column("id", type: .bigint, .primaryKey(autoIncrement: true))
                .column("name", type: .text, .notNull, .unique)
                .column("config", type: .text, .notNull)
                .column("report", type: .text, .notNull)
                .column("winner", type: .text)
                .column("promoted", type: .text)
                .column("created_by", type: .text, .notNull)
                .column("created_at", type: .bigint, .notNull)
                .run()
        },
    ]

    /// The newest schema this build knows.
    static var latest: Int { migrations.map(\.version).max() ?? 0 }

    /// Applies the migrations `database` lacks. Concurrent starts are safe: each migration runs in a
    /// transaction that first takes the schema lock (PostgreSQL's advisory lock; SQLite's write lock).
    static func migrate(_ database: any RegistryDatabase) async throws {
        struct Applied: Decodable { let version: Int }
        try await database.transaction { db in
            try await db.create(table: "mass_schema").ifNotExists()
                .column("version", type: .bigint, .primaryKey(autoIncrement: false))
                .column("summary", type: .text, .notNull)
                .column("applied_at", type: .bigint, .notNull)
                .run()
        }
        for migration in migrations {
            try await database.transaction { db in
                if database.isPostgres { try await db.raw("SELECT pg_advisory_xact_lock(7262001)").run() }
                let applied = try await db.select().column("version").from("mass_schema").all(decoding: Applied.self)
                let versions = Set(applied.map(\.version))
                if let newest = versions.max(), newest > latest {
                    throw RegistryError(
                        .conflict,
                        "the registry (\(database.location)) has schema \(newest); this mass knows up to \(latest): upgrade mass"
                    )
                }
                guard !versions.contains(migration.version) else { return }
                try await migration.apply(db)
                try await db.insert(into: "mass_schema")
                    .columns("version", "summary", "applied_at")
                    .values(SQLBind(migration.version), SQLBind(migration.summary), SQLBind(Timestamp.now()))
                    .run()
            }
        }
    }
}

enum Timestamp {
    static func now() -> Int { Int((Date().timeIntervalSince1970 * 1000).rounded()) }
}
