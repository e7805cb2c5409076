import Foundation
import MassTensor
import MassTesting
import NIOCore
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Service-type models on the built binary: a second `mass serve` is the provider, reached directly or through
/// the fault-injecting proxy; the front server serves its models through every route of their task.
final class RemoteRig: @unchecked Sendable {  // fields are set once in init
    static let key = "sk-mass-test-0123456789abcdef"
    let provider: LiveServer
    /// In front of the provider for "svc" (with a fallback) and "bare" (without).
    let proxy: FaultProxy
    let bareProxy: FaultProxy
    /// In front of the provider for "svc-clf".
    let clfProxy: FaultProxy
    let front: LiveServer
    let log: URL
    let empty: URL

    init() async throws {
        provider = try LiveServer(
            massJSON: #"{"task": "text-embedding"}"#, model: "minilm",
            also: [
                ("clf", #"{"task": "text-classification"}"#, TextHeadFixture.classifierDirectory),
                ("rr", #"{"task": "rerank"}"#, TextHeadFixture.rerankerDirectory),
            ])
        proxy = try await FaultProxy(target: provider.base)
        bareProxy = try await FaultProxy(target: provider.base)
        clfProxy = try await FaultProxy(target: provider.base)
        empty = FileManager.default.temporaryDirectory.appendingPathComponent("mass-remote-\(UUID())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        log = empty.appendingPathComponent("front.log")
        let closedPort = try LiveServer.freePort()
        func remote(_ task: String, _ block: String) -> String { #"{"task": "\#(task)", "remote": {\#(block)}}"# }
        let resilience =
            #""api_key_env": "MASS_TEST_PROVIDER_KEY", "call_timeout_ms": 400, "probe_interval_ms": 200, "retry": {"attempts": 3, "base_delay_ms": 20, "max_delay_ms": 100, "max_retry_after_ms": 3000}, "breaker": {"consecutive_failures": 3, "min_calls": 1000, "open_ms": 700}"#
        front = try LiveServer(
            massJSON: #"{"task": "text-embedding"}"#, model: "local",
            also: [
                (
                    "svc",
                    remote(
                        "text-embedding",
                        #""api": "openai-embeddings", "url": "\#(proxy.base)", "model": "minilm", "fallback": ["missing", "local"], \#(resilience)"#
                    ), empty
                ),
                (
                    "bare",
                    remote(
                        "text-embedding",
                        #""api": "openai-embeddings", "url": "\#(bareProxy.base)/", "model": "minilm", \#(resilience)"#
                    ), empty
                ),
                (
                    "hedged",
                    remote(
                        "text-embedding",
                        #""api": "openai-embeddings", "url": "\#(clfProxy.base)", "model": "minilm", "hedge_after_ms": 100, "call_timeout_ms": 3000"#
                    ), empty
                ),
                (
                    "svc-v2",
                    remote("text-embedding", #""api": "kserve-v2", "url": "\#(provider.base)", "model": "minilm""#),
                    empty
                ),
                ("svc-rr", remote("rerank", #""api": "tei-rerank", "url": "\#(provider.base)""#), empty),
                (
                    "svc-rec",
                    remote(
                        "text-embedding",
                        #""api": "openai-embeddings", "url": "\#(provider.base)", "model": "minilm", "record": {"candidate": "local", "sample_rate": 1}"#
                    ), empty
                ),
                (
                    "svc-clf",
                    remote(
                        "text-classification",
                        #""api": "tei-predict", "url": "\#(clfProxy.base)", "record": {"candidate": "clf-local", "sample_rate": 0}"#
                    ), empty
                ),
                ("clf-local", #"{"task": "text-classification"}"#, TextHeadFixture.classifierDirectory),
                (
                    "down",
                    remote(
                        "text-embedding",
                        #""api": "openai-embeddings", "url": "http://127.0.0.1:\#(closedPort)", "probe_interval_ms": 100, "retry": {"attempts": 2, "base_delay_ms": 1}"#
                    ), empty
                ),
                (
                    "nokey",
                    remote(
                        "text-embedding",
                        #""api": "openai-embeddings", "url": "\#(provider.base)", "api_key_env": "MASS_TEST_MISSING_KEY""#
                    ), empty
                ),
            ], arguments: ["--log-level", "debug"], log: log,
            environment: ["MASS_TEST_PROVIDER_KEY": Self.key])
    }

    /// Stops both servers (synchronously: a test's `defer` must not leave them running after the process
    /// exits); the proxies live in the test process.
    func stop() {
        front.stop()
        provider.stop()
        try? FileManager.default.removeItem(at: empty)
        let proxies = [proxy, bareProxy, clfProxy]
        Task { for proxy in proxies { await proxy.stop() } }
    }

    struct Reply {
        let status: Int
        let json: Any?
        let headers: [String]
        let seconds: Double
        let text: String

        func header(_ name: String) -> String? {
            headers.first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
                .map { String($0.drop(while: { $0 != ":" }).dropFirst()).trimmingCharacters(in: .whitespaces) }
        }
        var answeredBy: String? { header("X-Mass-Answered-By") }
        var vectors: [[Double]] {
            ((json as? [String: Any])?["data"] as? [[String: Any]] ?? []).compactMap { $0["embedding"] as? [Double] }
        }
        var message: String {
            ((json as? [String: Any])?["error"] as? [String: Any])?["message"] as? String ?? text
        }
    }

    func post(_ server: LiveServer, _ path: String, _ json: String) -> Reply {
        let started = ContinuousClock.now
        let r = server.rawPost(path, body: Array(json.utf8), headers: ["Content-Type: application/json"])
        let elapsed = ContinuousClock.now - started
        return Reply(
            status: r.status, json: try? JSONSerialization.jsonObject(with: Data(r.body)), headers: r.headers,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18,
            text: String(decoding: r.body, as: UTF8.self))
    }

    func embed(_ model: String, _ texts: [String] = ["the cat sat on the mat", "a remote provider"]) -> Reply {
        let input = String(decoding: try! JSONSerialization.data(withJSONObject: texts), as: UTF8.self)
        return post(front, "/v1/embeddings", #"{"model": "\#(model)", "input": \#(input)}"#)
    }

    func ready(_ model: String) throws -> (Int, [String: Any]) {
        try front.request("GET", "/v2/models/\(model)/ready")
    }

    /// Waits (up to `seconds`) until the model's readiness is `wanted`.
    func waitReady(_ model: String, _ wanted: Bool, seconds: Double = 5) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try ready(model).0 == 200) == wanted { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    static func percentiles(_ seconds: [Double]) -> String {
        let sorted = seconds.sorted()
        func p(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))] * 1000 }
        return String(
            format: "p50 %.1f ms, p99 %.1f ms, max %.1f ms (n=%d)", p(0.5), p(0.99), sorted.last! * 1000, sorted.count)
    }
}

@Suite(.serialized) struct RemoteModelTests {
    @Test func remoteModelsServeEveryRouteOfTheirTask() async throws {
        let rig = try await RemoteRig()
        defer { rig.stop() }
        let texts = ["the cat sat on the mat", "a remote provider"]
        let direct = rig.post(
            rig.provider, "/v1/embeddings",
            #"{"model": "minilm", "input": ["the cat sat on the mat", "a remote provider"]}"#)
        #expect(direct.status == 200)
        // OpenAI embeddings through the proxy: the provider's vectors, answered by the service-type model.
        let remote = rig.embed("svc", texts)
        #expect(remote.status == 200)
        #expect(remote.answeredBy == "svc")
        #expect(remote.vectors.count == 2 && remote.vectors.map(\.count) == [384, 384])
        for (a, b) in zip(remote.vectors, direct.vectors) { #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-6 }) }
        // Usage: the provider's token count.
        let usage = (remote.json as? [String: Any])?["usage"] as? [String: Any]
        let directUsage = (direct.json as? [String: Any])?["usage"] as? [String: Any]
        #expect(usage?["prompt_tokens"] as? Int == directUsage?["prompt_tokens"] as? Int)
        // The key went to the provider as a bearer token (the proxy saw it; it does not forward it).
        #expect(rig.proxy.authorizations.contains("Bearer \(RemoteRig.key)"))
        // KServe v2 infer on the service-type model, and a service-type model that speaks KServe v2.
        let v2 = rig.post(
            rig.front, "/v2/models/svc/infer",
            #"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["the cat sat on the mat", "a remote provider"]}]}"#
        )
        #expect(v2.status == 200)
        let outputs = (v2.json as? [String: Any])?["outputs"] as? [[String: Any]]
        let flat = outputs?.first?["data"] as? [Double] ?? []
        #expect(flat.count == 768 && zip(flat, direct.vectors.flatMap { $0 }).allSatisfy { abs($0 - $1) < 1e-6 })
        let viaKServe = rig.embed("svc-v2", texts)
        #expect(viaKServe.status == 200)
        for (a, b) in zip(viaKServe.vectors, direct.vectors) {
            #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-6 })
        }
        let metadata = try rig.front.request("GET", "/v2/models/svc-v2")
        let shape = ((metadata.1["outputs"] as? [[String: Any]])?.first?["shape"] as? [Int])
        #expect(shape == [-1, 384])
        // Rerank and text classification through TEI's routes: the provider's logits.
        let rerankBody =
            #"{"query": "what is a cat", "texts": ["dogs bark", "a cat is a small feline"], "raw_scores": true}"#
        let rr = rig.post(
            rig.front, "/rerank",
            #"{"model": "svc-rr", "query": "what is a cat", "texts": ["dogs bark", "a cat is a small feline"], "raw_scores": true}"#
        )
        let rrDirect = rig.post(rig.provider, "/rerank", rerankBody)
        #expect(rr.status == 200 && rrDirect.status == 200)
        let ranked = (rr.json as? [[String: Any]])?.map { ($0["index"] as? Int ?? -1, $0["score"] as? Double ?? .nan) }
        let rankedDirect = (rrDirect.json as? [[String: Any]])?.map {
            ($0["index"] as? Int ?? -1, $0["score"] as? Double ?? .nan)
        }
        #expect(ranked?.map(\.0) == rankedDirect?.map(\.0))
        #expect(zip(ranked ?? [], rankedDirect ?? []).allSatisfy { abs($0.1 - $1.1) < 1e-5 })
        let clf = rig.post(
            rig.front, "/predict", #"{"model": "svc-clf", "inputs": [["I love it", "x"], "I love it", "I hate it"]}"#)
        let clfDirect = rig.post(
            rig.provider, "/predict", #"{"inputs": [["I love it", "x"], "I love it", "I hate it"]}"#)
        #expect(clf.status == 200)
        func top(_ reply: RemoteRig.Reply, from: Int = 0) -> [String] {
            (reply.json as? [[[String: Any]]])?.dropFirst(from).compactMap { $0.first?["label"] as? String } ?? []
        }
        #expect(top(clf).count == 3 && top(clf) == top(clfDirect), "\(clf.text) \(clfDirect.text)")
        let probabilities = (clf.json as? [[[String: Any]]])?.flatMap { $0.compactMap { $0["score"] as? Double } }
        let directProbabilities = (clfDirect.json as? [[[String: Any]]])?.flatMap {
            $0.compactMap { $0["score"] as? Double }
        }
        #expect(probabilities?.count == 9)
        #expect(zip(probabilities ?? [], directProbabilities ?? []).allSatisfy { abs($0 - $1) < 1e-5 })
        // Two texts (which TEI would read as one pair) through KServe infer: each classified on its own.
        let two = rig.post(
            rig.front, "/v2/models/svc-clf/infer",
            #"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["I love it", "I hate it"]}]}"#)
        let twoLogits =
            ((two.json as? [String: Any])?["outputs"] as? [[String: Any]])?.first {
                $0["name"] as? String == "probabilities"
            }?["data"] as? [Double]
        #expect(two.status == 200 && twoLogits?.count == 6)
        // Labels sorted by name: negative, neutral, positive.
        let loveDirect = (clfDirect.json as? [[[String: Any]]])?[1] ?? []
        let expectedLove = ["negative", "neutral", "positive"].map { label in
            loveDirect.first { $0["label"] as? String == label }?["score"] as? Double ?? .nan
        }
        #expect(zip(twoLogits?.prefix(3) ?? [], expectedLove).allSatisfy { abs($0 - $1) < 1e-5 })
        // The provider's metrics, by model.
        #expect(try rig.front.metric(#"mass_remote_calls_total{model="svc",outcome="2xx"}"#) ?? 0 >= 3)
        #expect(try rig.front.metric(#"mass_remote_breaker_state{model="svc"}"#) == 0)
        #expect(try rig.front.metric(#"mass_remote_calls_total{model="svc-rr",outcome="2xx"}"#) ?? 0 >= 2)
    }

    @Test func faultsWithAFallbackNeverReachTheClient() async throws {
        let rig = try await RemoteRig()
        defer { rig.stop() }
        #expect(try await rig.waitReady("svc", true))
        func phase(_ name: String, requests: Int = 12, _ check: (RemoteRig.Reply) -> Void = { _ in }) -> [RemoteRig
            .Reply]
        {
            let replies = (0..<requests).map { _ in rig.embed("svc") }
            #expect(replies.allSatisfy { $0.status == 200 }, "\(name): \(replies.map(\.status))")
            #expect(replies.allSatisfy { $0.vectors.count == 2 }, "\(name)")
            print(
                "remote fault \(name): \(RemoteRig.percentiles(replies.map(\.seconds))); answered by",
                Dictionary(grouping: replies, by: { $0.answeredBy ?? "?" }).mapValues(\.count))
            replies.forEach(check)
            return replies
        }
        _ = phase("none") { #expect($0.answeredBy == "svc") }
        // Retryable failures then success: the provider answers on a retry.
        for (name, fault) in [
            ("503", FaultProxy.Fault.status(503)), ("502", .status(502)), ("drop", .drop),
        ] {
            let before = try rig.front.metric(#"mass_remote_retries_total{model="svc"}"#) ?? 0
            rig.proxy.script([fault, fault])
            let reply = rig.embed("svc")
            #expect(reply.status == 200 && reply.answeredBy == "svc", "\(name)")
            #expect(try rig.front.metric(#"mass_remote_retries_total{model="svc"}"#) == before + 2, "\(name)")
        }
        // 429 with Retry-After: 1 is waited for, then the provider answers.
        rig.proxy.script([.tooMany(retryAfter: 1)])
        let throttled = rig.embed("svc")
        #expect(throttled.status == 200 && throttled.answeredBy == "svc")
        #expect(throttled.seconds >= 0.95)
        // A 500 is not retried: the fallback answers at once.
        let calls = rig.proxy.received
        rig.proxy.script([.status(500)])
        let failed = rig.embed("svc")
        #expect(failed.status == 200 && failed.answeredBy == "local")
        #expect(rig.proxy.received == calls + 1)
        #expect(try rig.front.metric(#"mass_remote_fallbacks_total{model="svc",to="local"}"#) ?? 0 >= 1)
        // Latency added below the call timeout: still the provider.
        rig.proxy.set(.delay(milliseconds: 150))
        _ = phase("latency 150 ms", requests: 6) { #expect($0.answeredBy == "svc" && $0.seconds >= 0.15) }
        // Every call fails: the fallback answers; after 3 failures in a row the breaker opens and the provider is
        // not called at all.
        for (name, fault) in [("500", FaultProxy.Fault.status(500)), ("hang", .hang), ("drop", .drop)] {
            rig.proxy.set(fault)
            let replies = phase(name, requests: 10) { #expect($0.answeredBy == "local") }
            #expect(try rig.front.metric(#"mass_remote_breaker_state{model="svc"}"#) == 2, "\(name)")
            // Bounded: a hanging provider costs one call timeout (400 ms) at most, then the breaker skips it.
            #expect(replies.map(\.seconds).max()! < 1.5, "\(name)")
            let (status, body) = try rig.ready("svc")
            #expect(status == 503 && (body["reason"] as? String ?? "").contains("breaker"), "\(name)")
            // Recovery: the provider comes back; a probe closes the breaker and the provider answers again.
            rig.proxy.set(.pass)
            #expect(try await rig.waitReady("svc", true), "\(name)")
            #expect(try rig.front.metric(#"mass_remote_breaker_state{model="svc"}"#) == 0, "\(name)")
            _ = phase("\(name), recovered", requests: 4) { #expect($0.answeredBy == "svc") }
        }
        #expect(try rig.front.metric(#"mass_remote_breaker_opens_total{model="svc"}"#) == 3)
        // Hedging is off here; the model asked for ("svc") is the one the usage names, the fallback answered.
        #expect(try rig.front.metric(#"mass_remote_calls_total{model="svc",outcome="timeout"}"#) ?? 0 >= 1)
    }

    @Test func aSlowCallIsHedged() async throws {
        let rig = try await RemoteRig()
        defer { rig.stop() }
        #expect(try await rig.waitReady("hedged", true))
        // The first call hangs for 2 s; the hedge made after 100 ms answers.
        rig.clfProxy.script([.delay(milliseconds: 2000), .pass])
        let reply = rig.embed("hedged")
        #expect(reply.status == 200 && reply.vectors.count == 2 && reply.answeredBy == "hedged")
        #expect(reply.seconds < 1.0)
        #expect(try rig.front.metric(#"mass_remote_hedges_total{model="hedged"}"#) == 1)
        // A fast answer makes no hedge.
        let fast = rig.embed("hedged")
        #expect(fast.status == 200)
        #expect(try rig.front.metric(#"mass_remote_hedges_total{model="hedged"}"#) == 1)
    }

    @Test func faultsWithoutAFallbackAreClearErrorsAndKeepTheKeySecret() async throws {
        let rig = try await RemoteRig()
        defer { rig.stop() }
        #expect(try await rig.waitReady("bare", true))
        // An error status after the retries: 502 with the provider's status, counted by reason.
        rig.bareProxy.set(.status(503))
        let unavailable = rig.embed("bare")
        #expect(unavailable.status == 502)
        #expect(unavailable.message.contains("HTTP 503"))
        #expect(try rig.front.metric(#"mass_remote_errors_total{model="bare",reason="status_5xx"}"#) == 1)
        rig.bareProxy.set(.pass)
        #expect(try await rig.waitReady("bare", true))
        // Answers that are not what the API promises: an error for that request, by reason.
        let cases: [(String, String)] = [
            ("not json", "malformed_json"),
            (#"{"data": [{"index": 0, "embedding": [0.5, 0.5]}]}"#, "wrong_count"),
            (#"{"data": [{"index": 0, "embedding": [0.5]}, {"index": 1, "embedding": [0.5]}]}"#, "wrong_dimension"),
        ]
        for (body, reason) in cases {
            rig.bareProxy.script([.answer(body)])
            let reply = rig.embed("bare")
            #expect(reply.status == 502, "\(reason)")
            #expect(reply.message.contains("malformed"), "\(reason): \(reply.message)")
            #expect(try rig.front.metric(#"mass_remote_errors_total{model="bare",reason="\#(reason)"}"#) == 1)
        }
        // A provider that refuses the input: the client's error (400), not the provider's fault, and the key the
        // provider echoed back is not in it.
        rig.bareProxy.script([.echoHeaders])
        let refused = rig.embed("bare")
        #expect(refused.status == 400)
        #expect(refused.message.contains("refused the input") && refused.message.contains("[redacted]"))
        #expect(!refused.text.contains(RemoteRig.key))
        #expect(try rig.front.metric(#"mass_remote_breaker_state{model="bare"}"#) == 0)
        // Breaker open without a fallback: 503 at once.
        rig.bareProxy.set(.status(500))
        for _ in 0..<3 { _ = rig.embed("bare") }
        let open = rig.embed("bare")
        #expect(open.status == 503 && open.message.contains("circuit breaker is open"))
        #expect(open.seconds < 0.3)
        // The key is in no log line, metric or error body.
        let (_, exposition) = try LiveServer.sync(URLRequest(url: rig.front.base.appendingPathComponent("metrics")))
        #expect(!String(decoding: exposition, as: UTF8.self).contains(RemoteRig.key))
        let logText = (try? String(contentsOf: rig.log, encoding: .utf8)) ?? ""
        #expect(logText.contains("debug") || logText.contains("info"))
        #expect(!logText.contains(RemoteRig.key))
    }

    @Test func anUnreachableOrMisconfiguredProviderMakesTheModelUnready() async throws {
        let rig = try await RemoteRig()
        defer { rig.stop() }
        // The server started and is ready; the model whose provider is down is loaded but not ready.
        let (serverStatus, _) = try rig.front.request("GET", "/v2/health/ready")
        #expect(serverStatus == 200)
        let (status, body) = try rig.ready("down")
        #expect(status == 503)
        #expect((body["reason"] as? String ?? "").contains("cannot reach the provider"))
        let reply = rig.embed("down")
        #expect(reply.status == 502 && reply.message.contains("cannot reach the provider"))
        // The key variable that is not set is named; the request is refused without calling anyone.
        let (keyStatus, keyBody) = try rig.ready("nokey")
        #expect(keyStatus == 503)
        #expect((keyBody["reason"] as? String ?? "").contains("MASS_TEST_MISSING_KEY is not set"))
        let nokey = rig.embed("nokey")
        #expect(nokey.status == 503 && nokey.message.contains("MASS_TEST_MISSING_KEY"))
        // The repository index says why.
        let index = rig.post(rig.front, "/v2/repository/index", "{}")
        let entries = index.json as? [[String: Any]] ?? []
        let down = entries.first { $0["name"] as? String == "down" }
        #expect(down?["state"] as? String == "UNAVAILABLE")
        #expect(entries.first { $0["name"] as? String == "svc" }?["state"] as? String == "READY")
        // Wrong routes and unknown names are the same errors as for local models.
        let wrongTask = rig.post(rig.front, "/rerank", #"{"model": "svc", "query": "q", "texts": ["a"]}"#)
        #expect(wrongTask.status == 400)
    }
}

/// Another embedding space for the calibration tests: the provider's vectors rotated by a fixed random
/// orthogonal matrix (the eigenvectors of a seeded random symmetric one).
enum Rotation {
    static func matrix(_ n: Int, seed: UInt64) throws -> [Double] {
        var state = seed
        func next() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53) - 0.5
        }
        var s = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                let v = next()
                s[i * n + j] = v
                s[j * n + i] = v
            }
        }
        return try LinearAlgebra.symmetricEigen(s, n: n).vectors
    }

    /// An OpenAI embeddings answer with every vector v replaced by v Q.
    static func rotate(_ body: ByteBuffer, _ q: [Double]) -> ByteBuffer {
        guard var json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
            let data = json["data"] as? [[String: Any]]
        else { return body }
        json["data"] = data.map { item -> [String: Any] in
            var item = item
            guard let v = item["embedding"] as? [Double] else { return item }
            let n = v.count
            item["embedding"] = (0..<n).map { j in (0..<n).reduce(0.0) { $0 + v[$1] * q[$1 * n + j] } }
            return item
        }
        return ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: json)) ?? Data())
    }
}

/// A classification service that is the local classifier made three times as confident: TEI predict answers
/// with every raw score multiplied.
enum Sharpen {
    static func scores(_ body: ByteBuffer, by factor: Double) -> ByteBuffer {
        guard let rows = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [[[String: Any]]]
        else { return body }
        let scaled = rows.map { row in
            row.map { item -> [String: Any] in
                var item = item
                item["score"] = (item["score"] as? Double ?? 0) * factor
                return item
            }
        }
        return ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: scaled)) ?? Data())
    }
}

@Suite(.serialized) struct CalibrationServingTests {
    func run(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        try BinaryRunner.separate(arguments)
    }

    /// Runs `mass services calibrate` on the front's repository and registry; the run and its JSON report.
    func calibrate(_ arguments: [String], _ rig: RemoteRig) throws -> (
        run: (status: Int32, out: String, err: String), report: [String: Any]
    ) {
        let repository = try #require(rig.front.repository).path
        let calibrated = try run(
            ["services", "calibrate"] + arguments + ["--repository", repository] + rig.front.registryArguments)
        #expect(calibrated.status == 0, "\(calibrated.err)")
        let report = try #require(
            try JSONSerialization.jsonObject(with: Data(calibrated.out.utf8)) as? [String: Any], "\(calibrated)")
        return (calibrated, report)
    }

    static func figure(_ report: [String: Any], _ part: String, _ key: String) -> Double {
        (report[part] as? [String: Any])?[key] as? Double ?? .nan
    }

    /// The first `count` lines of the peer kit's corpus (varied English sentences), written to a file.
    func corpus(_ count: Int, in rig: RemoteRig) throws -> URL {
        let lines = try String(
            contentsOf: FixturePaths.fixtures.deletingLastPathComponent().appendingPathComponent("peers/corpus.txt"),
            encoding: .utf8
        ).split(separator: "\n").prefix(count)
        let file = rig.empty.appendingPathComponent("inputs-\(count).txt")
        try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func pairsRecordedFromTheServiceFitAnAdapterThatIsServedAsAVersion() async throws {
        let rig = try await RemoteRig()
        defer { rig.stop() }
        let q = try Rotation.matrix(384, seed: 3)
        rig.proxy.transform { Rotation.rotate($0, q) }
        let inputs = try corpus(700, in: rig)
        // Record: each line answered by the service (through the rotating proxy) and by the local model.
        // Batches of 8: svc's call timeout is 400 ms (for the fault tests), which a loaded machine can exceed on 32.
        let recorded = try run([
            "services", "record", "svc", "--candidate", "local", "--inputs", inputs.path, "--batch", "8", "--url",
            rig.front.base.absoluteString,
        ])
        #expect(recorded.status == 0 && recorded.out.contains("recorded 700 pairs"), "\(recorded)")
        let (_, counts) = try LiveServer.sync(
            URLRequest(url: rig.front.base.appendingPathComponent("admin/v1/services/svc/pairs")))
        let listed = (try? JSONSerialization.jsonObject(with: counts)) as? [[String: Any]]
        #expect(listed?.first?["candidate"] as? String == "local" && listed?.first?["pairs"] as? Int == 700)
        // The report: the candidate's vectors are in another space (cosine near 0) but its neighbours are the
        // service's (a rotation keeps them).
        let reportText = try run(["services", "report", "svc", "--url", rig.front.base.absoluteString])
        #expect(reportText.status == 0 && reportText.out.contains("candidate local: 700 pairs"), "\(reportText)")
        let (_, reportData) = try LiveServer.sync(
            URLRequest(url: rig.front.base.appendingPathComponent("admin/v1/services/svc/report")))
        let serviceReport = try #require(try JSONSerialization.jsonObject(with: reportData) as? [String: Any])
        let candidate = try #require((serviceReport["candidates"] as? [[String: Any]])?.first)
        #expect(abs(candidate["mean_cosine"] as? Double ?? 1) < 0.2)
        #expect(candidate["recall_at_10"] as? Double ?? 0 > 0.95)
        #expect((candidate["service_latency_ms"] as? [String: Any])?["samples"] as? Int == 700)
        // Fit and register.
        let (calibrated, report) = try calibrate(
            ["svc", "--candidate", "local", "--register", "svc-cal", "--alias", "production"], rig)
        func figure(_ part: String, _ key: String) -> Double { Self.figure(report, part, key) }
        print("calibration (MiniLM vs MiniLM rotated):", calibrated.out.replacingOccurrences(of: "\n", with: " "))
        #expect(report["held_out_pairs"] as? Int ?? 0 > 80)
        #expect(abs(figure("before", "mean_cosine")) < 0.2)
        #expect(figure("before", "recall_at_10") < 0.2)
        #expect(figure("procrustes", "mean_cosine") > 0.99)
        #expect(figure("procrustes", "recall_at_10") > 0.9)
        #expect(figure("affine", "mean_cosine") > 0.99)
        #expect(calibrated.err.contains("registered svc-cal version 1"))
        // The calibrated version is served (the registry poll) and answers like the service.
        #expect(try await rig.waitReady("svc-cal", true, seconds: 15))
        let fresh = ["a sentence the fit never saw", "Return the number of items in a container."]
        let service = rig.embed("svc", fresh)
        let local = rig.embed("svc-cal", fresh)
        #expect(service.status == 200 && local.status == 200 && local.answeredBy == "svc-cal")
        let served = zip(service.vectors, local.vectors).map { a, b in zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        print("calibrated version vs service, cosine of unseen texts:", served)
        #expect(served.count == 2 && served.allSatisfy { $0 > 0.999 })
        // Lineage: the pairs and the service, and the figures as metrics.
        let (_, versionData) = try LiveServer.sync(
            URLRequest(url: rig.front.base.appendingPathComponent("admin/v1/models/svc-cal/versions/1")))
        let version = try #require(try JSONSerialization.jsonObject(with: versionData) as? [String: Any])
        #expect((version["source"] as? [String: Any])?["kind"] as? String == "calibration")
        #expect((version["source"] as? [String: Any])?["uri"] as? String == "service:svc")
        #expect(version["dataset"] as? String == "pairs:svc/local:700")
        #expect(((version["metrics"] as? [String: Any])?["cosine_to_service"] as? Double ?? 0) > 0.99)
        // The service itself as a registry model (its version is its provider), the calibrated local model as
        // its next version, shadowed against it: the deployment's report compares them online.
        let serviceFolder = rig.empty.appendingPathComponent("emb")
        try FileManager.default.createDirectory(at: serviceFolder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: try #require(rig.front.repository).appendingPathComponent("svc/mass.json"),
            to: serviceFolder.appendingPathComponent("mass.json"))
        let repository = ["--repository", try #require(rig.front.repository).path] + rig.front.registryArguments
        let registered = try run(["models", "register", serviceFolder.path, "--name", "emb"] + repository)
        #expect(registered.status == 0 && registered.out.contains(#""kind" : "service""#), "\(registered)")
        let second = try run(
            ["services", "calibrate", "svc", "--candidate", "local", "--register", "emb"] + repository)
        #expect(second.status == 0 && second.err.contains("registered emb version 2"), "\(second.err)")
        let deployed = try run(["deploy", "set", "emb", "--route", "1=100", "--shadow", "2=1"] + repository)
        #expect(deployed.status == 0, "\(deployed)")
        var shadow: [String: Any] = [:]
        for _ in 0..<100 {
            let reply = rig.embed("emb", ["a shadowed request", "and another one"])
            if reply.status == 200 && reply.answeredBy == "emb" {
                (_, shadow) = try rig.front.request("GET", "/admin/v1/deployments/emb/report")
                if shadow["compared"] as? Int ?? 0 >= 5 { break }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(shadow["shadow_version"] as? Int == 2 && shadow["primary_versions"] as? [Int] == [1], "\(shadow)")
        print("shadow agreement of the calibrated version:", shadow["agreement"] ?? "none")
        #expect((shadow["agreement"] as? [String: Double])?["cosine"] ?? 0 > 0.999, "\(shadow)")
    }

    @Test func classificationPairsFitATemperatureThatIsServed() async throws {
        let rig = try await RemoteRig()
        defer { rig.stop() }
        rig.clfProxy.transform { Sharpen.scores($0, by: 3) }
        let inputs = try corpus(300, in: rig)
        let recorded = try run([
            "services", "record", "svc-clf", "--inputs", inputs.path, "--url", rig.front.base.absoluteString,
        ])
        #expect(recorded.status == 0 && recorded.out.contains("recorded 300 pairs"), "\(recorded)")
        let (calibrated, report) = try calibrate(
            ["svc-clf", "--candidate", "clf-local", "--register", "clf-cal", "--adapter", "temperature"], rig)
        func figure(_ part: String, _ key: String) -> Double { Self.figure(report, part, key) }
        print("calibration (classifier vs itself x3):", calibrated.out.replacingOccurrences(of: "\n", with: " "))
        // The service is the candidate with logits x3: the temperature that makes them agree is 1/3.
        #expect(abs((report["temperature_value"] as? Double ?? 0) - 1.0 / 3) < 0.01)
        #expect(figure("before", "agreement") == 1 && figure("temperature", "agreement") == 1)
        #expect(figure("temperature", "cross_entropy") < figure("before", "cross_entropy"))
        #expect(figure("temperature", "ece") <= figure("before", "ece"))
        // Served: the calibrated classifier's logits are the service's.
        #expect(try await rig.waitReady("clf-cal", true, seconds: 15))
        let body = #"{"model": "MODEL", "inputs": [["a", "b"], "Return a new dict.", "x"], "raw_scores": true}"#
        let service = rig.post(rig.front, "/predict", body.replacingOccurrences(of: "MODEL", with: "svc-clf"))
        let local = rig.post(rig.front, "/predict", body.replacingOccurrences(of: "MODEL", with: "clf-cal"))
        func scores(_ reply: RemoteRig.Reply) -> [String: Double] {
            var out: [String: Double] = [:]
            for (i, row) in ((reply.json as? [[[String: Any]]]) ?? []).enumerated() {
                for item in row { out["\(i)/\(item["label"] as? String ?? "")"] = item["score"] as? Double }
            }
            return out
        }
        #expect(service.status == 200 && local.status == 200 && scores(local).count == 9)
        for (key, value) in scores(service) { #expect(abs((scores(local)[key] ?? .nan) - value) < 1e-4, "\(key)") }
        let (_, reportData) = try LiveServer.sync(
            URLRequest(url: rig.front.base.appendingPathComponent("admin/v1/services/svc-clf/report")))
        let candidate =
            ((try JSONSerialization.jsonObject(with: reportData) as? [String: Any])?["candidates"]
            as? [[String: Any]])?.first
        #expect(candidate?["top_label_agreement"] as? Double == 1)
    }

    @Test func liveTrafficIsSampledIntoPairsAndBadRequestsAreRefused() async throws {
        let rig = try await RemoteRig()
        defer { rig.stop() }
        for _ in 0..<3 { #expect(rig.embed("svc-rec").status == 200) }
        var pairs = 0
        for _ in 0..<100 {
            let (_, data) = try LiveServer.sync(
                URLRequest(url: rig.front.base.appendingPathComponent("admin/v1/services/svc-rec/pairs")))
            pairs = ((try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]])?.first?["pairs"] as? Int ?? 0
            if pairs >= 6 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(pairs == 6)
        #expect(
            try rig.front.metric(
                #"mass_service_pairs_recorded_total{model="svc-rec",candidate="local",origin="traffic"}"#) == 6)
        // The report counts the requests, the provider's tokens and the latency of its answers; the candidate
        // answered the same inputs (same space: cosine 1).
        let (_, reportData) = try LiveServer.sync(
            URLRequest(url: rig.front.base.appendingPathComponent("admin/v1/services/svc-rec/report")))
        let report = try #require(try JSONSerialization.jsonObject(with: reportData) as? [String: Any])
        let statistics = try #require(report["statistics"] as? [String: Any])
        #expect(statistics["requests"] as? Int == 3 && statistics["provider_failures"] as? Int == 0)
        #expect((statistics["units"] as? [String: Any])?["tokens"] as? Double ?? 0 > 10)
        #expect((statistics["latency_ms"] as? [String: Any])?["samples"] as? Int == 3)
        let candidate = (report["candidates"] as? [[String: Any]])?.first
        #expect(candidate?["name"] as? String == "local" && candidate?["pairs"] as? Int == 6)
        #expect(abs((candidate?["mean_cosine"] as? Double ?? 0) - 1) < 1e-4)
        let notService = try rig.front.request("GET", "/admin/v1/services/local/report")
        #expect(notService.0 == 400)
        // Refused: a local model is not a service; an unknown candidate; no inputs; a candidate of another task.
        let local = rig.post(rig.front, "/admin/v1/services/local/pairs", #"{"candidate": "svc", "inputs": ["a"]}"#)
        #expect(local.status == 400)
        let unknown = rig.post(
            rig.front, "/admin/v1/services/svc-rec/pairs", #"{"candidate": "nope", "inputs": ["a"]}"#)
        #expect(unknown.status == 404)
        let empty = rig.post(rig.front, "/admin/v1/services/svc-rec/pairs", #"{"inputs": []}"#)
        #expect(empty.status == 400)
        let wrongTask = rig.post(
            rig.front, "/admin/v1/services/svc-rec/pairs", #"{"candidate": "svc-rr", "inputs": ["a"]}"#)
        #expect(wrongTask.status == 400)
        let itself = rig.post(
            rig.front, "/admin/v1/services/svc-rec/pairs", #"{"candidate": "svc-rec", "inputs": ["a"]}"#)
        #expect(itself.status == 400)
        let malformed = rig.post(rig.front, "/admin/v1/services/svc-rec/pairs", #"{"inputs": "a"}"#)
        #expect(malformed.status == 400)
    }
}
