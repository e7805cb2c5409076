import Foundation
import HTTPTypes
import HummingbirdTesting
import MassRuntime
import MassServer
import MassTesting
import NIOCore
import Testing

/// The router in process, on fake models (fast tier: Hummingbird's testing client, no socket, no binary, no
/// download): the lookup errors as HTTP, each API's error envelope, the DTOs' messages, request ids, metrics and
/// a model that fails.
@Suite struct RouterTests {
    func withApp(_ body: @Sendable (any TestClientProtocol, TemporaryRepository) async throws -> Void) async throws {
        let repo = try TemporaryRepository()
        defer { repo.remove() }
        try repo.add("fake", versions: [1: #"{"dimension": 2, "fail_on": "boom"}"#])
        let manager = ModelManager(
            repository: ModelRepository(root: repo.root), architectures: FakeEmbedder.architectures,
            tasks: FakeEmbedder.tasks, cores: 1)
        try await manager.loadAll()
        let app = MassServer.application(manager: manager, bodyLimit: 4096)
        try await app.test(.router) { client in try await body(client, repo) }
        await manager.stopAll()
    }

    func json(_ buffer: ByteBuffer) -> Any? { try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) }

    func post(_ client: any TestClientProtocol, _ uri: String, _ body: String) async throws -> TestResponse {
        try await client.execute(
            uri: uri, method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body))
    }

