public import Foundation
import SQLKit

/// Registered models, their versions, aliases, tags, metrics and an append-only history, over one
/// `RegistryDatabase` (SQLite or PostgreSQL) and one `ArtifactStore`. Every change is one transaction and
/// appends its event in the same transaction, so the history cannot disagree with the state.
public final class ModelRegistry: Sendable {
    public let database: any RegistryDatabase
    public let store: ArtifactStore

    /// Opens a registry, applying any schema migrations the database lacks.
    public static func open(database: any RegistryDatabase, store: ArtifactStore) async throws -> ModelRegistry {
        try await RegistrySchema.migrate(database)
        return ModelRegistry(database: database, store: store)
    }

    private init(database: any RegistryDatabase, store: ArtifactStore) {
        self.database = database
        self.store = store
    }

    public func close() async { await database.close() }

    // MARK: Registering

    /// Registers the files of `folder` as the next version of `name` (creating the model on its first
    /// version). The files are copied into the store first; the version exists only once its single transaction
    /// commits, so an interrupted registration leaves at most unreferenced blobs, never a half-registered version.
    public func register(
        folder: URL, name: String, draft: VersionDraft, alias: String? = nil, actor: String
    ) async throws -> ModelVersion {
        try Names.check(model: name)
        if let alias { try Names.check(alias: alias) }
        guard !draft.task.isEmpty else { throw RegistryError(.invalid, "a version needs a task") }
        let files = try store.ingest(folder: folder)
        let number = try await database.transaction { db in
            let now = Timestamp.now()
            try await db.insert(into: "models")
                .model(
                    ModelRow(name: name, task: draft.task, description: draft.description, createdAt: now),
                    keyEncodingStrategy: .convertToSnakeCase, nilEncodingStrategy: .asNil
                )
                .ignoringConflicts(with: ["name"]).run()
            let model = try await Self.lockModel(name, db)
            guard model.task == draft.task else {
                throw RegistryError(
                    .conflict, "model '\(name)' is a \(model.task) model; this version is \(draft.task)")
            }
            if let parent = draft.parent, try await Self.versionRow(name, parent, db) == nil {
                throw RegistryError(.notFound, "model '\(name)' has no version \(parent) (the parent given)")
            }
            // Numbers are never reused, not even after a delete: the next one follows the history's highest.
            let highest = try await db.select().column(SQLFunction("max", args: SQLColumn("version")), as: "v")
                .from("events").where("model", .equal, name).where("kind", .equal, "registered")
                .first()?.decode(column: "v", as: Int?.self)
            let version = (highest ?? 0) + 1
            try await db.insert(into: "versions")
                .model(
                    VersionRow(
                        model: name, version: version, task: draft.task, architecture: draft.architecture,
                        format: draft.format, sourceKind: draft.source.kind, sourceUri: draft.source.uri,
                        sourceRevision: draft.source.revision, parent: draft.parent, dataset: draft.dataset,
                        trainingRun: draft.trainingRun, description: draft.description, createdAt: now,
                        createdBy: actor),
                    keyEncodingStrategy: .convertToSnakeCase, nilEncodingStrategy: .asNil
                ).run()
            for file in files {
                try await db.insert(into: "files").columns("model", "version", "path", "sha256", "size")
                    .values(
                        SQLBind(name), SQLBind(version), SQLBind(file.path), SQLBind(file.sha256), SQLBind(file.size)
                    )
                    .run()
            }
            for (key, value) in draft.tags.sorted(by: { $0.key < $1.key }) {
                try Names.check(tag: key)
                try await Self.upsertTag(name, version, key, value, db)
            }
            try await Self.append(
                EventDraft(model: name, actor: actor, kind: "registered", version: version), db)
            if let alias { try await Self.moveAlias(name, alias, to: version, kind: "alias_set", actor, nil, db) }
            return version
        }
        return try await version(name, number)
    }

    // MARK: Reading

    public func models() async throws -> [RegisteredModel] {
        try await database.transaction(readOnly: true) { db in
            let names = try await db.select().column("name").from("models").orderBy("name")
                .all(decodingColumn: "name", as: String.self)
            var out: [RegisteredModel] = []
            for name in names { out.append(try await Self.readModel(name, db)) }
            return out
        }
    }

    public func model(_ name: String) async throws -> RegisteredModel {
        try await database.transaction(readOnly: true) { db in try await Self.readModel(name, db) }
    }

