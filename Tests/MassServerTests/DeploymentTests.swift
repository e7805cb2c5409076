import Foundation
import MassTesting
import Testing

/// Deployments on a live `mass serve` with a registry: versions registered through the admin API, a canary, a
/// promotion and a rollback under load with no failed request, every response labelled with its version, and
/// sticky routing.
@Suite(.serialized) struct DeploymentTests {
    static let classifier = TextHeadFixture.classifierDirectory.path

    /// A server with an empty repository, and two versions of one text classifier in its registry.
    func server(registry: String? = nil) throws -> (LiveServer, URL) {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("mass-empty-\(UUID())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let server = try LiveServer(repositoryRoot: empty, registry: registry)
        for alias in ["production", "candidate"] {
            let (status, body) = try server.request(
                "POST", "/admin/v1/models/intent/versions",
                json: #"{"path": "\#(Self.classifier)", "task": "text-classification", "alias": "\#(alias)"}"#)
            try #require(status == 201, "\(body)")
        }
        return (server, empty)
    }

    /// One /predict call on its own connection: the status and the version header.
    static func predict(_ server: LiveServer, user: String? = nil) -> (status: Int, version: Int?) {
        let r = server.rawPost(
            "/predict", body: Array(#"{"model": "intent", "inputs": "turn the lights on"}"#.utf8),
            headers: ["Content-Type: application/json"] + (user.map { ["X-User: \($0)"] } ?? []))
        let version = r.headers.first { $0.lowercased().hasPrefix("x-model-version:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
        return (r.status, version)
    }

    @Test func canaryPromoteAndRollbackUnderLoadFailNoRequest() throws {
        let (server, empty) = try server()
        defer { try? FileManager.default.removeItem(at: empty) }
        // Each result: the phase the request was sent in, its status and version.
        struct Result {
            let phase: Int
            let status: Int
            let version: Int?
        }
        let phase = Shared(0)
        let results = Shared<[Result]>([])
        let stop = Shared(false)
        let group = DispatchGroup()
        for _ in 0..<6 {
            group.enter()
            Thread.detachNewThread {
                while !stop.get() {
                    let sent = phase.get()
                    let (status, version) = Self.predict(server)
                    // A phase counts a request only if it was sent and answered within it.
                    let answered = phase.get()
                    results.update {
                        $0.append(Result(phase: sent == answered ? sent : -1, status: status, version: version))
                    }
                }
                group.leave()
            }
        }
        func waitFor(_ count: Int, inPhase p: Int) {
            while results.get().filter({ $0.phase == p }).count < count { Thread.sleep(forTimeInterval: 0.01) }
        }
        func admin(_ method: String, _ path: String, _ json: String) throws {
            let (status, body) = try server.request(method, path, json: json)
            try #require((200..<300).contains(status), "\(method) \(path): \(status) \(body)")
        }
        // Requests overlapping an admin call belong to no phase: the change lands somewhere inside the call.
        let between = 99
        waitFor(500, inPhase: 0)  // production = version 1
        phase.set(between)
        try admin(
            "PUT", "/admin/v1/deployments/intent",
            #"{"routes": [{"target": "production", "weight": 90}, {"target": "2", "weight": 10}]}"#)
        phase.set(1)
        waitFor(1000, inPhase: 1)  // the canary at 10 %
        phase.set(between)
        try admin("POST", "/admin/v1/models/intent/promote", #"{"version": 2, "reason": "canary looked fine"}"#)
        try admin("PUT", "/admin/v1/deployments/intent", #"{"routes": [{"target": "production", "weight": 100}]}"#)
        phase.set(2)
        waitFor(500, inPhase: 2)  // promoted: version 2
        phase.set(between)
        try admin("POST", "/admin/v1/models/intent/rollback", #"{"reason": "drill"}"#)
        phase.set(3)
        waitFor(500, inPhase: 3)  // rolled back: version 1
        stop.set(true)
        group.wait()

        let all = results.get()
        #expect(all.count >= 2500)
        #expect(
            all.filter { $0.status != 200 }.count == 0,
            "failed: \(all.filter { $0.status != 200 }.prefix(5).map(\.status))")
        #expect(all.allSatisfy { $0.version == 1 || $0.version == 2 })
        func versions(_ p: Int) -> [Int] { all.filter { $0.phase == p }.compactMap(\.version) }
        #expect(Set(versions(0)) == [1])
        let canary = Double(versions(1).filter { $0 == 2 }.count) / Double(versions(1).count)
        #expect(canary > 0.04 && canary < 0.18, "canary share \(canary)")
        #expect(Set(versions(2)) == [2])
        #expect(Set(versions(3)) == [1])
        // The history tells the story, with who and why.
        let (_, history) = try server.request("GET", "/admin/v1/models/intent")
        #expect((history["aliases"] as? [String: Int])?["production"] == 1)
    }

    @Test func stickyRoutingKeepsAUserOnOneVersion() throws {
        let (server, empty) = try server()
        defer { try? FileManager.default.removeItem(at: empty) }
        let (status, body) = try server.request(
            "PUT", "/admin/v1/deployments/intent",
            json:
                #"{"routes": [{"target": "1", "weight": 50}, {"target": "2", "weight": 50}], "sticky_header": "X-User"}"#
        )
        try #require(status == 200, "\(body)")
        var seen: [String: Set<Int>] = [:]
        for round in 0..<5 {
            for user in (0..<40).map({ "user-\($0)" }) {
                let r = Self.predict(server, user: user)
                #expect(r.status == 200, "round \(round)")
                if let v = r.version { seen[user, default: []].insert(v) }
            }
        }
        #expect(seen.values.allSatisfy { $0.count == 1 })
        let onTwo = seen.values.filter { $0 == [2] }.count
        #expect(onTwo > 8 && onTwo < 32, "\(onTwo) of 40 users on version 2")
    }

    /// The registry's database goes away under a running server (PostgreSQL: the database is dropped with its
    /// connections): the server keeps serving what it loaded and reports itself degraded.
    @Test func aLostDatabaseLeavesTheServerServingAndDegraded() throws {
        let database = try ExternalTools.freshPostgresDatabase(prefix: "mass_live")
        let (server, empty) = try server(registry: database.url)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(Self.predict(server).status == 200)
        let (_, healthy) = try server.request("GET", "/v2/health/ready")
        #expect(healthy["degraded"] == nil)
        try ExternalTools.psql("DROP DATABASE \(database.name) WITH (FORCE)")
        var degraded: [String: Any] = [:]
        for _ in 0..<100 {
            let (status, body) = try server.request("GET", "/v2/health/ready")
            #expect(status == 200)
            if body["degraded"] as? Bool == true {
                degraded = body
                break
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(degraded["degraded"] as? Bool == true, "\(degraded)")
        #expect((degraded["reason"] as? String)?.contains("registry") == true, "\(degraded)")
        #expect((0..<20).allSatisfy { _ in Self.predict(server).status == 200 })
        #expect(try server.metric("mass_registry_up") == 0)
        let (status, body) = try server.request("GET", "/admin/v1/models/intent")
        #expect(status == 503, "\(body)")
    }

    /// A copy of the test classifier whose last label's bias is raised by 100: a genuinely different model
    /// that always answers that label.
    static func biasedClassifier() throws -> URL {
        let source = TextHeadFixture.classifierDirectory
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mass-biased-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for file in ["config.json", "tokenizer.json"] {
            try FileManager.default.copyItem(
                at: source.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
        var bytes = [UInt8](try Data(contentsOf: source.appendingPathComponent("model.safetensors")))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try #require(
            try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any])
        let bias = try #require(header["classifier.bias"] as? [String: Any])
        let offsets = try #require(bias["data_offsets"] as? [Int])
        let last = 8 + headerLength + offsets[1] - 4
        var value = Float(
            bitPattern: bytes[last..<(last + 4)].enumerated().reduce(UInt32(0)) {
                $0 | UInt32($1.element) << (8 * UInt32($1.offset))
            })
        value += 100
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.replaceSubrange(last..<(last + 4), with: $0) }
        try Data(bytes).write(to: folder.appendingPathComponent("model.safetensors"))
        return folder
    }

    /// A shadow gets every request (sample 1), the client only the primary's answer; the report compares the
    /// two: top-1 agreement below 1, the shadow's labels all the biased one, examples of disagreement.
    @Test func shadowTrafficIsComparedNotReturned() throws {
        let (server, empty) = try server()
        defer { try? FileManager.default.removeItem(at: empty) }
        let biased = try Self.biasedClassifier()
        defer { try? FileManager.default.removeItem(at: biased) }
        let (registered, body) = try server.request(
            "POST", "/admin/v1/models/intent/versions",
            json: #"{"path": "\#(biased.path)", "task": "text-classification", "parent": 1}"#)
        try #require(registered == 201, "\(body)")
        let (deployed, view) = try server.request(
            "PUT", "/admin/v1/deployments/intent",
            json: #"{"routes": [{"target": "production", "weight": 100}], "shadow": {"target": "3", "sample": 1.0}}"#)
        try #require(deployed == 200, "\(view)")
        let texts = try TextHeadFixture.load().classification.map(\.text)
        let total = 120
        for i in 0..<total {
            let text = texts[i % texts.count].replacingOccurrences(of: "\"", with: "'")
            let r = server.rawPost(
                "/predict", body: Array(#"{"model": "intent", "inputs": "\#(text)"}"#.utf8),
                headers: ["Content-Type: application/json"])
            #expect(r.status == 200)
            #expect(r.headers.contains { $0.lowercased() == "x-model-version: 1" })
        }
        var report: [String: Any] = [:]
        for _ in 0..<100 {
            (_, report) = try server.request("GET", "/admin/v1/deployments/intent/report")
            let seen = ["compared", "dropped", "failed"].compactMap { report[$0] as? Int }.reduce(0, +)
            if seen == total { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let compared = report["compared"] as? Int ?? 0
        #expect(compared + (report["dropped"] as? Int ?? 0) == total, "\(report)")
        #expect(compared >= 10 && report["failed"] as? Int == 0, "\(report)")
        #expect(report["shadow_version"] as? Int == 3 && report["primary_versions"] as? [Int] == [1])
        let top1 = try #require((report["agreement"] as? [String: Double])?["top1"])
        #expect(top1 < 0.9, "the biased shadow should disagree: \(report)")
        let shadowLabels = (report["label_distribution"] as? [String: [String: Int]])?["shadow"] ?? [:]
        #expect(shadowLabels.count == 1, "\(shadowLabels)")
        #expect(!((report["disagreements"] as? [[String: Any]]) ?? []).isEmpty)
        #expect(
            try server.metric(#"mass_shadow_requests_total{model="intent",outcome="compared"}"#) == Double(compared))
        // The CLI prints the same report.
        let cli = try BinaryRunner.run(["deploy", "report", "intent", "--server", server.base.absoluteString])
        #expect(cli.contains("intent: shadow version 3 beside 1, sample 1.0"), "\(cli)")
    }

    /// A version whose stored file was altered is refused when a deployment routes to it, naming the file and
    /// both hashes; the version serving keeps serving.
    @Test func anAlteredArtifactIsRefusedAndTheOldVersionServes() throws {
        let (server, empty) = try server()
        defer { try? FileManager.default.removeItem(at: empty) }
        let (_, version) = try server.request("GET", "/admin/v1/models/intent/versions/2")
        let files = version["files"] as? [[String: Any]] ?? []
        let config = try #require(files.first { $0["path"] as? String == "config.json" })
        let sha = try #require(config["sha256"] as? String)
        // Both versions hold the same files: a new version with its own config.json is the one altered.
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("mass-copy-\(UUID())")
        defer { try? FileManager.default.removeItem(at: copy) }
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        for file in ["config.json", "model.safetensors", "tokenizer.json"] {
            try FileManager.default.copyItem(
                at: TextHeadFixture.classifierDirectory.appendingPathComponent(file),
                to: copy.appendingPathComponent(file))
        }
        var json = try String(contentsOf: copy.appendingPathComponent("config.json"), encoding: .utf8)
        json = json.replacingOccurrences(
            of: "{", with: "{\n  \"mass_note\": \"v3\",", options: [], range: json.range(of: "{"))
        try json.write(to: copy.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let (created, v3) = try server.request(
            "POST", "/admin/v1/models/intent/versions",
            json: #"{"path": "\#(copy.path)", "task": "text-classification"}"#)
        try #require(created == 201, "\(v3)")
        let v3config = try #require((v3["files"] as? [[String: Any]])?.first { $0["path"] as? String == "config.json" })
        let v3sha = try #require(v3config["sha256"] as? String)
        #expect(v3sha != sha)
        let v3blob = server.registryHome.appendingPathComponent("store/blobs/sha256/\(v3sha.prefix(2))/\(v3sha)")
        var bytes = try Data(contentsOf: v3blob)
        bytes.append(contentsOf: Array(" ".utf8))
        try bytes.write(to: v3blob)
        let (status, body) = try server.request(
            "PUT", "/admin/v1/deployments/intent", json: #"{"routes": [{"target": "3", "weight": 100}]}"#)
        #expect(status == 422, "\(body)")
        let message = body["error"] as? String ?? ""
        #expect(message.contains("'config.json' is altered: registered sha256 \(v3sha)"), "\(message)")
        #expect(!message.contains(server.registryHome.path), "\(message)")
        for _ in 0..<10 { #expect(Self.predict(server).version == 1) }
    }

    @Test func adminErrorsAreClear() throws {
        let (server, empty) = try server()
        defer { try? FileManager.default.removeItem(at: empty) }
        let cases: [(String, String, String?, Int, String)] = [
            ("GET", "/admin/v1/models/nope", nil, 404, "no model 'nope' in the registry"),
            ("PUT", "/admin/v1/deployments/intent", #"{"routes": []}"#, 400, "at least one route"),
            (
                "PUT", "/admin/v1/deployments/intent", #"{"routes": [{"target": "9", "weight": 1}]}"#, 404,
                "no version 9"
            ),
            (
                "PUT", "/admin/v1/deployments/intent", #"{"routes": [{"target": "1", "weight": "x"}]}"#, 400,
                "'routes[0].weight' must be a number"
            ),
            ("DELETE", "/admin/v1/models/intent/versions/1", nil, 409, "serves traffic through alias 'production'"),
            (
                "POST", "/admin/v1/models/intent/versions", #"{"path": "/nonexistent", "task": "text-classification"}"#,
                400, "is not a folder"
            ),
            ("POST", "/admin/v1/models/intent/rollback", "{}", 409, "no earlier version"),
            ("PUT", "/admin/v1/models/intent/aliases/7", #"{"version": 1}"#, 400, "not a number"),
        ]
        for (method, path, json, expected, text) in cases {
            let (status, body) = try server.request(method, path, json: json)
            #expect(status == expected, "\(method) \(path): \(status) \(body)")
            #expect((body["error"] as? String)?.contains(text) == true, "\(method) \(path): \(body)")
        }
    }
}

/// A value shared between threads.
final class Shared<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ new: Value) { lock.withLock { value = new } }
    func update(_ body: (inout Value) -> Void) { lock.withLock { body(&value) } }
}

/// Runs the built binary and answers its standard output.
enum BinaryRunner {
    /// Runs `mass` with the arguments; its exit status, standard output and standard error apart.
    static func separate(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = LiveServer.binary
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self)
        )
    }

    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = LiveServer.binary
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