    @Test func embedsThroughBothAPIs() async throws {
        try await withApp { client, _ in
            let r = try await post(client, "/v1/embeddings", #"{"model": "fake", "input": ["abc", "de"]}"#)
            #expect(r.status == .ok)
            let data = (json(r.body) as? [String: Any])?["data"] as? [[String: Any]]
            #expect((data?[1]["embedding"] as? [Double]) == [2, 2])
            #expect(r.headers[.init("X-Request-Id")!]?.isEmpty == false)
            let v2 = try await post(
                client, "/v2/models/fake/infer",
                #"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["abcd"]}]}"#)
            let outputs = (json(v2.body) as? [String: Any])?["outputs"] as? [[String: Any]]
            #expect(outputs?.first?["data"] as? [Double] == [4, 4])
            #expect(outputs?.first?["shape"] as? [Int] == [1, 2])
            // Nested data is row-major; parameters of any JSON type are accepted.
            let nested = try await post(
                client, "/v2/models/fake/infer",
                #"{"id": "n", "parameters": {"note": {"a": 1}, "priority": 2}, "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2, 1], "data": [["ab"], ["abc"]]}]}"#
            )
            let nestedObject = json(nested.body) as? [String: Any]
            #expect(nestedObject?["id"] as? String == "n")
            let nestedOutputs = nestedObject?["outputs"] as? [[String: Any]]
            #expect(nestedOutputs?.first?["data"] as? [Double] == [2, 2, 3, 3])
        }
    }

    /// The DTOs name the field and what it must be; each API answers in its own envelope.
    @Test func badBodiesGetClearErrors() async throws {
        try await withApp { client, _ in
            let cases: [(String, String, Int, String)] = [
                ("/v1/embeddings", #"{"input": "x"}"#, 400, "'model' is required"),
                ("/v1/embeddings", #"{"model": 3, "input": "x"}"#, 400, "'model' must be a string"),
                (
                    "/v1/embeddings", #"{"model": "fake", "input": [1, 2]}"#, 400,
                    "'input' must be a string or an array of strings"
                ),
                ("/v1/embeddings", #"{"model": "fake", "input": []}"#, 400, "'input' is empty"),
                ("/v1/embeddings", #"{"model": "nope", "input": "x"}"#, 404, "unknown model 'nope'"),
                ("/v1/embeddings", #"[1]"#, 400, "the body must be a JSON object"),
                ("/v1/embeddings", #"{"model": "#, 400, "the body is not valid JSON"),
                (
                    "/v1/embeddings", #"{"model": "fake", "input": "x", "encoding_format": "hex"}"#, 400,
                    "'encoding_format' must be"
                ),
                ("/predict", #"{"inputs": "x"}"#, 400, "no text-classification model is loaded"),
                ("/predict", #"{"model": "fake", "inputs": "x"}"#, 400, "this route serves text-classification models"),
                ("/rerank", #"{"query": "q"}"#, 400, "'texts' is required"),
                ("/v2/models/fake/infer", #"{"inputs": []}"#, 400, "'inputs' must be a non-empty array"),
                ("/v2/models/fake/infer", #"{"inputs": 5}"#, 400, "'inputs' must be an array"),
                (
                    "/v2/models/fake/infer", #"{"inputs": [{"name": "text", "datatype": "BYTES", "data": ["a"]}]}"#,
                    400, "'inputs[0].shape' is required"
                ),
                (
                    "/v2/models/fake/infer",
                    #"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1.5], "data": ["a"]}]}"#, 400,
                    "'inputs[0].shape[0]' must be an integer"
                ),
                (
                    "/v2/models/fake/infer",
                    #"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a", 3]}]}"#, 400,
                    "'inputs[0].data[1]' must be a string"
                ),
                (
                    "/v2/models/fake/infer",
                    #"{"inputs": [{"name": "text", "datatype": "INT8", "shape": [1], "data": [1]}]}"#, 400,
                    "datatype 'INT8' is not supported"
                ),
                (
                    "/v2/models/fake/infer",
                    #"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [3], "data": ["a"]}]}"#, 400,
                    "'shape' [3] holds 3 elements but the data has 1"
                ),
                (
                    "/v2/models/fake/infer",
                    #"{"parameters": {"binary_data_output": 1}, "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}"#,
                    400, "'parameters.binary_data_output' must be true or false"
                ),
                ("/v2/models/nope/infer", #"{"inputs": []}"#, 404, "unknown model 'nope'"),
                ("/v2/repository/models/nope/load", "", 404, "no model 'nope' in the repository"),
            ]
            for (uri, body, status, text) in cases {
                let r = try await post(client, uri, body)
                let answer = String(buffer: r.body)
                #expect(Int(r.status.code) == status, "\(uri) \(body): \(r.status) \(answer)")
                #expect(answer.contains(text), "\(uri) \(body): \(answer)")
                let object = json(r.body) as? [String: Any]
                switch uri {
                case "/v1/embeddings": #expect((object?["error"] as? [String: Any])?["message"] is String)
                case "/predict", "/rerank": #expect(object?["error_type"] as? String == "validation")
                default: #expect(object?["error"] is String)
                }
            }
            let big = try await post(client, "/v1/embeddings", String(repeating: " ", count: 5000))
            #expect(big.status == .contentTooLarge)
            let route = try await client.execute(uri: "/nothing", method: .get)
            #expect(route.status == .notFound)
            #expect(String(buffer: route.body).contains("no such route"))
        }
    }

    /// A model that throws answers 500 without detail; the server goes on serving; metrics count both.
    @Test func aFailingModelAnswers500AndTheServerGoesOn() async throws {
        try await withApp { client, repo in
            let bad = try await post(client, "/v1/embeddings", #"{"model": "fake", "input": "boom"}"#)
            #expect(bad.status == .internalServerError)
            #expect(String(buffer: bad.body).contains("internal error"))
            #expect(!String(buffer: bad.body).contains("fake model failed"))
            let good = try await post(client, "/v1/embeddings", #"{"model": "fake", "input": "fine"}"#)
            #expect(good.status == .ok)
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(metrics.contains(#"mass_requests_total{model="fake",route="/v1/embeddings",status="500"} 1"#))
            #expect(metrics.contains(#"mass_requests_total{model="fake",route="/v1/embeddings",status="200"} 1"#))
            // Repository load errors name files relative to the repository.
            try Data(#"{"fail_load": "broken"}"#.utf8).write(
                to: repo.root.appendingPathComponent("fake/1/fake.json"))
            let load = try await post(client, "/v2/repository/models/fake/load", "")
            #expect(load.status == .badRequest)
            let text = String(buffer: load.body)
            #expect(text.contains("fake/1/fake.json: broken"), "\(text)")
            #expect(!text.contains(repo.root.path), "\(text)")
        }
    }
}