    public func version(_ name: String, _ number: Int) async throws -> ModelVersion {
        let model = try await model(name)
        guard let version = model.version(number) else {
            throw RegistryError(.notFound, "model '\(name)' has no version \(number)")
        }
        return version
    }

    /// A version by number ("3") or alias ("production").
    public func version(_ name: String, selector: String) async throws -> ModelVersion {
        if let number = Int(selector) { return try await version(name, number) }
        let model = try await model(name)
        guard let number = model.aliases[selector], let version = model.version(number) else {
            throw RegistryError(.notFound, "model '\(name)' has no alias '\(selector)'")
        }
        return version
    }

    /// The model's history, oldest first.
    public func history(_ name: String) async throws -> [RegistryEvent] {
        try await database.transaction(readOnly: true) { db in
            let rows = try await db.select().columns("*").from("events").where("model", .equal, name)
                .orderBy("id").all(decoding: RegistryEvent.self, keyDecodingStrategy: .convertFromSnakeCase)
            guard !rows.isEmpty else { throw RegistryError(.notFound, "no model '\(name)' in the registry") }
            return rows
        }
    }

    /// The verified folder of a version, ready for a model loader: every file is re-hashed first, and an
    /// altered or missing one is refused with `.integrity` naming it.
    public func folder(_ name: String, _ number: Int) async throws -> URL {
        let version = try await version(name, number)
        try store.verify(version.files, model: name, version: number)
        return try store.materialize(version.files, model: name, version: number)
    }

    // MARK: Aliases, promotion, rollback

    /// Points `alias` at `version`; answers the event (its `fromVersion` is where the alias pointed before).
    @discardableResult
    public func setAlias(
        _ name: String, _ alias: String, to version: Int, actor: String, reason: String? = nil
    ) async throws -> RegistryEvent {
        try Names.check(alias: alias)
        return try await database.transaction { db in
            _ = try await Self.lockModel(name, db)
            return try await Self.moveAlias(name, alias, to: version, kind: "alias_set", actor, reason, db)
        }
    }

    /// `promote`: the same move, recorded as a promotion (default alias `production`).
    @discardableResult
    public func promote(
        _ name: String, version: Int, alias: String = "production", actor: String, reason: String? = nil
    ) async throws -> RegistryEvent {
        try Names.check(alias: alias)
        return try await database.transaction { db in
            _ = try await Self.lockModel(name, db)
            return try await Self.moveAlias(name, alias, to: version, kind: "promoted", actor, reason, db)
        }
    }

    /// Moves `alias` back to the version it held before its current one, walking the history as a stack:
    /// promotions and sets push, rollbacks pop, so rolling back twice after three promotions lands on the first.
    @discardableResult
    public func rollback(
        _ name: String, alias: String = "production", actor: String, reason: String? = nil
    ) async throws -> RegistryEvent {
        try await database.transaction { db in
            _ = try await Self.lockModel(name, db)
            let rows = try await db.select().columns("*").from("events").where("model", .equal, name)
                .where("alias", .equal, alias).orderBy("id")
                .all(decoding: RegistryEvent.self, keyDecodingStrategy: .convertFromSnakeCase)
            var stack: [Int] = []
            for row in rows {
                switch row.kind {
                case "alias_set", "promoted": if let v = row.version { stack.append(v) }
                case "rolled_back": _ = stack.popLast()
                case "alias_deleted": stack.removeAll()
                default: continue
                }
            }
            // Versions deleted since are skipped.
            _ = stack.popLast()
            while let candidate = stack.last, try await Self.versionRow(name, candidate, db) == nil {
                stack.removeLast()
            }
            guard let target = stack.last else {
                throw RegistryError(
                    .conflict, "alias '\(alias)' of model '\(name)' has no earlier version to roll back to")
            }
            return try await Self.moveAlias(name, alias, to: target, kind: "rolled_back", actor, reason, db)
        }
    }

    public func deleteAlias(_ name: String, _ alias: String, actor: String, reason: String? = nil) async throws {
        try await database.transaction { db in
            _ = try await Self.lockModel(name, db)
            guard let current = try await Self.aliasVersion(name, alias, db) else {
                throw RegistryError(.notFound, "model '\(name)' has no alias '\(alias)'")
            }
            if let spec = try await Self.readDeployment(name, db),
                spec.routes.contains(where: { $0.target == alias }) || spec.shadow?.target == alias
            {
                throw RegistryError(
                    .conflict, "the deployment of '\(name)' routes to alias '\(alias)'; change the deployment first")
            }
            try await db.delete(from: "aliases").where("model", .equal, name).where("alias", .equal, alias).run()
            try await Self.append(
                EventDraft(
                    model: name, actor: actor, kind: "alias_deleted", alias: alias, fromVersion: current,
                    reason: reason), db)
        }
    }

