import Crypto
public import Foundation
import SQLKit

/// Tenants, plans, API keys and the usage ledger, in the registry's database. Every change is one transaction
/// that also appends a `tenancy_events` row (the audit trail, and the counter servers poll to reload).
public final class TenancyStore: Sendable {
    public let database: any RegistryDatabase

    /// The store over a registry's database (migrated by `ModelRegistry.open`).
    public init(database: any RegistryDatabase) { self.database = database }

    // MARK: Plans

    public func setPlan(_ name: String, _ spec: PlanSpec, actor: String) async throws -> Plan {
        try Names.check(subject: name, "plan")
        try spec.validate()
        let json = try Self.json(spec)
        let now = Timestamp.now()
        try await database.transaction { db in
            let exists = try await db.select().column("name").from("plans").where("name", .equal, name).first() != nil
            if exists {
                try await db.update("plans").set("spec", to: SQLBind(json)).set("updated_at", to: SQLBind(now))
                    .where("name", .equal, name).run()
            } else {
                try await db.insert(into: "plans").columns("name", "spec", "updated_at")
                    .values(SQLBind(name), SQLBind(json), SQLBind(now)).run()
            }
            try await Self.audit(actor, exists ? "plan_updated" : "plan_created", name, db)
        }
        return Plan(name: name, spec: spec, updatedAt: now)
    }

    public func plans() async throws -> [Plan] {
        try await database.transaction(readOnly: true) { db in try await Self.readPlans(db) }
    }

    public func deletePlan(_ name: String, actor: String) async throws {
        try await database.transaction { db in
            guard try await db.select().column("name").from("plans").where("name", .equal, name).first() != nil
            else { throw RegistryError(.notFound, "no plan '\(name)'") }
            let users = try await db.select().column("name").from("tenants").where("plan", .equal, name)
                .all(decodingColumn: "name", as: String.self)
            let keyUsers = try await db.select().column("prefix").from("api_keys").where("plan", .equal, name)
                .all(decodingColumn: "prefix", as: String.self)
            guard users.isEmpty, keyUsers.isEmpty else {
                throw RegistryError(
                    .conflict, "plan '\(name)' is in use by \((users + keyUsers).joined(separator: ", "))")
            }
            try await db.delete(from: "plans").where("name", .equal, name).run()
            try await Self.audit(actor, "plan_deleted", name, db)
        }
    }

    // MARK: Tenants

    public func createTenant(_ name: String, plan: String?, description: String?, actor: String) async throws
        -> Tenant
    {
        try Names.check(subject: name, "tenant")
        let tenant = Tenant(name: name, plan: plan, description: description, createdAt: Timestamp.now())
        try await database.transaction { db in
            if let plan { try await Self.requirePlan(plan, db) }
            guard try await db.select().column("name").from("tenants").where("name", .equal, name).first() == nil
            else { throw RegistryError(.conflict, "tenant '\(name)' exists") }
            try await db.insert(into: "tenants").columns("name", "plan", "description", "created_at")
                .values(SQLBind(name), SQLBind(plan), SQLBind(description), SQLBind(tenant.createdAt)).run()
            try await Self.audit(actor, "tenant_created", name, db)
        }
        return tenant
    }

    /// Moves a tenant to another plan (nil: unlimited).
    public func setTenantPlan(_ name: String, plan: String?, actor: String) async throws -> Tenant {
        try await database.transaction { db in
            if let plan { try await Self.requirePlan(plan, db) }
            guard var tenant = try await Self.readTenant(name, db) else {
                throw RegistryError(.notFound, "no tenant '\(name)'")
            }
            try await db.update("tenants").set("plan", to: SQLBind(plan)).where("name", .equal, name).run()
            try await Self.audit(actor, "tenant_plan_set", "\(name) \(plan ?? "-")", db)
            tenant.plan = plan
            return tenant
        }
    }

    public func tenants() async throws -> [Tenant] {
        try await database.transaction(readOnly: true) { db in try await Self.readTenants(db) }
    }

