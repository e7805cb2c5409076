import Foundation
import Logging
import PostgresKit
import PostgresNIO
import SQLKit
import Synchronization

/// The shared backend: a PostgreSQL server several Mass servers and machines use together. Connections come from
/// PostgresNIO's `PostgresClient` pool; a transaction holds one connection from `BEGIN` to `COMMIT`, and writers
/// to one model serialise on its row (`SELECT ... FOR UPDATE`).
final class PostgresRegistryDatabase: RegistryDatabase {
    let backend = "postgresql"
    let location: String
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger

    /// How long a transaction waits for a connection before the database counts as unreachable.
    let acquireTimeout: Duration

    init(url: String, acquireTimeout: Duration = .seconds(5)) throws {
        self.acquireTimeout = acquireTimeout
        // PostgresNIO reports every failed connection attempt at info; the registry's own error says it once.
        var logger = Logger(label: "mass.registry.postgres")
        logger.logLevel = .warning
        guard let parts = URLComponents(string: url), let host = parts.host, !host.isEmpty else {
            throw RegistryError(.invalid, "'\(Self.redacted(url))' is not a postgres://user:password@host:port/db URL")
        }
        let database = parts.path.hasPrefix("/") ? String(parts.path.dropFirst()) : parts.path
        var configuration = PostgresClient.Configuration(
            host: host, port: parts.port ?? 5432, username: parts.user ?? "postgres",
            password: parts.password, database: database.isEmpty ? nil : database, tls: .disable)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = 8
        location = "postgresql at \(host):\(parts.port ?? 5432)/\(database)"
        self.logger = logger
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        runner = Task { await client.run() }
    }

    func transaction<T: Sendable>(
        readOnly: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> T
    ) async throws -> T {
        let acquired = Flag()
        let unreachable = RegistryError(.unavailable, "the registry (\(location)) is unreachable")
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask { try await self.run(body, readOnly: readOnly, acquired: acquired) }
                group.addTask {
                    try await Task.sleep(for: self.acquireTimeout)
                    if acquired.isSet { return nil }
                    throw unreachable
                }
                while let result = try await group.next() {
                    if let result {
                        group.cancelAll()
                        return result
                    }
                }
                throw unreachable
            }
        } catch let error as RegistryError {
            throw error
        } catch let error as PSQLError where error.code == .server {
            throw RegistryError(
                .unavailable, "the registry (\(location)) refused the operation",
                detail: "\(String(reflecting: error))")
        } catch {
            throw RegistryError(.unavailable, "the registry (\(location)) is unreachable", detail: "\(error)")
        }
    }

    private func run<T: Sendable>(
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> T, readOnly: Bool, acquired: Flag
    ) async throws -> T {
        try await client.withConnection { connection in
            acquired.set()
            let db = connection.sql()
            try await db.raw(readOnly ? "BEGIN READ ONLY" : "BEGIN").run()
            do {
                let result = try await body(db)
                try await db.raw("COMMIT").run()
                return result
            } catch {
                try? await db.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    func close() async {
        runner.cancel()
        _ = await runner.value
    }

    /// The URL with its password replaced, for messages.
    static func redacted(_ url: String) -> String {
        guard var parts = URLComponents(string: url), parts.password != nil else { return url }
        parts.password = "***"
        return parts.string ?? "postgres://***"
    }
}

/// Set once, read from any task.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
