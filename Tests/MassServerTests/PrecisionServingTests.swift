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

    /// An EfficientNet folder compressed by `mass compress --int8` (calibrated on the fixture images) served next
    /// to the float32 one: the int8 model answers with the float32 top-1 (coffee, 0.9567 in float32).
    @Test func compressedImageModelBesideItsOriginal() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mass-int8-image-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        let images = root.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        for image in ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"] {
            try FileManager.default.copyItem(
                at: EfficientNetFixture.url(image), to: images.appendingPathComponent(image))
        }
        let folder = root.appendingPathComponent("int8")
        let compressed = try BinaryRunner.separate([
            "compress", "--model", EfficientNetFixture.modelDirectory.path, "--int8", "--calibration", images.path,
            "--out", folder.path,
        ])
        #expect(compressed.status == 0, "\(compressed.err)")
        let s = try LiveServer(
            massJSON: #"{"task": "image-classification"}"#, model: "effnet",
            modelDirectory: EfficientNetFixture.modelDirectory,
            also: [("effnet-int8", #"{"task": "image-classification"}"#, folder)])
        defer { s.stop() }
        let encoded = Data(try Data(contentsOf: EfficientNetFixture.url("coffee.png"))).base64EncodedString()
        var best: [String: (Int, Double)] = [:]
        for model in ["effnet", "effnet-int8"] {
            let (status, json) = try s.request(
                "POST", "/v1/images/classifications", json: #"{"model": "\#(model)", "image": "\#(encoded)"}"#)
            #expect(status == 200, "\(json)")
            let top = (json["data"] as? [[String: Any]])?.first ?? [:]
            best[model] = (top["index"] as? Int ?? -1, top["score"] as? Double ?? 0)
        }
        #expect(best["effnet"]?.0 == 967 && best["effnet-int8"]?.0 == 967)
        #expect(abs((best["effnet-int8"]?.1 ?? 0) - (best["effnet"]?.1 ?? 1)) < 0.01, "\(best)")
    }

    /// EfficientNet-Lite0, Lite1 (240x240) and Lite2 (260x260) served side by side (the two from models-extra):
    /// each answers coffee.png with espresso, with the reference's top-5 order for its own size.
    @Test func liteVariantsSideBySide() throws {
        let extra = FixturePaths.extraModels
        let s = try LiveServer(
            massJSON: #"{"task": "image-classification"}"#, model: "lite0",
            modelDirectory: EfficientNetFixture.modelDirectory,
            also: [
                ("lite1", #"{"task": "image-classification"}"#, extra.appendingPathComponent("efficientnet-lite1/1")),
                ("lite2", #"{"task": "image-classification"}"#, extra.appendingPathComponent("efficientnet-lite2/1")),
            ])
        defer { s.stop() }
        let encoded = Data(try Data(contentsOf: EfficientNetFixture.url("coffee.png"))).base64EncodedString()
        var top: [String: [Int]] = [:]
        for model in ["lite0", "lite1", "lite2"] {
            let (status, json) = try s.request(
                "POST", "/v1/images/classifications", json: #"{"model": "\#(model)", "image": "\#(encoded)"}"#)
            #expect(status == 200, "\(json)")
            top[model] = (json["data"] as? [[String: Any]] ?? []).map { $0["index"] as? Int ?? -1 }
        }
        #expect(top["lite0"]?.first == 967)
        #expect(top["lite1"] == [967, 968, 925, 809, 504] && top["lite2"] == [967, 968, 925, 960, 504], "\(top)")
    }
}