    public func tenant(_ name: String) async throws -> Tenant {
        try await database.transaction(readOnly: true) { db in
            guard let tenant = try await Self.readTenant(name, db) else {
                throw RegistryError(.notFound, "no tenant '\(name)'")
            }
            return tenant
        }
    }

    /// Deletes a tenant and its keys (its usage records stay: the ledger is never rewritten).
    public func deleteTenant(_ name: String, actor: String) async throws {
        try await database.transaction { db in
            guard try await Self.readTenant(name, db) != nil else {
                throw RegistryError(.notFound, "no tenant '\(name)'")
            }
            try await db.delete(from: "api_keys").where("tenant", .equal, name).run()
            try await db.delete(from: "tenants").where("name", .equal, name).run()
            try await Self.audit(actor, "tenant_deleted", name, db)
        }
    }

    // MARK: Keys

    /// What a new key may do.
    public struct KeyDraft: Sendable {
        public var name: String?
        public var roles: [String]
        public var models: [String]?
        public var plan: String?
        /// Milliseconds since 1970.
        public var expiresAt: Int?

        public init(
            name: String? = nil, roles: [String] = ["inference"], models: [String]? = nil, plan: String? = nil,
            expiresAt: Int? = nil
        ) {
            self.name = name
            self.roles = roles
            self.models = models
            self.plan = plan
            self.expiresAt = expiresAt
        }
    }

    /// Creates a key for `tenant`; the secret is returned here once and never again.
    public func createKey(tenant: String, _ draft: KeyDraft, actor: String) async throws -> (
        key: APIKey, secret: String
    ) {
        guard !draft.roles.isEmpty, draft.roles.allSatisfy(APIKey.roles.contains) else {
            throw RegistryError(.invalid, "a key's roles are one or both of inference, admin")
        }
        if let models = draft.models, models.isEmpty {
            throw RegistryError(.invalid, "a key limited to models must name at least one")
        }
        return try await database.transaction { db in
            guard try await Self.readTenant(tenant, db) != nil else {
                throw RegistryError(.notFound, "no tenant '\(tenant)'")
            }
            if let plan = draft.plan { try await Self.requirePlan(plan, db) }
            let (key, secret, hash) = try await Self.newKey(tenant: tenant, draft, db)
            try await Self.insert(key, hash: hash, db)
            try await Self.audit(actor, "key_created", "\(key.prefix) \(tenant)", db)
            return (key, secret)
        }
    }

    public func keys(tenant: String? = nil) async throws -> [APIKey] {
        try await database.transaction(readOnly: true) { db in
            try await Self.readKeys(tenant: tenant, db).map(\.key)
        }
    }

    /// Revokes a key at once: servers refuse it from their next request (this server's admin API) or their
    /// next reload (others, within a second).
    public func revokeKey(_ prefix: String, actor: String) async throws -> APIKey {
        try await database.transaction { db in
            guard var key = try await Self.readKey(prefix, db) else {
                throw RegistryError(.notFound, "no API key '\(prefix)'")
            }
            guard key.revokedAt == nil else { return key }
            let now = Timestamp.now()
            try await db.update("api_keys").set("revoked_at", to: SQLBind(now)).where("prefix", .equal, prefix).run()
            try await Self.audit(actor, "key_revoked", prefix, db)
            key.revokedAt = now
            return key
        }
    }

