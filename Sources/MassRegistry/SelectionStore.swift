public import Foundation
import SQLKit

/// A model selection as the registry keeps it (`mass select`, `GET /admin/v1/selections`).
public struct Selection: Codable, Sendable, Equatable {
    public var id: Int
    public var name: String
    /// The `mass select` document.
    public var config: JSONValue
    /// Every candidate's measures, the Pareto front, the rule's choice.
    public var report: JSONValue
    /// The chosen candidate's name; nil when none met the rule.
    public var winner: String?
    /// What the choice changed in the registry ("rt@3 → alias production", "rt@3 → canary 10 %"), if anything.
    public var promoted: String?
    public var createdBy: String
    /// Milliseconds since 1970.
    public var createdAt: Int
}

/// Selection reports in the registry's database: written whole when a selection has judged its candidates, then
/// the promotion's outcome.
public final class SelectionStore: Sendable {
    public let database: any RegistryDatabase

    public init(database: any RegistryDatabase) { self.database = database }

    struct Row: Codable {
        var id: Int
        var name: String
        var config: String
        var report: String
        var winner: String?
        var promoted: String?
        var createdBy: String
        var createdAt: Int

        func selection() throws -> Selection {
            Selection(
                id: id, name: name, config: try JSONValue.parse(config), report: try JSONValue.parse(report),
                winner: winner, promoted: promoted, createdBy: createdBy, createdAt: createdAt)
        }
    }

    /// Stores a finished selection; a name already used is a conflict.
    @discardableResult
    public func save(
        name: String, config: JSONValue, report: JSONValue, winner: String?, promoted: String?, actor: String
    ) async throws -> Selection {
        try Names.check(subject: name, "selection")
        let (configText, reportText) = (try config.text(), try report.text())
        try await database.transaction { db in
            let existing = try await db.select().column("id").from("selections").where("name", .equal, name).first()
            guard existing == nil else { throw RegistryError(.conflict, "a selection named '\(name)' exists") }
            try await db.insert(into: "selections")
                .columns("name", "config", "report", "winner", "promoted", "created_by", "created_at")
                .values(
                    SQLBind(name), SQLBind(configText), SQLBind(reportText), SQLBind(winner), SQLBind(promoted),
                    SQLBind(actor), SQLBind(Timestamp.now())
                ).run()
        }
        return try await selection(name)
    }

    /// Records what promoting a stored selection's winner did: the promotion (nil when it failed) and the report
    /// that says so. The selection is stored before anything is promoted, so a name taken meanwhile by another run
    /// stops this one before it changes the registry.
    public func recordPromotion(_ name: String, promoted: String?, report: JSONValue) async throws {
        let text = try report.text()
        try await database.transaction { db in
            guard try await db.select().column("id").from("selections").where("name", .equal, name).first() != nil
            else { throw RegistryError(.notFound, "no selection named '\(name)'") }
            try await db.update("selections").set("promoted", to: SQLBind(promoted)).set("report", to: SQLBind(text))
                .where("name", .equal, name).run()
        }
    }

    /// Whether a selection of that name exists (checked before a run spends minutes measuring).
    public func exists(_ name: String) async throws -> Bool {
        try await database.transaction(readOnly: true) { db in
            try await db.select().column("id").from("selections").where("name", .equal, name).first() != nil
        }
    }

    public func selection(_ name: String) async throws -> Selection {
        try await database.transaction(readOnly: true) { db in
            guard
                let row = try await db.select().columns("*").from("selections").where("name", .equal, name)
                    .first(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
            else { throw RegistryError(.notFound, "no selection named '\(name)'") }
            return try row.selection()
        }
    }

    /// Selections, newest first.
    public func selections(limit: Int = 100) async throws -> [Selection] {
        let rows = try await database.transaction(readOnly: true) { db in
            try await db.select().columns("*").from("selections").orderBy("id", .descending).limit(limit)
                .all(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
        }
        return try rows.map { try $0.selection() }
    }
}