    // MARK: Tags and metrics

    /// Sets (or with `value` nil removes) a tag of the model (`version` nil) or of one version.
    public func tag(_ name: String, version: Int?, key: String, value: String?, actor: String) async throws {
        try Names.check(tag: key)
        try await database.transaction { db in
            _ = try await Self.lockModel(name, db)
            if let version, try await Self.versionRow(name, version, db) == nil {
                throw RegistryError(.notFound, "model '\(name)' has no version \(version)")
            }
            if let value {
                try await Self.upsertTag(name, version ?? 0, key, value, db)
            } else {
                try await db.delete(from: "tags").where("model", .equal, name).where("version", .equal, version ?? 0)
                    .where("key", .equal, key).run()
            }
            try await Self.append(
                EventDraft(
                    model: name, actor: actor, kind: "tagged", version: version, reason: "\(key)=\(value ?? "")"),
                db)
        }
    }

    /// Attaches a measurement to a version (accuracy, p99 latency, shadow agreement); the latest value of each
    /// key is the version's metric, every value stays in the table.
    public func recordMetric(_ name: String, version: Int, key: String, value: Double, actor: String) async throws {
        try Names.check(tag: key)
        guard value.isFinite else { throw RegistryError(.invalid, "metric '\(key)' must be a finite number") }
        try await database.transaction { db in
            guard try await Self.versionRow(name, version, db) != nil else {
                throw RegistryError(.notFound, "model '\(name)' has no version \(version)")
            }
            try await db.insert(into: "metrics").columns("model", "version", "key", "value", "recorded_at")
                .values(SQLBind(name), SQLBind(version), SQLBind(key), SQLBind(value), SQLBind(Timestamp.now()))
                .run()
            try await Self.append(
                EventDraft(model: name, actor: actor, kind: "metric", version: version, reason: "\(key)=\(value)"), db)
        }
    }

    // MARK: Deleting

    /// Deletes a version; refused while an alias points at it (aliases are what deployments route to).
    /// Its blobs stay until `collectGarbage`, since another version may share them.
    public func deleteVersion(_ name: String, _ version: Int, actor: String, reason: String? = nil) async throws {
        try await database.transaction { db in
            _ = try await Self.lockModel(name, db)
            guard try await Self.versionRow(name, version, db) != nil else {
                throw RegistryError(.notFound, "model '\(name)' has no version \(version)")
            }
            let aliases = try await db.select().column("alias").from("aliases").where("model", .equal, name)
                .where("version", .equal, version).orderBy("alias").all(decodingColumn: "alias", as: String.self)
            guard aliases.isEmpty else {
                throw RegistryError(
                    .conflict,
                    "model '\(name)' version \(version) serves traffic through alias \(aliases.map { "'\($0)'" }.joined(separator: ", ")); move or delete the alias first"
                )
            }
            if let spec = try await Self.readDeployment(name, db),
                spec.routes.contains(where: { $0.target == String(version) }) || spec.shadow?.target == String(version)
            {
                throw RegistryError(
                    .conflict,
                    "model '\(name)' version \(version) serves traffic in its deployment; change the deployment first")
            }
            try await db.delete(from: "tags").where("model", .equal, name).where("version", .equal, version).run()
            try await db.delete(from: "metrics").where("model", .equal, name).where("version", .equal, version).run()
            try await db.delete(from: "files").where("model", .equal, name).where("version", .equal, version).run()
            try await db.delete(from: "versions").where("model", .equal, name).where("version", .equal, version)
                .run()
            try await Self.append(
                EventDraft(model: name, actor: actor, kind: "version_deleted", version: version, reason: reason), db)
        }
    }

    /// Deletes blobs (older than `minimumAge` seconds) and version folders no registered version refers to;
    /// answers the bytes freed.
    @discardableResult
    public func collectGarbage(minimumAge: TimeInterval = 600) async throws -> Int {
        let (hashes, trees) = try await database.transaction { db in
            let files = try await db.select().columns("model", "version", "sha256").from("files")
                .all(decoding: FileKey.self)
            return (Set(files.map(\.sha256)), Set(files.map { "\($0.model)/\($0.version)" }))
        }
        return try store.collect(keep: hashes, trees: trees, minimumAge: minimumAge)
    }