    /// A new key with the old one's tenant, roles, models and plan; the old key keeps working for
    /// `grace` seconds (0: it stops now), then expires.
    public func rotateKey(_ prefix: String, grace: Int, actor: String) async throws -> (
        key: APIKey, secret: String, old: APIKey
    ) {
        guard grace >= 0 else { throw RegistryError(.invalid, "the grace period must be >= 0 seconds") }
        return try await database.transaction { db in
            guard var old = try await Self.readKey(prefix, db) else {
                throw RegistryError(.notFound, "no API key '\(prefix)'")
            }
            guard old.revokedAt == nil else { throw RegistryError(.conflict, "API key '\(prefix)' is revoked") }
            let now = Timestamp.now()
            if let expires = old.expiresAt, expires <= now {
                throw RegistryError(.conflict, "API key '\(prefix)' has expired")
            }
            let draft = KeyDraft(
                name: old.name, roles: old.roles, models: old.models, plan: old.plan, expiresAt: old.expiresAt)
            let (key, secret, hash) = try await Self.newKey(tenant: old.tenant, draft, db)
            try await Self.insert(key, hash: hash, db)
            let ends = min(old.expiresAt ?? Int.max, now + grace * 1000)
            try await db.update("api_keys").set("expires_at", to: SQLBind(ends)).where("prefix", .equal, prefix).run()
            old.expiresAt = ends
            try await Self.audit(actor, "key_rotated", "\(prefix) \(key.prefix)", db)
            return (key, secret, old)
        }
    }

    /// The sha256 (hex) a key's secret is stored as.
    public static func hash(_ secret: String) -> String {
        Hex.string(SHA256.hash(data: Data(secret.utf8)))
    }

    // MARK: Reading it all

    /// Tenants, plans and keys as of one transaction.
    public func snapshot() async throws -> TenancySnapshot {
        try await database.transaction(readOnly: true) { db in
            TenancySnapshot(
                tenants: try await Self.readTenants(db), plans: try await Self.readPlans(db),
                keys: try await Self.readKeys(tenant: nil, db), version: try await Self.counter(db))
        }
    }

    /// Increases with every tenancy change.
    public func changeCounter() async throws -> Int {
        try await database.transaction(readOnly: true) { db in try await Self.counter(db) }
    }

    // MARK: Usage

    /// Appends usage records; records already written (same id) are skipped, so a retried batch counts once.
    public func record(_ records: [UsageRecord]) async throws {
        guard !records.isEmpty else { return }
        try await database.transaction { db in
            for chunk in stride(from: 0, to: records.count, by: 200) {
                let slice = records[chunk..<min(chunk + 200, records.count)]
                // Binds row by row: SQLKit's Codable `model` path renames every key of every row, and a server
                // writes a row per request.
                let insert = db.insert(into: "usage").columns(UsageRecord.columns)
                for r in slice {
                    insert.values(
                        [
                            SQLBind(r.id), SQLBind(r.at), SQLBind(r.tenant), SQLBind(r.keyPrefix), SQLBind(r.model),
                            SQLBind(r.version), SQLBind(r.route), SQLBind(r.status), SQLBind(r.requests),
                            SQLBind(r.tokens), SQLBind(r.audioSeconds), SQLBind(r.images), SQLBind(r.units),
                            SQLBind(r.queueMs), SQLBind(r.computeMs),
                        ] as [any SQLExpression])
                }
                try await insert.ignoringConflicts(with: ["id"]).run()
            }
        }
    }

