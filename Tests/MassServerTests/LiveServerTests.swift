import Foundation
import MassTesting
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Starts `mass serve` (the built binary) on a free loopback port and speaks HTTP to it.
final class LiveServer: @unchecked Sendable {  // fields are set once in init
    let process = Process()
    let port: Int
    let base: URL
    /// The temporary repository when `massJSON` was given.
    let repository: URL?

    /// `massJSON`, when given, replaces the default model's mass.json (in a temporary repository whose version
    /// folders, `versions`, link to the real one); `also` adds more models to that repository (name, mass.json,
    /// version 1's folder).
    /// The registry of this server: a temporary SQLite file and store unless `registry` names one (the
    /// repository's default registry beside it is never touched by tests).
    /// `arguments` are added to `mass serve`'s; `log`, when given, receives its standard error.
    let registryHome: URL
    let registryArguments: [String]

    init(
        massJSON: String? = nil, versions: [Int] = [1], model: String = "all-MiniLM-L6-v2",
        modelDirectory: URL = MiniLMFixture.modelDirectory, also: [(String, String, URL)] = [],
        repositoryRoot: URL? = nil, registry: String? = nil, arguments: [String] = [], log: URL? = nil,
        environment: [String: String] = [:]
    ) throws {
        port = try Self.freePort()
        base = URL(string: "http://127.0.0.1:\(port)")!
        registryHome = FileManager.default.temporaryDirectory.appendingPathComponent("mass-live-registry-\(UUID())")
        registryArguments = [
            "--registry", registry ?? registryHome.appendingPathComponent("registry.sqlite").path, "--store",
            registryHome.appendingPathComponent("store").path,
        ]
        var root = repositoryRoot ?? FixturePaths.models
        if let massJSON {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("mass-live-\(getpid())-\(port)")
            let folder = root.appendingPathComponent(model)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(massJSON.utf8).write(to: folder.appendingPathComponent("mass.json"))
            for version in versions {
                try FileManager.default.createSymbolicLink(
                    at: folder.appendingPathComponent(String(version)), withDestinationURL: modelDirectory)
            }
            for (name, json, directory) in also {
                let other = root.appendingPathComponent(name)
                try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
                try Data(json.utf8).write(to: other.appendingPathComponent("mass.json"))
                try FileManager.default.createSymbolicLink(
                    at: other.appendingPathComponent("1"), withDestinationURL: directory)
            }
            repository = root
        } else {
            repository = nil
        }
        process.executableURL = Self.binary
        process.arguments =
            ["serve", "--repository", root.path, "--port", String(port)] + registryArguments + arguments
        process.standardOutput = FileHandle.nullDevice
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        if let log {
            FileManager.default.createFile(atPath: log.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: log)
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        // Ready when the probe answers (the model is loaded and warmed up first).
        for _ in 0..<300 {
            if let (status, _) = try? Self.sync(URLRequest(url: base.appendingPathComponent("v2/health/ready"))),
                status == 200
            {
                return
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "mass serve did not become ready"])
    }

    /// SIGTERM, then waits for the exit; returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        stop()
        if let repository { try? FileManager.default.removeItem(at: repository) }
        try? FileManager.default.removeItem(at: registryHome)
    }

    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["MASS_BIN"] { return URL(fileURLWithPath: path) }
        return FixturePaths.packageRoot.appendingPathComponent(".build/release/mass")
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func sync(_ request: URLRequest) throws -> (Int, Data) {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, Data)?
        nonisolated(unsafe) var failure: (any Error)?
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let error {
                failure = error
            } else {
                result = ((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data())
            }
            done.signal()
        }.resume()
        done.wait()
        if let failure { throw failure }
        return result!
    }

    /// POSTs JSON over a fresh TCP connection of its own and returns the status code (0 when the connection
    /// was refused or closed without an answer). URLSession on Linux queues requests per host, which would
    /// hide whether the server accepted them.
    func rawPost(_ path: String, json: String) -> Int { rawPost(path, body: Array(json.utf8)).status }

    /// The same with raw body bytes; returns the status and the response body (after the blank line).
    func rawPost(_ path: String, body: [UInt8]) -> (status: Int, body: [UInt8]) {
        let r = rawPost(path, body: body, headers: ["Content-Type: application/json"])
        return (r.status, r.body)
    }

    /// The same with the given header lines; also returns the response's header lines.
    func rawPost(_ path: String, body: [UInt8], headers: [String]) -> (status: Int, body: [UInt8], headers: [String]) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return (0, [], []) }
        let head =
            "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + headers.map { $0 + "\r\n" }.joined()
            + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + body
        guard send(fd, bytes, bytes.count, 0) == bytes.count else { return (0, [], []) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            response += chunk[0..<n]
        }
        // "HTTP/1.1 200 OK"
        let statusLine = String(decoding: response.prefix(12), as: UTF8.self)
        let separator: [UInt8] = [13, 10, 13, 10]
        var bodyStart = response.count
        if response.count >= 4 {
            for i in 0...(response.count - 4) where Array(response[i..<(i + 4)]) == separator {
                bodyStart = i + 4
                break
            }
        }
        let headerLines = String(decoding: response[0..<max(0, bodyStart - 4)], as: UTF8.self)
            .components(separatedBy: "\r\n").dropFirst()
        return (Int(statusLine.dropFirst(9).prefix(3)) ?? 0, Array(response[bodyStart...]), Array(headerLines))
    }

    /// The value of a metric line (exact name and labels) in /metrics, if present.
    func metric(_ series: String) throws -> Double? {
        let (_, data) = try Self.sync(URLRequest(url: URL(string: "/metrics", relativeTo: base)!))
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix(series + " ") }
        return line.flatMap { Double($0.split(separator: " ").last!) }
    }

    func request(_ method: String, _ path: String, json: String? = nil, contentType: String = "application/json") throws
        -> (Int, [String: Any])
    {
        var request = URLRequest(url: URL(string: path, relativeTo: base)!)
        request.httpMethod = method
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        let (status, data) = try Self.sync(request)
        return (status, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }
}

