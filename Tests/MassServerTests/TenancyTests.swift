import Foundation
import HummingbirdTesting
import MassRegistry
import MassRuntime
import MassServer
import MassTenancy
import MassTesting
import Synchronization
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Service agreements end to end, in process on a fake model but over real HTTP (Hummingbird's live server,
/// URLSession clients with up to 64 connections), on both registry backends: every refusal's status, envelope
/// and headers, exact admission under concurrency, token budgets, windows that reset on time, revocation,
/// expiry and rotation, changes made elsewhere, usage records and the usage API.
@Suite(.serialized) struct TenancyTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgresql
        var testDescription: String { rawValue }
    }

    /// A live server on a fake model, with a registry of its own and the admin key `admin`.
    struct Fixture: Sendable {
        let base: URL
        let store: TenancyStore
        let gate: TenancyGate
        let admin: String
        let session: URLSession
        /// The PostgreSQL database's name (nil on SQLite).
        let database: String?

        func request(
            _ method: String, _ path: String, key: String? = nil, json: String? = nil,
            headers: [String: String] = [:]
        ) async throws -> (status: Int, body: [String: Any], headers: [String: String]) {
            var request = URLRequest(url: URL(string: path, relativeTo: base)!)
            request.httpMethod = method
            if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
            for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
            if let json {
                request.httpBody = Data(json.utf8)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            let (data, response) = try await session.data(for: request)
            let http = response as! HTTPURLResponse
            var fields: [String: String] = [:]
            for (name, value) in http.allHeaderFields {
                if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
            }
            let body = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            return (http.statusCode, body, fields)
        }

        func embed(_ key: String?, _ text: String = "hello") async throws -> (
            status: Int, body: [String: Any], headers: [String: String]
        ) {
            try await request("POST", "/v1/embeddings", key: key, json: #"{"model": "fake", "input": "\#(text)"}"#)
        }

        /// Creates a tenant on `plan` (a PlanSpec as JSON; nil: unlimited) and returns a new inference key.
        func tenant(_ name: String, plan: String?, models: [String]? = nil) async throws -> String {
            if let plan {
                let (status, body, _) = try await request("PUT", "/admin/v1/plans/\(name)-plan", key: admin, json: plan)
                #expect(status == 200, "\(body)")
            }
            let planField = plan == nil ? "null" : "\"\(name)-plan\""
            let (status, _, _) = try await request(
                "POST", "/admin/v1/tenants", key: admin, json: #"{"name": "\#(name)", "plan": \#(planField)}"#)
            #expect(status == 201)
            let modelsField =
                models.map { String(data: try! JSONSerialization.data(withJSONObject: $0), encoding: .utf8)! }
                ?? "null"
            let (created, body, _) = try await request(
                "POST", "/admin/v1/tenants/\(name)/keys", key: admin, json: #"{"models": \#(modelsField)}"#)
            #expect(created == 201)
            return try #require(body["secret"] as? String)
        }
    }

    static func withServer(
        _ backend: Backend = .sqlite, mode: TenancyGate.Mode = .auto, pollInterval: Duration = .seconds(1),
        _ body: @Sendable (Fixture) async throws -> Void
    ) async throws {
        let repo = try TemporaryRepository("tenancy")
        defer { repo.remove() }
        try repo.add("fake", versions: [1: #"{"dimension": 2}"#])
        try repo.add("other", versions: [1: #"{"dimension": 2}"#])
        let fresh = backend == .postgresql ? try ExternalTools.freshPostgresDatabase() : nil
        let url = fresh?.url ?? repo.root.appendingPathComponent("registry.sqlite").path
        let database = fresh?.name
        let registry = try await ModelRegistry.open(
            database: RegistryDatabases.open(url), store: ArtifactStore(root: repo.root.appendingPathComponent("store"))
        )
        let store = TenancyStore(database: registry.database)
        // The first admin key comes from the store itself, as `mass keys create` makes it.
        _ = try await store.createTenant("ops", plan: nil, description: nil, actor: "test")
        let (_, admin) = try await store.createKey(tenant: "ops", .init(roles: ["admin"]), actor: "test")
        let gate = TenancyGate(store: store, mode: mode, loopbackOnly: true, pollInterval: pollInterval)
        try await gate.start()
        let manager = ModelManager(
            repository: ModelRepository(root: repo.root), architectures: FakeEmbedder.architectures,
            tasks: FakeEmbedder.tasks, cores: 1)
        try await manager.loadAll()
        let app = MassServer.application(manager: manager, bodyLimit: 1 << 16, gate: gate)
        let poller = Task { await gate.run() }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 64
        let session = URLSession(configuration: configuration)
        do {
            try await app.test(.live) { client in
                let port = try #require(client.port)
                try await body(
                    Fixture(
                        base: URL(string: "http://127.0.0.1:\(port)")!, store: store, gate: gate, admin: admin,
                        session: session, database: database))
            }
        } catch {
            poller.cancel()
            await manager.stopAll()
            await registry.close()
            throw error
        }
        poller.cancel()
        await gate.drain()
        await manager.stopAll()
        await registry.close()
    }

    /// Waits until at least `margin` seconds remain in the current clock-aligned window of `seconds`, so that a
    /// test of a window's count cannot straddle its reset.
    static func awayFromWindowEnd(_ seconds: Double, margin: Double) async throws {
        let now = Date().timeIntervalSince1970
        let left = seconds - now.truncatingRemainder(dividingBy: seconds)
        if left < margin { try await Task.sleep(for: .milliseconds(Int((left + 0.05) * 1000))) }
    }

    @Test func refusalsHaveStableStatusesEnvelopesAndHeaders() async throws {
        try await Self.withServer { f in
            let key = try await f.tenant(
                "acme", plan: #"{"limits": [{"kind": "requests", "limit": 3, "window": "hour"}]}"#)
            let narrow = try await f.tenant("narrow", plan: nil, models: ["other"])
            // 401: none, malformed, unknown; OpenAI's envelope and code, and WWW-Authenticate.
            let none = try await f.embed(nil)
            #expect(none.status == 401)
            let error = try #require(none.body["error"] as? [String: Any])
            #expect(error["code"] as? String == "invalid_api_key")
            #expect(error["type"] as? String == "invalid_request_error")
            #expect((error["message"] as? String)?.contains("no API key") == true)
            #expect(none.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
            #expect(try await f.embed("not-a-key").status == 401)
            let unknown = try await f.embed("mass_" + String(repeating: "ab", count: 24))
            #expect(unknown.status == 401)
            #expect(((unknown.body["error"] as? [String: Any])?["message"] as? String) == "the API key is not valid")
            // Azure's api-key header is accepted as well.
            let azure = try await f.request(
                "POST", "/v1/embeddings", json: #"{"model": "fake", "input": "x"}"#, headers: ["api-key": key])
            #expect(azure.status == 200)
            // 403: the wrong role, the wrong model; KServe's envelope on /v2.
            let admin = try await f.request("GET", "/admin/v1/tenants", key: key)
            #expect(admin.status == 403 && (admin.body["error"] as? String)?.contains("'admin' role") == true)
            let wrongModel = try await f.embed(narrow)
            #expect(wrongModel.status == 403)
            #expect(((wrongModel.body["error"] as? [String: Any])?["code"] as? String) == "permission_denied")
            #expect(
                try await f.request(
                    "POST", "/v1/embeddings", key: narrow, json: #"{"model": "other", "input": "x"}"#
                ).status == 200)
            // Probes and metrics stay open.
            #expect(try await f.request("GET", "/v2/health/ready").status == 200)
            #expect(try await f.request("GET", "/metrics").status == 200)
            // Successes carry the remaining-limit headers; the 4th request in the hour is a 429 with the real reset.
            let second = try await f.embed(key)
            #expect(second.status == 200)
            #expect(second.headers["x-ratelimit-limit-requests"] == "3")
            #expect(second.headers["x-ratelimit-remaining-requests"] == "1")
            #expect(second.headers["x-ratelimit-reset-requests"] != nil)
            #expect(try await f.embed(key).status == 200)
            let refused = try await f.embed(key)
            #expect(refused.status == 429)
            let rate = try #require(refused.body["error"] as? [String: Any])
            #expect(rate["code"] as? String == "rate_limit_exceeded" && rate["type"] as? String == "rate_limit_error")
            #expect(refused.headers["x-ratelimit-remaining-requests"] == "0")
            let now = Date().timeIntervalSince1970
            let untilHour = 3600 - now.truncatingRemainder(dividingBy: 3600)
            let retry = try #require(refused.headers["retry-after"].flatMap(Int.init))
            #expect(abs(Double(retry) - untilHour) <= 2, "Retry-After \(retry) s, the hour ends in \(untilHour) s")
            // The same refusal in KServe's envelope.
            let kserve = try await f.request(
                "POST", "/v2/models/fake/infer", key: key,
                json: #"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["x"]}]}"#)
            #expect(kserve.status == 429 && (kserve.body["error"] as? String)?.contains("Rate limit reached") == true)
        }
    }

    @Test func aBudgetOfTokensIsQuotaAndNeverExceeded() async throws {
        try await Self.withServer { f in
            let key = try await f.tenant(
                "budget", plan: #"{"limits": [{"kind": "tokens", "limit": 500, "window": "day"}]}"#)
            // 64 concurrent requests of 30-40 "tokens" (the fake's tokens are UTF-8 bytes) against 500.
            let lengths = (0..<64).map { 30 + $0 % 11 }
            let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for length in lengths {
                    group.addTask {
                        let r = try await f.embed(key, String(repeating: "a", count: length))
                        let usage = r.body["usage"] as? [String: Any]
                        return (r.status, usage?["prompt_tokens"] as? Int ?? 0)
                    }
                }
                var all: [(Int, Int)] = []
                for try await result in group { all.append(result) }
                return all
            }
            let spent = results.filter { $0.0 == 200 }.reduce(0) { $0 + $1.1 }
            #expect(spent <= 500, "admitted \(spent) tokens against a budget of 500")
            #expect(spent > 500 - 40, "admitted only \(spent) tokens: a refusal left headroom unused")
            #expect(results.allSatisfy { $0.0 == 200 || $0.0 == 429 })
            let refused = try await f.embed(key, String(repeating: "a", count: 40))
            #expect(refused.status == 429)
            let error = try #require(refused.body["error"] as? [String: Any])
            #expect(
                error["type"] as? String == "insufficient_quota" && error["code"] as? String == "insufficient_quota")
            #expect(refused.headers["x-ratelimit-remaining-tokens"] == String(500 - spent))
        }
    }

    @Test(arguments: Backend.allCases) func admitsExactlyTheLimitUnderConcurrency(_ backend: Backend) async throws {
        try await Self.withServer(backend) { f in
            let key = try await f.tenant(
                "flood", plan: #"{"limits": [{"kind": "requests", "limit": 100, "window": "hour"}]}"#)
            try await Self.awayFromWindowEnd(3600, margin: 60)
            // 64 concurrent clients send 300 requests between them.
            let next = Ticker()
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<64 {
                    group.addTask {
                        var mine: [Int] = []
                        while next.take() <= 300 {
                            mine.append(try await f.embed(key).status)
                        }
                        return mine
                    }
                }
                var all: [Int] = []
                for try await part in group { all += part }
                return all
            }
            #expect(statuses.count == 300)
            #expect(statuses.filter { $0 == 200 }.count == 100)
            #expect(statuses.filter { $0 == 429 }.count == 200)
            // One usage record per request, written in batches.
            try await f.gate.meter.flush()
            let records = try await f.store.records(
                since: 0, until: Int(Date().timeIntervalSince1970) + 1, tenant: "flood")
            #expect(records.count == 300)
            #expect(records.filter { $0.status == 200 }.count == 100)
            #expect(Set(records.map(\.id)).count == 300)
            #expect(records.filter { $0.status == 200 }.allSatisfy { $0.tokens == 5 && $0.model == "fake" })
            // A write retried after it had in fact succeeded (the database answered too late) counts once.
            try await f.store.record(records)
            let again = try await f.store.records(
                since: 0, until: Int(Date().timeIntervalSince1970) + 1, tenant: "flood")
            #expect(again.count == 300)
        }
    }

    @Test func windowsResetOnTime() async throws {
        try await Self.withServer { f in
            let key = try await f.tenant(
                "ticks", plan: #"{"limits": [{"kind": "requests", "limit": 2, "window": "2s"}]}"#)
            try await Self.awayFromWindowEnd(2, margin: 1)
            #expect(try await f.embed(key).status == 200)
            #expect(try await f.embed(key).status == 200)
            let refused = try await f.embed(key)
            #expect(refused.status == 429)
            let reset = try #require(refused.headers["x-ratelimit-reset-requests"])
            let retry = try #require(refused.headers["retry-after"].flatMap(Int.init))
            #expect(retry >= 1 && retry <= 2, "Retry-After \(retry)")
            // Right after the window's end (aligned to the clock), the tenant has its 2 requests again.
            let now = Date().timeIntervalSince1970
            let left = 2 - now.truncatingRemainder(dividingBy: 2)
            try await Task.sleep(for: .milliseconds(Int((left + 0.02) * 1000)))
            let again = try await f.embed(key)
            #expect(again.status == 200, "reset said \(reset)")
            #expect(again.headers["x-ratelimit-remaining-requests"] == "1")
        }
    }

    @Test func revocationExpiryAndRotation() async throws {
        try await Self.withServer { f in
            let key = try await f.tenant("keys", plan: nil)
            #expect(try await f.embed(key).status == 200)
            let prefix = String(key.prefix(13))
            // Revoked through this server's admin API: refused from the next request.
            #expect(try await f.request("POST", "/admin/v1/keys/\(prefix)/revoke", key: f.admin).status == 200)
            let revoked = try await f.embed(key)
            #expect(revoked.status == 401)
            #expect(((revoked.body["error"] as? [String: Any])?["message"] as? String)?.contains("revoked") == true)
            // Expiry.
            let (created, body, _) = try await f.request(
                "POST", "/admin/v1/tenants/keys/keys", key: f.admin, json: #"{"expires_in": 1}"#)
            #expect(created == 201)
            let short = try #require(body["secret"] as? String)
            #expect(try await f.embed(short).status == 200)
            try await Task.sleep(for: .milliseconds(1100))
            let expired = try await f.embed(short)
            #expect(expired.status == 401)
            #expect(((expired.body["error"] as? [String: Any])?["message"] as? String)?.contains("expired") == true)
            // Rotation with a grace period: both keys work, then only the new one.
            let (_, fresh, _) = try await f.request("POST", "/admin/v1/tenants/keys/keys", key: f.admin, json: "{}")
            let old = try #require(fresh["secret"] as? String)
            let (rotated, rotation, _) = try await f.request(
                "POST", "/admin/v1/keys/\(old.prefix(13))/rotate", key: f.admin, json: #"{"grace_seconds": 1}"#)
            #expect(rotated == 201)
            let new = try #require(rotation["secret"] as? String)
            #expect(try await f.embed(old).status == 200)
            #expect(try await f.embed(new).status == 200)
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await f.embed(old).status == 401)
            #expect(try await f.embed(new).status == 200)
            // Only hashes are stored; listings show prefixes.
            let keys = try await f.store.keys(tenant: "keys")
            #expect(keys.count == 4 && keys.allSatisfy { $0.prefix.count == 13 })
            let snapshot = try await f.store.snapshot()
            #expect(snapshot.keys.allSatisfy { $0.hash.count == 64 && !$0.hash.contains("mass_") })
            #expect(snapshot.keys.contains { $0.hash == TenancyStore.hash(new) })
        }
    }

    /// The PostgreSQL database refuses connections for a while (its connections killed, new ones refused): the
    /// server keeps authenticating from memory, keeps counting limits, buffers the usage records, and writes every
    /// one of them, once, when the database is back.
    @Test func aDatabaseThatGoesAwayLosesNoUsage() async throws {
        try await Self.withServer(.postgresql, pollInterval: .milliseconds(200)) { f in
            let database = try #require(f.database)
            let key = try await f.tenant(
                "steady", plan: #"{"limits": [{"kind": "requests", "limit": 8, "window": "hour"}]}"#)
            try await Self.awayFromWindowEnd(3600, margin: 60)
            for _ in 0..<3 { #expect(try await f.embed(key).status == 200) }
            try await f.gate.meter.flush()
            try ExternalTools.psql("ALTER DATABASE \(database) ALLOW_CONNECTIONS false")
            try ExternalTools.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)'")
            await #expect(throws: (any Error).self) { try await f.store.records(since: 0, until: 1) }
            for _ in 0..<5 { #expect(try await f.embed(key).status == 200) }
            // The limit still holds while the database is away: 8 an hour, 8 admitted.
            #expect(try await f.embed(key).status == 429)
            // Polls come and go meanwhile (a flush waits for a connection, or fails and keeps its records).
            try await Task.sleep(for: .milliseconds(800))
            try ExternalTools.psql("ALTER DATABASE \(database) ALLOW_CONNECTIONS true")
            // Written at a later poll (the connection pool backs off a little before it reconnects).
            let deadline = ContinuousClock.now + .seconds(60)
            var records: [UsageRecord] = []
            repeat {
                try await Task.sleep(for: .milliseconds(200))
                records =
                    (try? await f.store.records(
                        since: 0, until: Int(Date().timeIntervalSince1970) + 1, tenant: "steady")) ?? []
            } while records.count < 9 && ContinuousClock.now < deadline
            try await Task.sleep(for: .milliseconds(500))  // nothing more arrives later, either
            records = try await f.store.records(
                since: 0, until: Int(Date().timeIntervalSince1970) + 1, tenant: "steady")
            #expect(records.count == 9 && Set(records.map(\.id)).count == 9)
            #expect(records.filter { $0.status == 200 }.count == 8 && records.filter { $0.status == 429 }.count == 1)
        }
    }

    @Test func changesMadeElsewhereApplyWithinAPoll() async throws {
        try await Self.withServer(pollInterval: .milliseconds(200)) { f in
            let key = try await f.tenant("remote", plan: nil)
            #expect(try await f.embed(key).status == 200)
            // Revoked in the database, not through this server (as the CLI or another server does it): the
            // server sees it at its next poll.
            _ = try await f.store.revokeKey(String(key.prefix(13)), actor: "cli")
            try await Task.sleep(for: .milliseconds(600))
            #expect(try await f.embed(key).status == 401)
        }
    }

    @Test func malformedAuthorizationHeadersAre401s() async throws {
        try await Self.withServer { f in
            _ = try await f.tenant("fuzz", plan: nil)
            var generator = SystemRandomNumberGenerator()
            var headers = [
                "", "Bearer", "Bearer ", "bearer", "Basic dXNlcjpwYXNz", "Bearer mass_", "Bearer mass_zz",
                "Bearer  mass_" + String(repeating: "0", count: 47), "Bearer mass_" + String(repeating: "g", count: 48),
                "Bearer " + String(repeating: "a", count: 6000), "Bearer a b", "Token mass_x", "Bearer\tx",
                "Bearer mass_" + String(repeating: "A", count: 48),
            ]
            for _ in 0..<40 {
                let length = Int.random(in: 1...200, using: &generator)
                headers.append(
                    String(
                        (0..<length).map { _ in Character(UnicodeScalar(UInt8.random(in: 32...126, using: &generator)))
                        }))
            }
            for header in headers {
                let r = try await f.request(
                    "POST", "/v1/embeddings", json: #"{"model": "fake", "input": "x"}"#,
                    headers: ["Authorization": header])
                #expect(r.status == 401, "\(header.prefix(40)) -> \(r.status)")
                #expect(r.body["error"] != nil)
            }
        }
    }

    @Test func usageAPIGroupsByTenantAndModel() async throws {
        try await Self.withServer { f in
            let a = try await f.tenant("alpha", plan: nil)
            let b = try await f.tenant("beta", plan: nil)
            let start = Int(Date().timeIntervalSince1970)
            for _ in 0..<3 { #expect(try await f.embed(a, "abcd").status == 200) }
            #expect(try await f.embed(b, "ab").status == 200)
            #expect(
                try await f.request(
                    "POST", "/v1/embeddings", key: b, json: #"{"model": "other", "input": "abc"}"#
                ).status == 200)
            try await f.gate.meter.flush()
            let (status, page, _) = try await f.request(
                "GET", "/admin/v1/usage?start_time=\(start - 60)&bucket_width=1h&group_by=tenant,model", key: f.admin)
            #expect(status == 200 && page["object"] as? String == "page")
            let results = (page["data"] as? [[String: Any]] ?? []).flatMap { $0["results"] as? [[String: Any]] ?? [] }
            func row(_ tenant: String, _ model: String) -> [String: Any]? {
                results.first { $0["tenant"] as? String == tenant && $0["model"] as? String == model }
            }
            #expect(row("alpha", "fake")?["num_model_requests"] as? Int == 3)
            #expect(row("alpha", "fake")?["input_tokens"] as? Int == 12)
            #expect(row("beta", "fake")?["input_tokens"] as? Int == 2)
            #expect(row("beta", "other")?["input_tokens"] as? Int == 3)
            #expect(try await f.request("GET", "/admin/v1/usage?bucket_width=1h", key: f.admin).status == 400)
            #expect(
                try await f.request(
                    "GET", "/admin/v1/usage?start_time=0&bucket_width=1m", key: f.admin
                ).status == 400)
            #expect(
                try await f.request(
                    "GET", "/admin/v1/usage?start_time=\(start)&group_by=colour", key: f.admin
                ).status == 400)
        }
    }

    @Test func plansAndTenantsRefuseBadInput() async throws {
        try await Self.withServer { f in
            let bad = [
                #"{"limits": [{"kind": "bananas", "limit": 1, "window": "hour"}]}"#,
                #"{"limits": [{"kind": "requests", "limit": -1, "window": "hour"}]}"#,
                #"{"limits": [{"kind": "requests", "limit": 1, "window": "fortnight"}]}"#,
                #"{"limits": [{"kind": "requests", "limit": "many", "window": "hour"}]}"#,
                #"{"weight": 0}"#, #"{"priority": "urgent"}"#, #"{"max_concurrent": 0}"#, "not json", "[]",
            ]
            for body in bad {
                let r = try await f.request("PUT", "/admin/v1/plans/p", key: f.admin, json: body)
                #expect(r.status == 400, "\(body) -> \(r.status)")
                #expect(r.body["error"] is String)
            }
            #expect(
                try await f.request(
                    "POST", "/admin/v1/tenants", key: f.admin, json: #"{"name": "t", "plan": "missing"}"#
                ).status == 404)
            #expect(
                try await f.request(
                    "POST", "/admin/v1/tenants", key: f.admin, json: #"{"name": "bad name!"}"#
                ).status == 400)
            #expect(
                try await f.request("POST", "/admin/v1/tenants", key: f.admin, json: #"{"name": "t"}"#).status == 201)
            #expect(
                try await f.request("POST", "/admin/v1/tenants", key: f.admin, json: #"{"name": "t"}"#).status == 409)
            #expect(
                try await f.request(
                    "POST", "/admin/v1/tenants/t/keys", key: f.admin, json: #"{"roles": ["root"]}"#
                ).status == 400)
            #expect(
                try await f.request("POST", "/admin/v1/tenants/nobody/keys", key: f.admin, json: "{}").status == 404)
            #expect(try await f.request("POST", "/admin/v1/keys/mass_00000000/revoke", key: f.admin).status == 404)
            // A plan in use cannot be deleted.
            #expect(try await f.request("PUT", "/admin/v1/plans/used", key: f.admin, json: "{}").status == 200)
            #expect(
                try await f.request("PUT", "/admin/v1/tenants/t/plan", key: f.admin, json: #"{"plan": "used"}"#).status
                    == 200)
            #expect(try await f.request("DELETE", "/admin/v1/plans/used", key: f.admin).status == 409)
        }
    }

    @Test func modeOffServesWithoutKeysAndMetersValidOnes() async throws {
        // The fixture's registry has a key, so auto mode enforces (the other tests); off does not.
        try await Self.withServer(mode: .off) { (f: Fixture) async throws in
            let anonymous = try await f.embed(nil)
            #expect(anonymous.status == 200)
            let junk = try await f.embed("junk")
            #expect(junk.status == 200)
            let key = try await f.tenant("metered", plan: nil)
            #expect(try await f.embed(key, "abc").status == 200)
            try await f.gate.meter.flush()
            let records = try await f.store.records(since: 0, until: Int(Date().timeIntervalSince1970) + 1)
            #expect(records.map(\.tenant) == ["metered"] && records.first?.tokens == 3)
        }
    }
}

/// Hands out 1, 2, 3, ... to concurrent tasks.
final class Ticker: Sendable {
    private let count = Mutex(0)
    func take() -> Int {
        count.withLock {
            $0 += 1
            return $0
        }
    }
}
