import Foundation
import FoundationNetworking
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
}