    // MARK: Rows and helpers (inside a transaction)

    private static func lockModel(_ name: String, _ db: any SQLDatabase) async throws -> ModelRow {
        guard
            let row = try await db.select().columns("*").from("models").where("name", .equal, name).for(.update)
                .first(decoding: ModelRow.self, keyDecodingStrategy: .convertFromSnakeCase)
        else { throw RegistryError(.notFound, "no model '\(name)' in the registry") }
        return row
    }

    private static func versionRow(_ name: String, _ version: Int, _ db: any SQLDatabase) async throws -> VersionRow? {
        try await db.select().columns("*").from("versions").where("model", .equal, name)
            .where("version", .equal, version)
            .first(decoding: VersionRow.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    private static func aliasVersion(_ name: String, _ alias: String, _ db: any SQLDatabase) async throws -> Int? {
        try await db.select().column("version").from("aliases").where("model", .equal, name)
            .where("alias", .equal, alias).first(decodingColumn: "version", as: Int.self)
    }

    private static func moveAlias(
        _ name: String, _ alias: String, to version: Int, kind: String, _ actor: String, _ reason: String?,
        _ db: any SQLDatabase
    ) async throws -> RegistryEvent {
        guard try await versionRow(name, version, db) != nil else {
            throw RegistryError(.notFound, "model '\(name)' has no version \(version)")
        }
        let previous = try await aliasVersion(name, alias, db)
        try await db.insert(into: "aliases").columns("model", "alias", "version", "updated_at")
            .values(SQLBind(name), SQLBind(alias), SQLBind(version), SQLBind(Timestamp.now()))
            .onConflict(with: ["model", "alias"]) {
                $0.set(excludedValueOf: "version").set(excludedValueOf: "updated_at")
            }
            .run()
        return try await append(
            EventDraft(
                model: name, actor: actor, kind: kind, version: version, alias: alias, fromVersion: previous,
                reason: reason), db)
    }

    private static func upsertTag(
        _ name: String, _ version: Int, _ key: String, _ value: String, _ db: any SQLDatabase
    ) async throws {
        try await db.insert(into: "tags").columns("model", "version", "key", "value")
            .values(SQLBind(name), SQLBind(version), SQLBind(key), SQLBind(value))
            .onConflict(with: ["model", "version", "key"]) { $0.set(excludedValueOf: "value") }
            .run()
    }

    static func appendEvent(
        _ name: String, actor: String, kind: String, reason: String?, _ db: any SQLDatabase
    ) async throws {
        try await append(EventDraft(model: name, actor: actor, kind: kind, reason: reason), db)
    }

    @discardableResult
    private static func append(_ draft: EventDraft, _ db: any SQLDatabase) async throws -> RegistryEvent {
        var draft = draft
        draft.at = Timestamp.now()
        try await db.insert(into: "events")
            .model(draft, keyEncodingStrategy: .convertToSnakeCase, nilEncodingStrategy: .asNil).run()
        let id =
            try await db.select().column(SQLFunction("max", args: SQLColumn("id")), as: "id").from("events")
            .where("model", .equal, draft.model).first()?.decode(column: "id", as: Int.self) ?? 0
        return RegistryEvent(
            id: id, model: draft.model, at: draft.at, actor: draft.actor, kind: draft.kind, version: draft.version,
            alias: draft.alias, fromVersion: draft.fromVersion, reason: draft.reason)
    }

    static func readModel(_ name: String, _ db: any SQLDatabase) async throws -> RegisteredModel {
        guard
            let model = try await db.select().columns("*").from("models").where("name", .equal, name)
                .first(decoding: ModelRow.self, keyDecodingStrategy: .convertFromSnakeCase)
        else { throw RegistryError(.notFound, "no model '\(name)' in the registry") }
        let versions = try await db.select().columns("*").from("versions").where("model", .equal, name)
            .orderBy("version").all(decoding: VersionRow.self, keyDecodingStrategy: .convertFromSnakeCase)
        let files = try await db.select().columns("version", "path", "sha256", "size").from("files")
            .where("model", .equal, name).orderBy("version").orderBy("path").all(decoding: FileRow.self)
        let tags = try await db.select().columns("version", "key", "value").from("tags")
            .where("model", .equal, name).all(decoding: TagRow.self)
        let metrics = try await db.select().columns("version", "key", "value", "recorded_at").from("metrics")
            .where("model", .equal, name).orderBy("recorded_at")
            .all(decoding: MetricRow.self, keyDecodingStrategy: .convertFromSnakeCase)
        let aliases = try await db.select().columns("alias", "version").from("aliases")
            .where("model", .equal, name).all(decoding: AliasRow.self)
        let filesByVersion = Dictionary(grouping: files, by: \.version)
        let tagsByVersion = Dictionary(grouping: tags, by: \.version)
        let metricsByVersion = Dictionary(grouping: metrics, by: \.version)
        return RegisteredModel(
            name: model.name, task: model.task, description: model.description, createdAt: model.createdAt,
            versions: versions.map { row in
                ModelVersion(
                    model: name, version: row.version, task: row.task, architecture: row.architecture,
                    format: row.format,
                    source: VersionSource(kind: row.sourceKind, uri: row.sourceUri, revision: row.sourceRevision),
                    parent: row.parent, dataset: row.dataset, trainingRun: row.trainingRun,
                    description: row.description, createdAt: row.createdAt, createdBy: row.createdBy,
                    files: (filesByVersion[row.version] ?? []).map {
                        VersionFile(path: $0.path, sha256: $0.sha256, size: $0.size)
                    },
                    tags: Dictionary((tagsByVersion[row.version] ?? []).map { ($0.key, $0.value) }) { $1 },
                    metrics: Dictionary((metricsByVersion[row.version] ?? []).map { ($0.key, $0.value) }) { $1 })
            },
            aliases: Dictionary(aliases.map { ($0.alias, $0.version) }) { $1 },
            tags: Dictionary((tagsByVersion[0] ?? []).map { ($0.key, $0.value) }) { $1 })
    }
}

/// The rules for names: a model or alias is 1-128 of letters, digits, '.', '_' and '-', starting with a letter
/// or digit; an alias is not all digits (that would read as a version number).
enum Names {
    static func check(model name: String) throws {
        guard valid(name) else {
            throw RegistryError(
                .invalid,
                "model name '\(name)' must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
    }

    /// A tenant's or plan's name: the same rules as a model's.
    static func check(subject name: String, _ what: String) throws {
        guard valid(name) else {
            throw RegistryError(
                .invalid,
                "\(what) name '\(name)' must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        }
    }

    static func check(alias: String) throws {
        guard valid(alias), Int(alias) == nil else {
            throw RegistryError(
                .invalid, "alias '\(alias)' must be 1-128 letters, digits, '.', '_' or '-', and not a number")
        }
    }

    static func check(tag key: String) throws {
        guard !key.isEmpty, key.utf8.count <= 256 else {
            throw RegistryError(.invalid, "a tag or metric key must be 1-256 bytes")
        }
    }

    private static func valid(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 128 else { return false }
        func ascii(_ s: Unicode.Scalar) -> Bool { s.isASCII && (CharacterSet.alphanumerics.contains(s)) }
        return ascii(first) && name.unicodeScalars.allSatisfy { ascii($0) || $0 == "." || $0 == "_" || $0 == "-" }
    }
}

private struct ModelRow: Codable {
    let name: String
    let task: String
    let description: String?
    let createdAt: Int
}

private struct VersionRow: Codable {
    let model: String
    let version: Int
    let task: String
    let architecture: String?
    let format: String?
    let sourceKind: String
    let sourceUri: String
    let sourceRevision: String?
    let parent: Int?
    let dataset: String?
    let trainingRun: String?
    let description: String?
    let createdAt: Int
    let createdBy: String
}

private struct FileRow: Decodable {
    let version: Int
    let path: String
    let sha256: String
    let size: Int
}

private struct FileKey: Decodable {
    let model: String
    let version: Int
    let sha256: String
}

private struct TagRow: Decodable {
    let version: Int
    let key: String
    let value: String
}

private struct MetricRow: Decodable {
    let version: Int
    let key: String
    let value: Double
    let recordedAt: Int
}

private struct AliasRow: Decodable {
    let alias: String
    let version: Int
}

/// An event before it is stored: the row the `events` table gets (its id comes from the database).
private struct EventDraft: Encodable {
    var model: String
    var actor: String
    var kind: String
    var version: Int? = nil
    var alias: String? = nil
    var fromVersion: Int? = nil
    var reason: String? = nil
    var at = 0
}
