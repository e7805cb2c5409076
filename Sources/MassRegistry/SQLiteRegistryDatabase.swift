import Foundation
import Logging
import SQLKit
import SQLiteKit

/// The embedded backend: one SQLite file. Each transaction opens its own connection and starts with
/// `BEGIN IMMEDIATE`, so writers (in this process or another `mass` process) take turns on SQLite's file lock,
/// waiting up to `busy_timeout` for it, and readers never see half a transaction (WAL journal). Within one
/// process transactions also queue on `turn`: SQLite's busy wait blocks a thread of NIO's small thread pool,
/// and enough waiters would leave the lock holder no thread to commit on.
final class SQLiteRegistryDatabase: RegistryDatabase {
    let path: String
    let backend = "sqlite"
    var location: String { "sqlite file \(URL(fileURLWithPath: path).lastPathComponent)" }
    private let logger: Logger
    private let turn = AsyncLock()

    init(path: String, logger: Logger = Logger(label: "mass.registry.sqlite")) {
        self.path = path
        self.logger = logger
    }

    func transaction<T: Sendable>(
        readOnly: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> T
    ) async throws -> T {
        try await turn.withLock { try await self.run(readOnly: readOnly, body) }
    }

    private func run<T: Sendable>(
        readOnly: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> T
    ) async throws -> T {
        let connection: SQLiteConnection
        do {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw RegistryError(.unavailable, "cannot open the registry (\(location))", detail: "\(error)")
        }
        let db = connection.sql()
        do {
            try await db.raw("PRAGMA busy_timeout = 10000").run()
            try await db.raw("PRAGMA foreign_keys = ON").run()
            if readOnly {
                try await db.raw("BEGIN").run()
            } else {
                // WAL (kept in the file once set): readers do not wait for a writer, nor it for them.
                try await db.raw("PRAGMA journal_mode = WAL").run()
                try await db.raw("BEGIN IMMEDIATE").run()
            }
        } catch {
            try? await connection.close()
            throw RegistryError(.unavailable, "the registry (\(location)) is busy or unreadable", detail: "\(error)")
        }
        do {
            let result = try await body(db)
            try await db.raw("COMMIT").run()
            try await connection.close()
            return result
        } catch {
            try? await db.raw("ROLLBACK").run()
            try? await connection.close()
            throw Self.map(error, location: location)
        }
    }

    func close() async {}

    static func map(_ error: any Error, location: String) -> any Error {
        if error is RegistryError { return error }
        return RegistryError(.unavailable, "the registry (\(location)) refused the operation", detail: "\(error)")
    }
}
