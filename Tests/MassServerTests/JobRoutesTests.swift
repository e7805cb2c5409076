import Foundation
import FoundationNetworking
import MassRegistry
import MassTesting
import Testing

/// The job queue's admin API on a live `mass serve` with a registry: a job submitted, listed, read, its log, its
/// cancel; configurations that cannot train and malformed requests refused with the reason, nothing queued.
@Suite(.serialized) struct JobRoutesTests {
    static let config = #"""
        {"task": "text-classification-head", "encoder": "models/all-MiniLM-L6-v2/1",
         "dataset": {"path": "data/reviews.jsonl"}, "head": {"epochs": 20},
         "register": {"model": "reviews", "alias": "candidate"}}
        """#

    @Test func submitsListsCancelsAndRefuses() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("mass-jobs-\(UUID())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let server = try LiveServer(repositoryRoot: empty, registry: nil)
        defer { server.stop() }
        func json(_ body: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "\(body)")
        }
        /// The status and the body as text (lists included).
        func call(_ method: String, _ path: String, json: String? = nil) throws -> (Int, String) {
            var request = URLRequest(url: URL(string: path, relativeTo: server.base)!)
            request.httpMethod = method
            if let json {
                request.httpBody = Data(json.utf8)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            let (status, data) = try LiveServer.sync(request)
            return (status, String(decoding: data, as: UTF8.self))
        }
        let (status, body) = try call(
            "POST", "/admin/v1/jobs", json: #"{"config": \#(Self.config), "max_attempts": 2}"#)
        #expect(status == 201, "\(body)")
        let job = try json(body)
        #expect(job["id"] as? Int == 1 && job["state"] as? String == "queued" && job["max_attempts"] as? Int == 2)
        #expect(job["submitted_by"] as? String == "admin-api")
        // The configuration comes back as JSON, keys as given.
        let config = try #require(job["config"] as? [String: Any])
        #expect((config["head"] as? [String: Int]) == ["epochs": 20])
        #expect((config["register"] as? [String: String])?["alias"] == "candidate")

        let (listed, list) = try call("GET", "/admin/v1/jobs?state=queued")
        #expect(listed == 200)
        #expect(
            (try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]])?.map { $0["id"] as? Int } == [
                1
            ])
        let (_, none) = try call("GET", "/admin/v1/jobs?state=running")
        #expect(none == "[]")
        let (cancelled, after) = try call("POST", "/admin/v1/jobs/1/cancel", json: "{}")
        let cancelledJob = try json(after)
        #expect(cancelled == 200 && cancelledJob["state"] as? String == "cancelled", "\(after)")
        let (logged, logs) = try call("GET", "/admin/v1/jobs/1/logs")
        #expect(logged == 200)
        let lines = try #require(try json(logs)["lines"] as? [[String: Any]]).compactMap { $0["line"] as? String }
        #expect(lines == ["submitted by admin-api", "cancel requested by admin-api"])
        let (again, conflict) = try call("POST", "/admin/v1/jobs/1/cancel", json: "{}")
        #expect(again == 409 && conflict.contains("only queued and running jobs cancel"), "\(conflict)")

        // Refused, with the reason, and nothing queued.
        let refusals: [(String, Int, String)] = [
            (
                #"{"config": {"task": "dance", "encoder": "e", "dataset": {"path": "d"}}}"#, 400,
                "task 'dance' is unknown"
            ),
            (#"{"config": {"task": "text-classification-head", "dataset": {"path": "d"}}}"#, 400, "missing 'encoder'"),
            (
                #"{"config": {"task": "text-classification-head", "encoder": "e", "dataset": {"path": "d"}, "head": {"epochs": 0}}}"#,
                400, "'epochs' must be positive"
            ),
            (
                #"{"config": {"task": "text-classification-head", "encoder": "e", "dataset": {"path": "d"}, "finetune": {"batch_size": "x"}}}"#,
                400, "'finetune.batch_size' has the wrong type"
            ),
            (#"{"kind": "bake", "config": {}}"#, 400, "job kind 'bake' is unknown"),
            (#"{"config": \#(Self.config), "max_attempts": 0}"#, 400, "'max_attempts' must be between 1 and 100"),
            (#"{"config": "#, 400, "not valid JSON"),
            ("{}", 400, "config"),
        ]
        for (request, expected, message) in refusals {
            let (status, body) = try call("POST", "/admin/v1/jobs", json: request)
            #expect(status == expected && body.contains(message), "\(request): \(status) \(body)")
        }
        let (missing, notFound) = try call("GET", "/admin/v1/jobs/7")
        #expect(missing == 404 && notFound.contains("no job 7"))
        let (bad, badBody) = try call("GET", "/admin/v1/jobs/seven")
        #expect(bad == 400, "\(badBody)")
        let (badState, stateBody) = try call("GET", "/admin/v1/jobs?state=done")
        #expect(badState == 400 && stateBody.contains("'state' must be one of"))
        let (_, all) = try call("GET", "/admin/v1/jobs")
        #expect((try JSONSerialization.jsonObject(with: Data(all.utf8)) as? [Any])?.count == 1)
    }

    @Test func createsListsStopsAndRefusesStudies() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("mass-studies-\(UUID())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let server = try LiveServer(repositoryRoot: empty, registry: nil)
        defer { server.stop() }
        func call(_ method: String, _ path: String, json: String? = nil) throws -> (Int, [String: Any]?, String) {
            var request = URLRequest(url: URL(string: path, relativeTo: server.base)!)
            request.httpMethod = method
            if let json {
                request.httpBody = Data(json.utf8)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            let (status, data) = try LiveServer.sync(request)
            let text = String(decoding: data, as: UTF8.self)
            return (status, try? JSONSerialization.jsonObject(with: data) as? [String: Any], text)
        }
        let base =
            #"{"task": "text-classification-head", "encoder": "e", "dataset": {"path": "d"}, "head": {"epochs": 9}}"#
        let space = #"{"head.learning_rate": {"type": "float", "low": 0.001, "high": 0.1, "log": true}}"#
        func study(_ name: String, space: String = space, extra: String = "") -> String {
            #"{"name": "\#(name)", "base": \#(base), "space": \#(space), "objective": {"metric": "validation_accuracy", "direction": "maximize"}, "budget": {"trials": 4}\#(extra)}"#
        }
        let (created, detail, text) = try call("POST", "/admin/v1/studies", json: study("lr"))
        #expect(created == 201, "\(text)")
        let record = try #require(detail?["study"] as? [String: Any])
        #expect(record["state"] as? String == "running" && record["created_by"] as? String == "admin-api")
        #expect((detail?["trials"] as? [Any])?.isEmpty == true)
        let (listed, _, list) = try call("GET", "/admin/v1/studies")
        let summaries = try #require(try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]])
        #expect(listed == 200 && summaries.map { $0["name"] as? String } == ["lr"])
        let (shown, one, _) = try call("GET", "/admin/v1/studies/lr")
        #expect(shown == 200 && (one?["summary"] as? [String: Any])?["state"] as? String == "running")
        let (stopped, after, _) = try call("POST", "/admin/v1/studies/lr/stop", json: "{}")
        #expect(stopped == 200 && (after?["study"] as? [String: Any])?["state"] as? String == "stopped")
        #expect((after?["study"] as? [String: Any])?["reason"] as? String == "stopped by admin-api")
        let (again, _, conflict) = try call("POST", "/admin/v1/studies/lr/stop", json: "{}")
        #expect(again == 409 && conflict.contains("only a running study stops"), "\(conflict)")
        // Refused with the reason; nothing created.
        let refusals: [(String, Int, String)] = [
            (study("lr"), 409, "a study named 'lr' exists"),
            (study("empty", space: "{}"), 400, "the search space is empty"),
            (
                study("typo", space: #"{"head.learnin_rate": {"type": "float", "low": 0.1, "high": 1}}"#), 400,
                "'head.learnin_rate' is not a key mass train reads"
            ),
            (study("both", extra: #", "objectives": []"#), 400, "give 'objective' or 'objectives', not both"),
            (study("bad name!"), 400, "study name 'bad name!' must be"),
            (study("tpe", extra: #", "sampler": {"type": "grid"}"#), 400, "'sampler.type' must be tpe or random"),
            (#"{"name": "x", "base": "#, 400, "not valid JSON"),
            ("[]", 400, "a tuning configuration is a JSON object"),
        ]
        for (request, expected, message) in refusals {
            let (status, _, body) = try call("POST", "/admin/v1/studies", json: request)
            #expect(status == expected && body.contains(message), "\(request): \(status) \(body)")
        }
        let (missing, _, notFound) = try call("GET", "/admin/v1/studies/nothing")
        #expect(missing == 404 && notFound.contains("no study named 'nothing'"))
        let (_, _, all) = try call("GET", "/admin/v1/studies")
        #expect((try JSONSerialization.jsonObject(with: Data(all.utf8)) as? [Any])?.count == 1)
    }

    /// Selection reports (written by mass select into the registry) served whole and listed; unknown names 404.
    @Test func servesSelectionReports() async throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("mass-selections-\(UUID())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let server = try LiveServer(repositoryRoot: empty, registry: nil)
        defer { server.stop() }
        let registry = try await ModelRegistry.open(
            database: RegistryDatabases.open(server.registryArguments[1]),
            store: ArtifactStore(root: URL(fileURLWithPath: server.registryArguments[3])))
        let report = try JSONValue.parse(
            #"{"winner": "int8", "candidates": [{"name": "float", "p99_ms": 4.5}, {"name": "int8", "p99_ms": 2.5}]}"#)
        try await SelectionStore(database: registry.database).save(
            name: "rt", config: try JSONValue.parse(#"{"rule": {"maximize": "accuracy"}}"#), report: report,
            winner: "int8", promoted: "rt@2 → alias production", actor: "tester")
        await registry.close()
        func get(_ path: String) throws -> (Int, Any?, String) {
            let (status, data) = try LiveServer.sync(URLRequest(url: URL(string: path, relativeTo: server.base)!))
            return (status, try? JSONSerialization.jsonObject(with: data), String(decoding: data, as: UTF8.self))
        }
        let (listed, list, _) = try get("/admin/v1/selections")
        let rows = try #require(list as? [[String: Any]])
        #expect(listed == 200 && rows.count == 1)
        #expect(rows.first?["name"] as? String == "rt" && rows.first?["candidates"] as? Int == 2)
        #expect(rows.first?["promoted"] as? String == "rt@2 → alias production")
        let (shown, one, text) = try get("/admin/v1/selections/rt")
        let record = try #require(one as? [String: Any], "\(text)")
        #expect(shown == 200 && record["winner"] as? String == "int8")
        #expect(record["created_by"] as? String == "tester")
        let candidates = (record["report"] as? [String: Any])?["candidates"] as? [[String: Any]]
        #expect(candidates?.last?["p99_ms"] as? Double == 2.5, "\(text)")
        let (missing, _, notFound) = try get("/admin/v1/selections/nothing")
        #expect(missing == 404 && notFound.contains("no selection named 'nothing'"), "\(notFound)")
    }
}