    /// Totals per bucket and group between `query.start` and `query.end`.
    public func usage(_ query: UsageQuery) async throws -> [UsageTotal] {
        let groups: [(String, String)] = try query.groupBy.map { name in
            switch name {
            case "tenant": return ("tenant", "tenant")
            case "key", "api_key", "key_prefix": return ("key_prefix", "key_prefix")
            case "model": return ("model", "model")
            case "route": return ("route", "route")
            default: throw RegistryError(.invalid, "group_by '\(name)': one of tenant, key, model, route")
            }
        }
        guard query.bucketSeconds > 0 else { throw RegistryError(.invalid, "the bucket width must be positive") }
        let width = query.bucketSeconds * 1000
        return try await database.transaction(readOnly: true) { db in
            let bucket = SQLRaw("(at / \(width)) * \(width)")
            var select = db.select().column(SQLAlias(bucket, as: SQLIdentifier("bucket")))
            for (column, _) in groups { select = select.column(SQLColumn(column)) }
            // Sums as DOUBLE PRECISION on both backends (PostgreSQL's sum of bigint is numeric).
            for column in ["requests", "tokens", "audio_seconds", "images", "units"] {
                select = select.column(
                    SQLAlias(SQLRaw("CAST(sum(\(column)) AS DOUBLE PRECISION)"), as: SQLIdentifier(column)))
            }
            select =
                select
                .column(
                    SQLAlias(
                        SQLRaw("CAST(sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS DOUBLE PRECISION)"),
                        as: SQLIdentifier("failed"))
                )
                .from("usage")
                .where("at", .greaterThanOrEqual, SQLBind(query.start * 1000))
                .where("at", .lessThan, SQLBind(query.end * 1000))
            if let tenant = query.tenant { select = select.where("tenant", .equal, SQLBind(tenant)) }
            select = select.groupBy(bucket)
            for (column, _) in groups { select = select.groupBy(SQLColumn(column)) }
            select = select.orderBy(bucket)
            for (column, _) in groups { select = select.orderBy(SQLColumn(column)) }
            let names = Set(groups.map(\.0))
            return try await select.all().map { row in
                UsageTotal(
                    bucketStart: try row.decode(column: "bucket", as: Int.self) / 1000,
                    tenant: names.contains("tenant") ? try row.decode(column: "tenant", as: String.self) : nil,
                    keyPrefix: names.contains("key_prefix")
                        ? try row.decode(column: "key_prefix", as: String.self) : nil,
                    model: names.contains("model") ? try row.decode(column: "model", as: String.self) : nil,
                    route: names.contains("route") ? try row.decode(column: "route", as: String.self) : nil,
                    requests: Int(try row.decode(column: "requests", as: Double.self)),
                    tokens: Int(try row.decode(column: "tokens", as: Double.self)),
                    audioSeconds: try row.decode(column: "audio_seconds", as: Double.self),
                    images: Int(try row.decode(column: "images", as: Double.self)),
                    units: try row.decode(column: "units", as: Double.self),
                    failed: Int(try row.decode(column: "failed", as: Double.self)))
            }
        }
    }