/// Each test starts its own server (about half a second: the model loads and warms up) and stops it.
@Suite(.serialized) struct LiveServerTests {
    func server() throws -> LiveServer { try LiveServer() }

    @Test func probesAndMetadata() throws {
        let s = try server()
        defer { s.stop() }
        #expect(try s.request("GET", "/v2/health/live").0 == 200)
        #expect(try s.request("GET", "/v2/health/ready").1["ready"] as? Bool == true)
        #expect(try s.request("GET", "/v2").1["name"] as? String == "mass")
        let (status, meta) = try s.request("GET", "/v2/models/all-MiniLM-L6-v2")
        #expect(status == 200 && meta["versions"] as? [String] == ["1"])
        #expect(try s.request("GET", "/v2/models/all-MiniLM-L6-v2/versions/1/ready").0 == 200)
        #expect(try s.request("GET", "/v2/models/all-MiniLM-L6-v2/versions/7/ready").0 == 404)
        #expect(try s.request("GET", "/v2/models/nope").0 == 404)
        let models = try s.request("GET", "/v1/models").1["data"] as? [[String: Any]]
        #expect(models?.map { $0["id"] as? String } == ["all-MiniLM-L6-v2", "efficientnet-lite0", "whisper-tiny.en"])
    }

    @Test func openAIEmbeddingsAreGolden() throws {
        let s = try server()
        defer { s.stop() }
        let cases = try MiniLMFixture.load().cases
        let picked = [cases[0], cases[2], cases[13]]
        let input = String(data: try JSONSerialization.data(withJSONObject: picked.map(\.text)), encoding: .utf8)!
        let (status, body) = try s.request(
            "POST", "/v1/embeddings", json: #"{"model": "all-MiniLM-L6-v2", "input": \#(input)}"#)
        #expect(status == 200)
        let data = try #require(body["data"] as? [[String: Any]])
        for (item, c) in zip(data, picked) {
            let embedding = (item["embedding"] as? [Double] ?? []).map(Float.init)
            #expect(Comparison.maxAbsDiff(embedding, c.embedding) <= 1e-4, "case \(c.id)")
        }
        let usage = try #require(body["usage"] as? [String: Int])
        #expect(usage["prompt_tokens"] == picked.reduce(0) { $0 + $1.n_tokens })
        // base64: little-endian float32 bytes.
        let (_, b64) = try s.request(
            "POST", "/v1/embeddings",
            json: #"{"model": "all-MiniLM-L6-v2", "input": "Hello world", "encoding_format": "base64"}"#)
        let encoded = try #require((b64["data"] as? [[String: Any]])?.first?["embedding"] as? String)
        let bytes = try #require(Data(base64Encoded: encoded))
        let floats = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(Comparison.maxAbsDiff(floats, cases[0].embedding) <= 1e-4)
    }

    @Test func kserveInferIsGolden() throws {
        let s = try server()
        defer { s.stop() }
        let cases = try MiniLMFixture.load().cases
        let json =
            #"{"id": "r1", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2, 1], "data": [["Hello world"], ["A man is eating food."]]}]}"#
        let (status, body) = try s.request("POST", "/v2/models/all-MiniLM-L6-v2/versions/1/infer", json: json)
        #expect(status == 200 && body["id"] as? String == "r1")
        let output = try #require((body["outputs"] as? [[String: Any]])?.first)
        #expect(output["shape"] as? [Int] == [2, 384] && output["datatype"] as? String == "FP32")
        let data = (output["data"] as? [Double] ?? []).map(Float.init)
        #expect(data.count == 768)
        #expect(Comparison.maxAbsDiff(Array(data[0..<384]), cases[0].embedding) <= 1e-4)
        #expect(Comparison.maxAbsDiff(Array(data[384...]), cases[2].embedding) <= 1e-4)
    }

    @Test func badRequestsGetClearErrors() throws {
        let s = try server()
        defer { s.stop() }
        let infer = "/v2/models/all-MiniLM-L6-v2/infer"
        let cases: [(String, String, String?, Int)] = [
            (infer, "{bad json", nil, 400),
            (infer, "[]", nil, 400),
            (infer, #"{"inputs": [{"name": "t", "datatype": "FP32", "shape": [1], "data": [1]}]}"#, nil, 400),
            (infer, #"{"inputs": [{"name": "t", "datatype": "BYTES", "shape": [2], "data": ["a"]}]}"#, nil, 400),
            (infer, #"{"inputs": [{"name": "t", "datatype": "BYTES", "shape": [0], "data": []}]}"#, nil, 400),
            (infer, #"{"inputs": [{"name": "t", "datatype": "BYTES", "shape": [1], "data": [5]}]}"#, nil, 400),
            (infer, #"{"inputs": []}"#, nil, 400),
            (infer, "x", "text/plain", 415),
            ("/v2/models/nope/infer", #"{"inputs": []}"#, nil, 404),
            ("/v1/embeddings", #"{"model": "all-MiniLM-L6-v2", "input": 5}"#, nil, 400),
            ("/v1/embeddings", #"{"model": "all-MiniLM-L6-v2", "input": []}"#, nil, 400),
            ("/v1/embeddings", #"{"input": "x"}"#, nil, 400),
            ("/v1/embeddings", #"{"model": "all-MiniLM-L6-v2", "input": "x", "encoding_format": "hex"}"#, nil, 400),
            ("/v1/embeddings", #"{"model": "nope", "input": "x"}"#, nil, 404),
        ]
        for (path, json, type, expected) in cases {
            let (status, body) = try s.request("POST", path, json: json, contentType: type ?? "application/json")
            #expect(status == expected, "\(path) \(json): \(status)")
            if path.hasPrefix("/v1") {
                #expect((body["error"] as? [String: Any])?["message"] is String, "\(json)")
            } else {
                #expect(body["error"] is String, "\(json)")
            }
        }
        // Over the body limit (8 MiB): 413.
        let big = #"{"model": "all-MiniLM-L6-v2", "input": ""# + String(repeating: "a", count: 9 << 20) + #""}"#
        #expect(try s.request("POST", "/v1/embeddings", json: big).0 == 413)
        #expect(try s.request("GET", "/v2/health/live").0 == 200)
    }

    /// A burst of requests in flight when SIGTERM arrives: every one is answered, and the server exits 0.
    @Test func gracefulShutdownAnswersEveryAcceptedRequest() throws {
        // A 4 s queue delay (a loaded machine cannot outlast it) and room for all 16 in one batch: they sit in
        // the queue when SIGTERM arrives.
        let s = try LiveServer(
            massJSON:
                #"{"task": "text-embedding", "batching": {"max_batch_size": 64, "max_batch_tokens": 100000, "max_queue_delay_ms": 4000}}"#
        )
        let group = DispatchGroup()
        let statuses = NSLock()
        nonisolated(unsafe) var answered: [Int] = []
        let text = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 20)
        for _ in 0..<16 {
            group.enter()
            Thread.detachNewThread {
                let status = s.rawPost(
                    "/v1/embeddings", json: #"{"model": "all-MiniLM-L6-v2", "input": ["\#(text)", "\#(text)"]}"#)
                statuses.withLock { answered.append(status) }
                group.leave()
            }
        }
        let series = #"mass_queue_depth{model="all-MiniLM-L6-v2"}"#
        for _ in 0..<200 where (try? s.metric(series)) != 16 { Thread.sleep(forTimeInterval: 0.02) }
        #expect(try s.metric(series) == 16, "all 16 requests are queued before the signal")
        let status = s.stop()
        group.wait()
        #expect(status == 0)
        #expect(answered.count == 16)
        #expect(answered.allSatisfy { $0 == 200 }, "\(answered)")
    }

    /// A client that closes its connection while its request waits in the queue: the request is never computed.
    @Test func disconnectedClientsAreDroppedBeforeCompute() throws {
        let s = try LiveServer(massJSON: #"{"task": "text-embedding", "batching": {"max_queue_delay_ms": 1500}}"#)
        defer { s.stop() }
        let tokens = #"mass_tokens_total{model="all-MiniLM-L6-v2"}"#
        let before = try s.metric(tokens)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(s.port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        #expect(connected == 0)
        let body = #"{"model": "all-MiniLM-L6-v2", "input": "nobody will read this"}"#
        let request = Array(
            "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                .utf8)
        #expect(send(fd, request, request.count, 0) == request.count)
        let depth = #"mass_queue_depth{model="all-MiniLM-L6-v2"}"#
        for _ in 0..<100 where (try? s.metric(depth)) != 1 { Thread.sleep(forTimeInterval: 0.01) }
        #expect(try s.metric(depth) == 1, "the request is queued")
        close(fd)
        let cancelled = #"mass_request_failures_total{model="all-MiniLM-L6-v2",reason="cancelled"}"#
        for _ in 0..<100 where (try? s.metric(cancelled)) != 1 { Thread.sleep(forTimeInterval: 0.02) }
        #expect(try s.metric(cancelled) == 1)
        #expect(try s.metric(depth) == 0)
        Thread.sleep(forTimeInterval: 1.6)  // past the queue delay: it would have run by now
        #expect(try s.metric(tokens) == before, "the abandoned request was never computed")
        #expect(try s.request("POST", "/v1/embeddings", json: body).0 == 200)
    }

    /// Concurrent requests show up in /metrics: counts by route and status, and batches larger than one.
    @Test func metricsShowRequestsAndBatching() throws {
        // A 50 ms queue delay so that the burst shares batches even on a loaded machine.
        let s = try LiveServer(massJSON: #"{"task": "text-embedding", "batching": {"max_queue_delay_ms": 50}}"#)
        defer { s.stop() }
        let group = DispatchGroup()
        for i in 0..<24 {
            group.enter()
            Thread.detachNewThread {
                _ = s.rawPost(
                    "/v1/embeddings",
                    json: #"{"model": "all-MiniLM-L6-v2", "input": "sentence number \#(i) of a small burst"}"#)
                group.leave()
            }
        }
        group.wait()
        _ = try s.request("POST", "/v1/embeddings", json: #"{"model": "nope", "input": "x"}"#)
        let (status, data) = try LiveServer.sync(URLRequest(url: URL(string: "/metrics", relativeTo: s.base)!))
        let text = String(decoding: data, as: UTF8.self)
        #expect(status == 200)
        // 24 burst requests plus the warm-up-free count: exactly what was sent.
        #expect(
            text.contains(#"mass_requests_total{model="all-MiniLM-L6-v2",route="/v1/embeddings",status="200"} 24"#),
            "\(text)")
        #expect(text.contains(#"mass_requests_total{model="unknown",route="/v1/embeddings",status="404"} 1"#))
        #expect(text.contains("mass_models_loaded 1"))
        #expect(text.contains("# TYPE mass_batch_size histogram"))
        // Batches: the warm-up (1) plus the burst's; fewer batches than requests means some held several.
        let batches = text.split(separator: "\n").first {
            $0.hasPrefix(#"mass_batch_size_count{model="all-MiniLM-L6-v2"}"#)
        }
        let count = batches.flatMap { Int($0.split(separator: " ").last!) } ?? 0
        #expect(count >= 2 && count < 25, "batches: \(count)")
        #expect(text.contains(#"mass_tokens_total{model="all-MiniLM-L6-v2"}"#))
    }

    /// Thousands of mutated and truncated bodies: every one gets a well-formed answer (a known status and a JSON
    /// body; an error body for every status but 200) and the server stays healthy. Seeded, so reproducible.
    @Test func mutatedBodiesNeverBreakTheServer() throws {
        let s = try server()
        defer { s.stop() }
        let seeds: [(String, String)] = [
            (
                "/v1/embeddings",
                #"{"model": "all-MiniLM-L6-v2", "input": ["Hello world", "Bonjour"], "encoding_format": "float"}"#
            ),
            (
                "/v2/models/all-MiniLM-L6-v2/infer",
                #"{"id": "a", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]}"#
            ),
        ]
        // A binary-extension body: the JSON header's length goes in Inference-Header-Content-Length.
        let binaryHeader = Array(
            #"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 10}}]}"#
                .utf8)
        let binarySeed = binaryHeader + [1, 0, 0, 0, 0x61, 1, 0, 0, 0, 0x62]
        var state: UInt64 = 0x5EED
        func random(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        let alphabet = Array(#"{}[]":,0123456789.-eE truefalsnul\u"#.utf8) + [0x00, 0xFF, 0xC3, 0x80]
        var counts: [Int: Int] = [:]
        for round in 0..<2000 {
            let binary = round % 3 == 2
            let path = binary ? "/v2/models/all-MiniLM-L6-v2/infer" : seeds[round % 3].0
            var body = binary ? binarySeed : Array(seeds[round % 3].1.utf8)
            for _ in 0..<(1 + random(4)) {
                switch random(4) {
                case 0: body = Array(body.prefix(random(body.count + 1)))  // truncate
                case 1 where !body.isEmpty: body[random(body.count)] = alphabet[random(alphabet.count)]  // replace
                case 2: body.insert(alphabet[random(alphabet.count)], at: random(body.count + 1))  // insert
                default: if !body.isEmpty { body.remove(at: random(body.count)) }  // delete
                }
            }
            let headers =
                binary
                ? ["Inference-Header-Content-Length: \(binaryHeader.count + random(5) - 2)"]
                : ["Content-Type: application/json"]
            let (status, answer, _) = s.rawPost(path, body: body, headers: headers)
            counts[status, default: 0] += 1
            #expect(
                [200, 400, 404, 413, 415].contains(status),
                "round \(round): status \(status) for \(String(decoding: body, as: UTF8.self))")
            let json = try? JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any]
            #expect(json != nil, "round \(round): the answer is not a JSON object")
            if status != 200 { #expect(json?["error"] != nil, "round \(round): an error without an error body") }
        }
        #expect((counts[400] ?? 0) > 100, "most mutations should be refused: \(counts)")
        #expect(try s.request("GET", "/v2/health/ready").0 == 200)
        #expect(
            try s.request("POST", "/v1/embeddings", json: #"{"model": "all-MiniLM-L6-v2", "input": "still fine"}"#).0
                == 200)
    }
}
