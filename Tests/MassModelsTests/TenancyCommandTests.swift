import Foundation
import MassTesting
import Testing

/// `mass plans`, `mass tenants`, `mass keys` and `mass usage` with the built binary, on the default SQLite registry
/// beside a repository and on the test PostgreSQL server: the walk-through an operator makes, and the refusals.
@Suite struct TenancyCommandTests {
    let runner = EmbedCommandTests()

    func walkThrough(registry: [String]) throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("mass-tenancy-\(UUID())")
        defer { try? FileManager.default.removeItem(at: home) }
        let common = ["--repository", home.appendingPathComponent("models").path] + registry
        func mass(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
            let r = try runner.run(arguments + common)
            return (r.status, String(decoding: r.stdout, as: UTF8.self), r.stderr)
        }
        func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

        let plan = try mass([
            "plans", "set", "starter", "--json",
            #"{"limits": [{"kind": "requests", "limit": 5, "window": "minute"}], "weight": 2}"#,
        ])
        #expect(plan.status == 0, "\(plan.err)")
        let spec = (json(plan.out) as? [String: Any])?["spec"] as? [String: Any]
        #expect(spec?["weight"] as? Double == 2 && spec?["priority"] as? String == "interactive")
        let badKind = try mass([
            "plans", "set", "bad", "--json", #"{"limits": [{"kind": "bananas", "limit": 1, "window": "minute"}]}"#,
        ])
        #expect(badKind.status != 0 && badKind.err.contains("unknown limit kind 'bananas'"), "\(badKind.err)")
        let badWindow = try mass([
            "plans", "set", "bad", "--json", #"{"limits": [{"kind": "tokens", "limit": 1, "window": "fortnight"}]}"#,
        ])
        #expect(badWindow.status != 0 && badWindow.err.contains("window 'fortnight'"), "\(badWindow.err)")
        #expect(try mass(["plans", "set", "bad", "--json", "{"]).err.contains("not valid JSON"))

        #expect(try mass(["tenants", "create", "acme", "--plan", "starter"]).status == 0)
        #expect(try mass(["tenants", "create", "acme"]).err.contains("tenant 'acme' exists"))
        #expect(try mass(["tenants", "create", "other", "--plan", "nope"]).err.contains("no plan 'nope'"))
        #expect(try mass(["tenants", "list"]).out == "acme\tplan starter\n")

        // A key's secret is printed once; listings show its 13-character prefix.
        let created = try mass(["keys", "create", "--tenant", "acme", "--quiet"])
        let secret = created.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(created.status == 0 && secret.count == 53 && secret.hasPrefix("mass_"), "\(created.err)")
        #expect(secret.dropFirst(5).allSatisfy { $0.isHexDigit && !$0.isUppercase })
        let prefix = String(secret.prefix(13))
        let admin = try mass([
            "keys", "create", "--tenant", "acme", "--name", "ci", "--role", "admin", "--model", "all-MiniLM-L6-v2",
            "--expires-in", "3600",
        ])
        #expect(admin.status == 0 && admin.out.contains("secret (shown once): mass_"), "\(admin.err)")
        #expect(try mass(["keys", "create", "--tenant", "nobody"]).err.contains("no tenant 'nobody'"))
        #expect(try mass(["keys", "create", "--tenant", "acme", "--role", "root"]).err.contains("inference, admin"))
        let listed = try mass(["keys", "list", "--tenant", "acme"]).out.split(separator: "\n")
        #expect(listed.count == 2 && listed.contains("\(prefix)\tacme\tinference\tall models\tactive"), "\(listed)")
        #expect(!listed.joined().contains(secret), "a listing showed a secret")

        // Rotation gives a new secret; revocation is recorded; a revoked key cannot be rotated.
        let rotated = try mass(["keys", "rotate", prefix, "--grace", "60", "--quiet"])
        let newSecret = rotated.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(rotated.status == 0 && newSecret.count == 53 && newSecret != secret, "\(rotated.err)")
        let revoked = try mass(["keys", "revoke", prefix])
        #expect(revoked.status == 0 && (json(revoked.out) as? [String: Any])?["revoked_at"] is Int, "\(revoked.err)")
        #expect(try mass(["keys", "rotate", prefix]).err.contains("is revoked"))
        #expect(try mass(["keys", "revoke", "mass_00000000"]).err.contains("no API key 'mass_00000000'"))

        // Usage: nothing served yet, so only the headers; bad ranges are refused.
        #expect(
            try mass(["usage", "--group-by", "tenant,model"]).out
                == "bucket_start\ttenant\tmodel\trequests\tfailed\ttokens\taudio_seconds\timages\tunits\n")
        #expect(
            try mass(["usage", "--records"]).out
                == "id,at,tenant,key_prefix,model,version,route,status,requests,tokens,audio_seconds,images,units,queue_ms,compute_ms\n"
        )
        #expect(try mass(["usage", "--since", "bogus"]).err.contains("'bogus' must be Unix seconds"))
        #expect(try mass(["usage", "--bucket", "5m"]).err.contains("--bucket must be 1m, 1h or 1d"))
        #expect(try mass(["usage", "--group-by", "color"]).err.contains("group_by 'color'"))

        // A plan in use cannot be deleted; once free, it can.
        #expect(try mass(["plans", "delete", "starter"]).err.contains("plan 'starter' is in use by acme"))
        #expect(try mass(["tenants", "plan", "acme", "-"]).status == 0)
        #expect(try mass(["plans", "delete", "starter"]).status == 0)
        #expect(try mass(["tenants", "delete", "acme"]).status == 0)
        #expect(try mass(["keys", "list"]).out == "")
    }

    @Test func walkThroughOnTheDefaultSQLiteRegistry() throws {
        try walkThrough(registry: [])
    }

    @Test func walkThroughOnPostgreSQL() throws {
        let database = try ExternalTools.freshPostgresDatabase(prefix: "mass_cli_tenancy")
        try walkThrough(registry: ["--registry", database.url])
    }
}
