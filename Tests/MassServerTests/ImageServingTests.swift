import Foundation
import MassTesting
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Image classification over HTTP: the task route (multipart and JSON), KServe v2 infer (encoded images and
/// prepared tensors), batching, and bad images.
@Suite(.serialized) struct ImageServingTests {
    static let route = "/v1/images/classifications"

    static func multipart(_ fields: [(String, String?, [UInt8])], boundary: String = "mass-test-boundary") -> (
        [UInt8], [String]
    ) {
        var body: [UInt8] = []
        for (name, filename, value) in fields {
            let disposition =
                "Content-Disposition: form-data; name=\"\(name)\"" + (filename.map { "; filename=\"\($0)\"" } ?? "")
            body += Array("--\(boundary)\r\n\(disposition)\r\n\r\n".utf8) + value + Array("\r\n".utf8)
        }
        body += Array("--\(boundary)--\r\n".utf8)
        return (body, ["Content-Type: multipart/form-data; boundary=\(boundary)"])
    }

    static func bytes(_ file: String) throws -> [UInt8] { Array(try Data(contentsOf: EfficientNetFixture.url(file))) }

    func json(_ body: [UInt8]) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:]
    }

    @Test func taskRouteGivesTheGoldenClasses() throws {
        let s = try LiveServer()
        defer { s.stop() }
        let fixture = try EfficientNetFixture.load()
        let chelsea = fixture.images.first { $0.id == "chelsea" }!
        let (body, headers) = Self.multipart([
            ("model", nil, Array("efficientnet-lite0".utf8)), ("top_k", nil, Array("3".utf8)),
            ("file", "chelsea.png", try Self.bytes("chelsea.png")),
        ])
        let r = s.rawPost(Self.route, body: body, headers: headers)
        #expect(r.status == 200, "\(String(decoding: r.body, as: UTF8.self))")
        let answer = json(r.body)
        #expect(answer["model"] as? String == "efficientnet-lite0")
        let data = try #require(answer["data"] as? [[String: Any]])
        #expect(data.map { $0["index"] as? Int } == chelsea.top5.prefix(3).map(\.index))
        #expect(data.map { $0["label"] as? String } == ["tiger cat", "Egyptian cat", "tabby, tabby cat"])
        for (item, golden) in zip(data, chelsea.top5) {
            #expect(abs((item["score"] as? Double ?? 0) - golden.prob) < 1e-4)
        }
        // JSON with base64 (a data URL works too), the default top_k of 5.
        let rocket = fixture.images.first { $0.id == "rocket" }!
        let encoded = "data:image/jpeg;base64," + Data(try Self.bytes("rocket.jpg")).base64EncodedString()
        let (status, parsed) = try s.request(
            "POST", Self.route, json: #"{"model": "efficientnet-lite0", "image": "\#(encoded)"}"#)
        #expect(status == 200)
        let top = (parsed["data"] as? [[String: Any]] ?? []).map { $0["index"] as? Int }
        #expect(top.count == 5 && top.first == rocket.top5[0].index)
    }

    @Test func kserveInferTakesEncodedImagesAndTensors() throws {
        let s = try LiveServer()
        defer { s.stop() }
        let fixture = try EfficientNetFixture.load()
        let coffee = fixture.images.first { $0.id == "coffee" }!
        let chelsea = fixture.images.first { $0.id == "chelsea" }!
        let infer = "/v2/models/efficientnet-lite0/infer"
        // Two encoded images as binary BYTES, logits back as binary.
        var binary: [UInt8] = []
        for file in ["coffee.png", "rocket.jpg"] {
            let b = try Self.bytes(file)
            withUnsafeBytes(of: UInt32(b.count).littleEndian) { binary += $0 }
            binary += b
        }
        let header = Array(
            #"{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": \#(binary.count)}}], "outputs": [{"name": "logits", "parameters": {"binary_data": true}}]}"#
                .utf8)
        let r = s.rawPost(infer, body: header + binary, headers: ["Inference-Header-Content-Length: \(header.count)"])
        #expect(r.status == 200)
        let (meta, logits) = try KServeExtensionTests.split(r)
        #expect((meta["outputs"] as? [[String: Any]])?.first?["shape"] as? [Int] == [2, 1000])
        #expect(logits.count == 2000)
        #expect(Comparison.maxAbsDiff(Array(logits[0..<1000]), coffee.logits) <= 0.25)
        #expect(logits[0..<1000].indices.max { logits[$0] < logits[$1] } == coffee.top5[0].index)
        // The recorded input tensor as FP32 [1, 3, 224, 224]: model-only parity.
        let input = try FixturePaths.readFloats(EfficientNetFixture.url("chelsea.input.f32"))
        let tensorHeader = Array(
            #"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 224, 224], "parameters": {"binary_data_size": \#(input.count * 4)}}], "parameters": {"binary_data_output": true}}"#
                .utf8)
        let tensorBody = tensorHeader + input.withUnsafeBytes { Array($0) }
        let t = s.rawPost(infer, body: tensorBody, headers: ["Inference-Header-Content-Length: \(tensorHeader.count)"])
        #expect(t.status == 200)
        let (tensorMeta, values) = try KServeExtensionTests.split(t)
        #expect(
            (tensorMeta["outputs"] as? [[String: Any]])?.map { $0["name"] as? String } == ["logits", "probabilities"])
        #expect(Comparison.maxAbsDiff(Array(values[0..<1000]), chelsea.logits) <= 1e-3)
        let probabilities = Array(values[1000...])
        #expect(abs(Double(probabilities[chelsea.top5[0].index]) - chelsea.top5[0].prob) < 1e-4)
        #expect(abs(probabilities.reduce(0, +) - 1) < 1e-4)
    }

    @Test func concurrentRequestsAreAllAnsweredAndCounted() throws {
        let s = try LiveServer()
        defer { s.stop() }
        let coffee = try Self.bytes("coffee.png")
        let group = DispatchGroup()
        let lock = NSLock()
        nonisolated(unsafe) var statuses: [Int] = []
        for _ in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                let (body, headers) = Self.multipart([
                    ("model", nil, Array("efficientnet-lite0".utf8)), ("file", "coffee.png", coffee),
                ])
                let r = s.rawPost(Self.route, body: body, headers: headers)
                let ok = r.status == 200 && String(decoding: r.body, as: UTF8.self).contains("espresso")
                lock.withLock { statuses.append(ok ? 200 : r.status) }
                group.leave()
            }
        }
        group.wait()
        #expect(statuses == Array(repeating: 200, count: 8))
        #expect(
            try s.metric(#"mass_images_total{model="efficientnet-lite0"}"#) == 10, "8 images and the two of the warm-up"
        )
        let requests = try s.metric(
            #"mass_requests_total{model="efficientnet-lite0",route="/v1/images/classifications",status="200"}"#)
        #expect(requests == 8)
    }

    @Test func badImagesGetClearErrors() throws {
        let s = try LiveServer(
            massJSON: #"{"task": "image-classification", "max_image_pixels": 200000}"#, model: "efficientnet-lite0",
            modelDirectory: EfficientNetFixture.modelDirectory)
        defer { s.stop() }
        let png = try Self.bytes("chelsea.png")  // 451 x 300 = 135,300 pixels: under the limit
        let big = try Self.bytes("coffee.png")  // 600 x 400 = 240,000 pixels: over it
        let model: (String, String?, [UInt8]) = ("model", nil, Array("efficientnet-lite0".utf8))
        let cases: [(String, [(String, String?, [UInt8])], Int, String)] = [
            ("ok", [model, ("file", "c.png", png)], 200, "tiger cat"),
            ("not an image", [model, ("file", "x.txt", Array("hello".utf8))], 400, "not a PNG or JPEG"),
            ("truncated", [model, ("file", "c.png", Array(png.prefix(png.count / 2)))], 400, "PNG"),
            ("empty", [model, ("file", "c.png", [])], 400, "empty"),
            ("bomb", [model, ("file", "big.png", big)], 413, "over the limit"),
            ("no file", [model], 400, "no 'file' part"),
            ("no model", [("file", "c.png", png)], 400, "'model'"),
            ("bad top_k", [model, ("top_k", nil, Array("0".utf8)), ("file", "c.png", png)], 400, "top_k"),
            ("unknown model", [("model", nil, Array("nope".utf8)), ("file", "c.png", png)], 404, "unknown model"),
        ]
        for (what, fields, status, message) in cases {
            let (body, headers) = Self.multipart(fields)
            let r = s.rawPost(Self.route, body: body, headers: headers)
            let text = String(decoding: r.body, as: UTF8.self)
            #expect(r.status == status, "\(what): \(r.status) \(text)")
            #expect(text.contains(message), "\(what): \(text)")
        }
        let (_, headers) = Self.multipart([])
        let broken = s.rawPost(Self.route, body: Array("--nope\r\nno headers".utf8), headers: headers)
        #expect(broken.status == 400 && String(decoding: broken.body, as: UTF8.self).contains("malformed multipart"))
        #expect(try s.request("POST", Self.route, json: #"{"model": "efficientnet-lite0", "image": "%%%"}"#).0 == 400)
        #expect(try s.request("GET", "/v2/health/ready").0 == 200)
    }
}
