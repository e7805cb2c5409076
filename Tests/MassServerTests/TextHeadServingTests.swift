import Foundation
import MassTesting
import Testing

/// Text classification and rerank over HTTP on the live binary: TEI's `/predict` and `/rerank` and KServe v2
/// infer give transformers' logits for the checkpoints that ship with the tests; bad requests get TEI's errors.
@Suite(.serialized) struct TextHeadServingTests {
    func server() throws -> LiveServer {
        try LiveServer(
            massJSON: #"{"task": "text-classification"}"#, model: "clf",
            modelDirectory: TextHeadFixture.classifierDirectory,
            also: [("rr", #"{"task": "rerank"}"#, TextHeadFixture.rerankerDirectory)])
    }

    func post(_ s: LiveServer, _ path: String, _ json: String) -> (Int, Any?) {
        let r = s.rawPost(path, body: Array(json.utf8))
        return (r.status, try? JSONSerialization.jsonObject(with: Data(r.body)))
    }

    func quoted(_ text: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: [text]), as: UTF8.self).dropFirst().dropLast()
            .description
    }

    @Test func predictGivesTransformersScores() throws {
        let fixture = try TextHeadFixture.load()
        let s = try server()
        defer { s.stop() }
        let golden = fixture.classification[0]
        // One text: raw scores are the logits, sorted by score, labels from id2label.
        let (status, body) = post(s, "/predict", #"{"inputs": \#(quoted(golden.text)), "raw_scores": true}"#)
        #expect(status == 200)
        let ranked = try #require(body as? [[String: Any]])
        let labels = ["negative", "neutral", "positive"]
        let expected = golden.logits.enumerated().sorted { $0.element > $1.element }
        #expect(ranked.map { $0["label"] as? String } == expected.map { labels[$0.offset] })
        for (item, e) in zip(ranked, expected) {
            #expect(abs((item["score"] as? Double ?? .nan) - Double(e.element)) < 1e-4)
        }
        // A batch: one list per input; probabilities add up to 1.
        let texts = fixture.classification.map(\.text).map(quoted).joined(separator: ", ")
        let (batchStatus, batch) = post(s, "/predict", #"{"model": "clf", "inputs": [\#(texts)]}"#)
        #expect(batchStatus == 200)
        let lists = try #require(batch as? [[[String: Any]]])
        #expect(lists.count == fixture.classification.count)
        for list in lists {
            #expect(abs(list.compactMap { $0["score"] as? Double }.reduce(0, +) - 1) < 1e-5)
        }
        // KServe v2 infer: logits in input order.
        let (v2Status, v2) = post(
            s, "/v2/models/clf/infer",
            #"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [\#(fixture.classification.count)], "data": [\#(texts)]}]}"#
        )
        #expect(v2Status == 200)
        let outputs = try #require((v2 as? [String: Any])?["outputs"] as? [[String: Any]])
        let logits = try #require(outputs.first { $0["name"] as? String == "logits" }?["data"] as? [Double])
        let wanted = fixture.classification.flatMap(\.logits).map(Double.init)
        #expect(logits.count == wanted.count)
        #expect(zip(logits, wanted).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test func rerankOrdersByTransformersLogits() throws {
        let fixture = try TextHeadFixture.load()
        let s = try server()
        defer { s.stop() }
        let query = try #require(fixture.rerank.first?.query)
        let texts = fixture.rerank.map(\.text)
        let list = texts.map(quoted).joined(separator: ", ")
        let (status, body) = post(
            s, "/rerank", #"{"query": \#(quoted(query)), "texts": [\#(list)], "return_text": true, "raw_scores": true}"#
        )
        #expect(status == 200)
        let ranked = try #require(body as? [[String: Any]])
        let expected = fixture.rerank.enumerated().sorted { $0.element.logits[0] > $1.element.logits[0] }
        #expect(ranked.map { $0["index"] as? Int } == expected.map(\.offset))
        for (item, e) in zip(ranked, expected) {
            #expect(abs((item["score"] as? Double ?? .nan) - Double(e.element.logits[0])) < 1e-4)
            #expect(item["text"] as? String == e.element.text)
        }
        // Sigmoid scores by default, no text.
        let (_, plain) = post(s, "/rerank", #"{"query": \#(quoted(query)), "texts": [\#(list)]}"#)
        let first = try #require((plain as? [[String: Any]])?.first)
        let top = expected[0].element.logits[0]
        #expect(abs((first["score"] as? Double ?? .nan) - 1 / (1 + exp(Double(-top)))) < 1e-5)
        #expect(first["text"] == nil)
        // v2: query and texts tensors.
        let (v2Status, v2) = post(
            s, "/v2/models/rr/infer",
            #"{"inputs": [{"name": "query", "datatype": "BYTES", "shape": [1], "data": [\#(quoted(query))]}, {"name": "texts", "datatype": "BYTES", "shape": [\#(texts.count)], "data": [\#(list)]}]}"#
        )
        #expect(v2Status == 200)
        let outputs = try #require((v2 as? [String: Any])?["outputs"] as? [[String: Any]])
        let logits = try #require(outputs.first { $0["name"] as? String == "logits" }?["data"] as? [Double])
        #expect(zip(logits, fixture.rerank.map { Double($0.logits[0]) }).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test func badRequestsGetTEIErrors() throws {
        let s = try server()
        defer { s.stop() }
        let long = String(repeating: "hello world ", count: 100)
        let cases: [(String, String, Int, String)] = [
            ("/predict", #"{"inputs": 5}"#, 400, "'inputs' must be a string"),
            ("/predict", #"{"inputs": "x", "model": "rr"}"#, 400, "serves task 'rerank'"),
            ("/predict", #"{"inputs": "x", "model": "nope"}"#, 404, "unknown model 'nope'"),
            ("/predict", #"{"inputs": "\#(long)"}"#, 413, "tokens; this model takes at most 64"),
            ("/predict", #"{"inputs": "x", "truncation_direction": "Left"}"#, 400, "truncation_direction"),
            ("/predict", #"{"inputs": []}"#, 400, "'inputs' is empty"),
            ("/rerank", #"{"query": "q", "texts": []}"#, 400, "'texts' is empty"),
            ("/rerank", #"{"query": 1, "texts": ["a"]}"#, 400, "'query' must be a string"),
            ("/rerank", #"{"query": "\#(long)", "texts": ["a"]}"#, 413, "this model takes at most 64"),
            ("/rerank", "not json", 400, "not valid JSON"),
        ]
        for (path, json, status, text) in cases {
            let r = s.rawPost(path, body: Array(json.utf8))
            let answer = String(decoding: r.body, as: UTF8.self)
            #expect(r.status == status, "\(path) \(json.prefix(60)): \(answer)")
            #expect(answer.contains(text), "\(path) \(json.prefix(60)): \(answer)")
            let object = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]
            #expect(object?["error_type"] as? String == "validation")
        }
        // Truncated on request: the long input is answered.
        #expect(s.rawPost("/predict", body: Array(#"{"inputs": "\#(long)", "truncate": true}"#.utf8)).status == 200)
    }
}
