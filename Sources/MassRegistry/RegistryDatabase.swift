public import Foundation
public import SQLKit

/// The database a registry keeps its records in. Every operation is one transaction on one connection: it
/// commits when `body` returns and rolls back when it throws, so a crash or an error half-way leaves nothing
/// half-written.
public protocol RegistryDatabase: Sendable {
    /// "sqlite" or "postgresql".
    var backend: String { get }
    /// Where it is, for messages: the SQLite file's name or the PostgreSQL host, port and database (no password).
    var location: String { get }
    /// `readOnly`: the body only reads (SQLite then takes no write lock; PostgreSQL runs it READ ONLY).
    func transaction<T: Sendable>(
        readOnly: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> T
    ) async throws -> T
    func close() async
}

extension RegistryDatabase {
    /// A transaction that writes.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T)
        async throws -> T
    {
        try await transaction(readOnly: false, body)
    }
}

extension RegistryDatabase {
    /// Backend-specific SQL for "lock this model's row until the transaction ends" comes from SQLKit's dialect
    /// (`FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the write lock).
    var isPostgres: Bool { backend == "postgresql" }
}

public enum RegistryDatabases {
    /// Opens the database a `--registry` value names: `postgres://user:password@host:port/database` (or
    /// `postgresql://`) for PostgreSQL; `sqlite:PATH` or a plain path for an SQLite file (created if missing).
    public static func open(_ url: String) throws -> any RegistryDatabase {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return try PostgresRegistryDatabase(url: url)
        }
        let path = url.hasPrefix("sqlite:") ? String(url.dropFirst("sqlite:".count)) : url
        guard !path.isEmpty else { throw RegistryError(.invalid, "the registry path is empty") }
        return SQLiteRegistryDatabase(path: path.hasPrefix("//") ? String(path.dropFirst(2)) : path)
    }
}
