import Foundation
import MassTesting
import Testing

/// One server hosts the float32 and int8 versions of one model side by side (`"precision": "int8"`).
@Suite(.serialized) struct PrecisionServingTests {
    @Test func float32AndInt8SideBySide() throws {
        let s = try LiveServer(
            massJSON: #"{"task": "text-embedding"}"#, model: "minilm",
            also: [("minilm-int8", #"{"task": "text-embedding", "precision": "int8"}"#, MiniLMFixture.modelDirectory)])
        defer { s.stop() }
        func embed(_ model: String) throws -> [Float] {
            let (status, json) = try s.request(
                "POST", "/v1/embeddings",
                json: #"{"model": "\#(model)", "input": ["A man is eating food.", "The quick brown fox."]}"#)
            #expect(status == 200, "\(json)")
            let data = json["data"] as? [[String: Any]] ?? []
            return (data.first?["embedding"] as? [Double] ?? []).map(Float.init)
        }
        let full = try embed("minilm")
        let int8 = try embed("minilm-int8")
        #expect(full.count == 384 && int8.count == 384)
        let cosine = Comparison.cosine(full, int8)
        #expect(cosine >= 0.995 && cosine < 0.99999, "cosine \(cosine)")
    }
}
