public import Foundation

/// Tools that are not ours, for tests to check against or to set up with: sha256sum(1), and psql(1) on the
/// PostgreSQL server that `make test` starts (scripts/with-postgres.sh sets MASS_TEST_POSTGRES_URL).
public enum ExternalTools {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// sha256sum(1)'s hash of a file.
    public static func sha256sum(_ url: URL) throws -> String {
        let (status, out) = try run("/usr/bin/sha256sum", [url.path])
        guard status == 0, let hash = out.split(separator: " ").first else {
            throw Failure(description: "sha256sum \(url.path) failed")
        }
        return String(hash)
    }

    /// The test run's PostgreSQL server URL; a clear failure when the suite runs without it.
    public static func postgresServer() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["MASS_TEST_POSTGRES_URL"] else {
            throw Failure(
                description: "MASS_TEST_POSTGRES_URL is not set: run through make test (scripts/with-postgres.sh)")
        }
        return url
    }

    /// Runs one SQL statement with psql(1) on the test server's maintenance database.
    public static func psql(_ sql: String) throws {
        let (status, out) = try run("/usr/bin/psql", [try postgresServer(), "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        guard status == 0 else { throw Failure(description: "psql '\(sql)' failed: \(out)") }
    }

    /// A new, empty database on the test server (named `prefix_<uuid>`); answers its URL and name.
    public static func freshPostgresDatabase(prefix: String = "mass_test") throws -> (url: String, name: String) {
        let name = prefix + "_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try psql("CREATE DATABASE \(name)")
        guard var parts = URLComponents(string: try postgresServer()) else {
            throw Failure(description: "MASS_TEST_POSTGRES_URL is not a URL")
        }
        parts.path = "/" + name
        return (parts.string ?? "", name)
    }

    private static func run(_ tool: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self))
    }
}