    /// Every record of a period, oldest first (for exports and tests).
    public func records(since start: Int, until end: Int, tenant: String? = nil) async throws -> [UsageRecord] {
        try await database.transaction(readOnly: true) { db in
            var select = db.select().columns("*").from("usage")
                .where("at", .greaterThanOrEqual, SQLBind(start * 1000)).where("at", .lessThan, SQLBind(end * 1000))
            if let tenant { select = select.where("tenant", .equal, SQLBind(tenant)) }
            return try await select.orderBy("at").orderBy("id")
                .all(decoding: UsageRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
        }
    }

    // MARK: Rows

    private static func json(_ spec: PlanSpec) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(spec), as: UTF8.self)
    }

    private static func audit(_ actor: String, _ kind: String, _ subject: String, _ db: any SQLDatabase) async throws {
        try await db.insert(into: "tenancy_events").columns("at", "actor", "kind", "subject")
            .values(SQLBind(Timestamp.now()), SQLBind(actor), SQLBind(kind), SQLBind(subject)).run()
    }

    private static func counter(_ db: any SQLDatabase) async throws -> Int {
        try await db.select().column(SQLFunction("max", args: SQLColumn("id")), as: "id").from("tenancy_events")
            .first()?.decode(column: "id", as: Int?.self) ?? 0
    }

    private static func requirePlan(_ name: String, _ db: any SQLDatabase) async throws {
        guard try await db.select().column("name").from("plans").where("name", .equal, name).first() != nil else {
            throw RegistryError(.notFound, "no plan '\(name)'")
        }
    }

    private static func readPlans(_ db: any SQLDatabase) async throws -> [Plan] {
        try await db.select().columns("name", "spec", "updated_at").from("plans").orderBy("name").all().map { row in
            let json = try row.decode(column: "spec", as: String.self)
            let name = try row.decode(column: "name", as: String.self)
            guard let spec = try? JSONDecoder().decode(PlanSpec.self, from: Data(json.utf8)) else {
                throw RegistryError(.integrity, "plan '\(name)' is stored as unreadable JSON")
            }
            return Plan(name: name, spec: spec, updatedAt: try row.decode(column: "updated_at", as: Int.self))
        }
    }

    private struct TenantRow: Decodable {
        let name: String
        let plan: String?
        let description: String?
        let createdAt: Int
    }

    private static func readTenants(_ db: any SQLDatabase) async throws -> [Tenant] {
        try await db.select().columns("*").from("tenants").orderBy("name")
            .all(decoding: TenantRow.self, keyDecodingStrategy: .convertFromSnakeCase)
            .map { Tenant(name: $0.name, plan: $0.plan, description: $0.description, createdAt: $0.createdAt) }
    }

    private static func readTenant(_ name: String, _ db: any SQLDatabase) async throws -> Tenant? {
        try await db.select().columns("*").from("tenants").where("name", .equal, name)
            .first(decoding: TenantRow.self, keyDecodingStrategy: .convertFromSnakeCase)
            .map { Tenant(name: $0.name, plan: $0.plan, description: $0.description, createdAt: $0.createdAt) }
    }

    private struct KeyRow: Codable {
        let prefix: String
        let hash: String
        let tenant: String
        let name: String?
        let roles: String
        let models: String?
        let plan: String?
        let createdAt: Int
        let expiresAt: Int?
        let revokedAt: Int?

        var key: APIKey {
            APIKey(
                prefix: prefix, tenant: tenant, name: name,
                roles: (try? JSONDecoder().decode([String].self, from: Data(roles.utf8))) ?? [],
                models: models.flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) },
                plan: plan, createdAt: createdAt, expiresAt: expiresAt, revokedAt: revokedAt)
        }
    }

    private static func readKeys(tenant: String?, _ db: any SQLDatabase) async throws -> [(key: APIKey, hash: String)] {
        var select = db.select().columns("*").from("api_keys")
        if let tenant { select = select.where("tenant", .equal, SQLBind(tenant)) }
        return try await select.orderBy("tenant").orderBy("created_at").orderBy("prefix")
            .all(decoding: KeyRow.self, keyDecodingStrategy: .convertFromSnakeCase)
            .map { ($0.key, $0.hash) }
    }

    private static func readKey(_ prefix: String, _ db: any SQLDatabase) async throws -> APIKey? {
        try await db.select().columns("*").from("api_keys").where("prefix", .equal, prefix)
            .first(decoding: KeyRow.self, keyDecodingStrategy: .convertFromSnakeCase)?.key
    }

    /// A fresh secret: `mass_` and 48 hex digits (24 bytes from the system's CSPRNG); its prefix is unique.
    private static func newKey(tenant: String, _ draft: KeyDraft, _ db: any SQLDatabase) async throws -> (
        APIKey, String, String
    ) {
        for _ in 0..<8 {
            var generator = SystemRandomNumberGenerator()
            let bytes = (0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let secret = "mass_" + Hex.string(bytes)
            let prefix = String(secret.prefix(13))
            guard try await readKey(prefix, db) == nil else { continue }
            let key = APIKey(
                prefix: prefix, tenant: tenant, name: draft.name, roles: draft.roles.sorted(), models: draft.models,
                plan: draft.plan, createdAt: Timestamp.now(), expiresAt: draft.expiresAt, revokedAt: nil)
            return (key, secret, hash(secret))
        }
        throw RegistryError(.conflict, "could not draw an unused key prefix")
    }

    private static func insert(_ key: APIKey, hash: String, _ db: any SQLDatabase) async throws {
        let encoder = JSONEncoder()
        let roles = String(decoding: try encoder.encode(key.roles), as: UTF8.self)
        let models = try key.models.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        try await db.insert(into: "api_keys")
            .model(
                KeyRow(
                    prefix: key.prefix, hash: hash, tenant: key.tenant, name: key.name, roles: roles, models: models,
                    plan: key.plan, createdAt: key.createdAt, expiresAt: key.expiresAt, revokedAt: key.revokedAt),
                keyEncodingStrategy: .convertToSnakeCase, nilEncodingStrategy: .asNil
            ).run()
    }
}
