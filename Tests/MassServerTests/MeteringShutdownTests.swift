import Foundation
import MassRegistry
import MassTesting
import Synchronization
import Testing

/// Usage metering survives a shutdown: the built `mass serve` gets SIGTERM in the middle of a burst from 16
/// clients, drains, and exits; the ledger then holds exactly one record per answered request, and the tokens the
/// answers reported.
@Suite(.serialized) struct MeteringShutdownTests {
    @Test func sigtermMidBurstLosesNoRecordAndCountsNoneTwice() async throws {
        let server = try LiveServer(massJSON: #"{"task": "text-embedding"}"#)
        // No key exists yet, so the loopback server is open: the first tenant and key are made over HTTP.
        let (created, _) = try server.request("POST", "/admin/v1/tenants", json: #"{"name": "burst"}"#)
        try #require(created == 201)
        let (keyStatus, keyBody) = try server.request("POST", "/admin/v1/tenants/burst/keys", json: "{}")
        try #require(keyStatus == 201)
        let secret = try #require(keyBody["secret"] as? String)

        // Each answer: its status and, for a 200, the prompt tokens it reported.
        let answers = Mutex<[(status: Int, tokens: Int)]>([])
        let refused = Atomic<Int>(0)
        let texts = ["Hello world", "A man is eating food.", "The new movie is awesome and I would watch it again."]
        let group = DispatchGroup()
        for client in 0..<16 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var i = client
                // Until the server stops accepting (status 0: refused or closed without an answer), bounded.
                while i < 100_000 {
                    let body = #"{"model": "all-MiniLM-L6-v2", "input": "\#(texts[i % texts.count])"}"#
                    let r = server.rawPost(
                        "/v1/embeddings", body: Array(body.utf8),
                        headers: ["Content-Type: application/json", "Authorization: Bearer \(secret)"])
                    if r.status == 0 {
                        refused.add(1, ordering: .relaxed)
                        return
                    }
                    let json = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]
                    let tokens = (json?["usage"] as? [String: Any])?["prompt_tokens"] as? Int ?? 0
                    answers.withLock { $0.append((r.status, tokens)) }
                    i += 16
                }
            }
        }
        // SIGTERM once the burst is well under way; the clients keep sending while the server drains.
        while answers.withLock({ $0.count }) < 150 { try await Task.sleep(for: .milliseconds(5)) }
        let status = server.stop()
        group.wait()
        #expect(status == 0)
        #expect(refused.load(ordering: .relaxed) == 16)

        let answered = answers.withLock { $0 }
        let ok = answered.filter { $0.status == 200 }
        #expect(ok.count >= 150)
        let registry = try await ModelRegistry.open(
            database: RegistryDatabases.open(server.registryArguments[1]),
            store: ArtifactStore(root: URL(fileURLWithPath: server.registryArguments[3])))
        let records = try await TenancyStore(database: registry.database).records(
            since: 0, until: Int(Date().timeIntervalSince1970) + 1, tenant: "burst")
        await registry.close()
        // One record per answered request (a request refused during the drain is answered, and metered, too),
        // none twice, and the tokens the clients were told.
        #expect(records.count == answered.count, "\(records.count) records for \(answered.count) answers")
        #expect(Set(records.map(\.id)).count == records.count)
        #expect(records.filter { $0.status == 200 }.count == ok.count)
        #expect(records.map(\.tokens).reduce(0, +) == ok.map(\.tokens).reduce(0, +))
        #expect(records.allSatisfy { $0.model == "all-MiniLM-L6-v2" && $0.route == "/v1/embeddings" })
    }
}
