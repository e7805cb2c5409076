import Foundation
import MassTesting
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The KServe v2 extensions: binary tensor data (inputs and outputs) and the model repository (index, load,
/// reload, unload with its memory returned).
@Suite(.serialized) struct KServeExtensionTests {
    static let infer = "/v2/models/all-MiniLM-L6-v2/infer"

    /// A binary-extension body: JSON header, then each text as a 4-byte little-endian length and its bytes.
    static func binaryBody(texts: [[UInt8]], header: (Int) -> String) -> (body: [UInt8], headerLength: Int) {
        var binary: [UInt8] = []
        for t in texts {
            withUnsafeBytes(of: UInt32(t.count).littleEndian) { binary += $0 }
            binary += t
        }
        let json = Array(header(binary.count).utf8)
        return (json + binary, json.count)
    }

    static func bytesInput(shape: Int, size: Int) -> String {
        #"{"name": "text", "datatype": "BYTES", "shape": [\#(shape)], "parameters": {"binary_data_size": \#(size)}}"#
    }

    /// Splits a binary-extension response into its JSON header and the floats after it.
    static func split(_ response: (status: Int, body: [UInt8], headers: [String])) throws -> ([String: Any], [Float]) {
        let field = try #require(
            response.headers.first { $0.lowercased().hasPrefix("inference-header-content-length:") })
        let n = try #require(Int(field.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)))
        let header = try #require(try JSONSerialization.jsonObject(with: Data(response.body[0..<n])) as? [String: Any])
        let floats = response.body[n...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return (header, floats)
    }

    @Test func binaryInputsAndOutputsAreGolden() throws {
        let s = try LiveServer()
        defer { s.stop() }
        let cases = try MiniLMFixture.load().cases
        let texts = [cases[0].text, cases[2].text].map { Array($0.utf8) }
        // Binary in, binary out (asked for per output).
        let (body, length) = Self.binaryBody(texts: texts) { size in
            #"{"id": "b1", "inputs": [\#(Self.bytesInput(shape: 2, size: size))], "outputs": [{"name": "embedding", "parameters": {"binary_data": true}}]}"#
        }
        let response = s.rawPost(
            Self.infer, body: body,
            headers: ["Content-Type: application/octet-stream", "Inference-Header-Content-Length: \(length)"])
        #expect(response.status == 200)
        let (header, floats) = try Self.split(response)
        let output = try #require((header["outputs"] as? [[String: Any]])?.first)
        #expect(header["id"] as? String == "b1" && output["shape"] as? [Int] == [2, 384])
        #expect((output["parameters"] as? [String: Any])?["binary_data_size"] as? Int == 2 * 384 * 4)
        #expect(output["data"] == nil && floats.count == 768)
        #expect(Comparison.maxAbsDiff(Array(floats[0..<384]), cases[0].embedding) <= 1e-4)
        #expect(Comparison.maxAbsDiff(Array(floats[384...]), cases[2].embedding) <= 1e-4)

        // JSON in, binary out through `binary_data_output`.
        let json = Array(
            #"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["Hello world"]}], "parameters": {"binary_data_output": true}}"#
                .utf8)
        let second = try Self.split(s.rawPost(Self.infer, body: json, headers: ["Content-Type: application/json"]))
        #expect(Comparison.maxAbsDiff(second.1, cases[0].embedding) <= 1e-4)

        // Binary in, JSON out (the default).
        let (plain, plainLength) = Self.binaryBody(texts: [texts[0]]) { size in
            #"{"inputs": [\#(Self.bytesInput(shape: 1, size: size))]}"#
        }
        let third = s.rawPost(Self.infer, body: plain, headers: ["Inference-Header-Content-Length: \(plainLength)"])
        #expect(
            third.status == 200
                && third.headers.contains { $0.lowercased().hasPrefix("content-type: application/json") })
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(third.body)) as? [String: Any])
        let data = ((parsed["outputs"] as? [[String: Any]])?.first?["data"] as? [Double] ?? []).map(Float.init)
        #expect(Comparison.maxAbsDiff(data, cases[0].embedding) <= 1e-4)
    }

    @Test func malformedBinaryRequestsGet400() throws {
        let s = try LiveServer()
        defer { s.stop() }
        let hello = Array("hello".utf8)
        func post(_ body: [UInt8], _ length: Int) -> (Int, [UInt8]) {
            let r = s.rawPost(Self.infer, body: body, headers: ["Inference-Header-Content-Length: \(length)"])
            return (r.status, r.body)
        }
        var cases: [(String, [UInt8], Int)] = []
        let good = Self.binaryBody(texts: [hello]) { #"{"inputs": [\#(Self.bytesInput(shape: 1, size: $0))]}"# }
        cases.append(("header length past the body", good.body, good.body.count + 10))
        cases.append(("header length not a number", good.body, -1))
        cases.append(("trailing bytes", good.body + [1, 2, 3], good.headerLength))
        let short = Self.binaryBody(texts: [hello]) { #"{"inputs": [\#(Self.bytesInput(shape: 1, size: $0 + 4))]}"# }
        cases.append(("size past the end", short.body, short.headerLength))
        let cut = Self.binaryBody(texts: [hello]) { #"{"inputs": [\#(Self.bytesInput(shape: 1, size: $0))]}"# }
        var lying = cut.body
        lying[cut.headerLength] = 200  // element length 200 with 5 bytes present
        cases.append(("element length past the end", lying, cut.headerLength))
        let invalid = Self.binaryBody(texts: [[0xFF, 0xFE]]) {
            #"{"inputs": [\#(Self.bytesInput(shape: 1, size: $0))]}"#
        }
        cases.append(("invalid UTF-8", invalid.body, invalid.headerLength))
        let shape = Self.binaryBody(texts: [hello]) { #"{"inputs": [\#(Self.bytesInput(shape: 3, size: $0))]}"# }
        cases.append(("shape mismatch", shape.body, shape.headerLength))
        let unknown = Self.binaryBody(texts: [hello]) {
            #"{"inputs": [\#(Self.bytesInput(shape: 1, size: $0))], "outputs": [{"name": "logits"}]}"#
        }
        cases.append(("unknown output", unknown.body, unknown.headerLength))
        for (what, body, length) in cases {
            let (status, answer) = length < 0 ? post(body, 0) : post(body, length)
            #expect(status == 400, "\(what): \(status)")
            let error = (try? JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any])?["error"]
            #expect(error is String, "\(what): \(String(decoding: answer, as: UTF8.self))")
        }
        #expect(try s.request("GET", "/v2/health/ready").0 == 200)
    }

    /// Two versions served by policy; unload returns the memory, load brings the model back, a broken
    /// mass.json on reload is refused while the loaded model keeps serving.
    @Test func repositoryLoadsAndUnloadsAtRunTime() throws {
        let config = #"{"task": "text-embedding", "version_policy": {"latest": 2}}"#
        let s = try LiveServer(massJSON: config, versions: [1, 2])
        defer { s.stop() }
        let name = "all-MiniLM-L6-v2"
        let golden = try MiniLMFixture.load().cases[0]
        func embedding(version: String? = nil) throws -> (Int, [Float]) {
            let path = "/v2/models/\(name)\(version.map { "/versions/\($0)" } ?? "")/infer"
            let (status, body) = try s.request(
                "POST", path,
                json: #"{"inputs": [{"name": "t", "datatype": "BYTES", "shape": [1], "data": ["Hello world"]}]}"#)
            let data = ((body["outputs"] as? [[String: Any]])?.first?["data"] as? [Double] ?? []).map(Float.init)
            return (status, data)
        }
        func index() throws -> [[String: String]] {
            var request = URLRequest(url: URL(string: "/v2/repository/index", relativeTo: s.base)!)
            request.httpMethod = "POST"
            let (_, data) = try LiveServer.sync(request)
            return try JSONSerialization.jsonObject(with: data) as? [[String: String]] ?? []
        }
        #expect(try s.request("GET", "/v2/models/\(name)").1["versions"] as? [String] == ["1", "2"])
        #expect(Comparison.maxAbsDiff(try embedding(version: "1").1, golden.embedding) <= 1e-4)
        #expect(try index().map { $0["version"] } == ["1", "2"])
        #expect(try index().allSatisfy { $0["state"] == "READY" })
        let loaded = try #require(try s.metric("mass_process_resident_memory_bytes"))

        #expect(try s.request("POST", "/v2/repository/models/\(name)/unload").0 == 200)
        #expect(try embedding().0 == 404)
        #expect(try index() == [["name": name, "state": "UNAVAILABLE", "reason": "unloaded"]])
        #expect(try s.request("GET", "/v2/health/ready").0 == 200, "an unloaded model does not make the server unready")
        #expect((try s.request("GET", "/v1/models").1["data"] as? [Any])?.isEmpty == true)
        #expect(try s.metric("mass_models_loaded") == 0)
        // Two copies of the model (~100 MB each) are given back to the system.
        var unloaded = loaded
        for _ in 0..<50 {
            unloaded = try #require(try s.metric("mass_process_resident_memory_bytes"))
            if unloaded < loaded - 120e6 { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(unloaded < loaded - 120e6, "RSS \(loaded) -> \(unloaded)")

        #expect(try s.request("POST", "/v2/repository/models/\(name)/load").0 == 200)
        #expect(Comparison.maxAbsDiff(try embedding(version: "2").1, golden.embedding) <= 1e-4)
        #expect(try s.metric("mass_models_loaded") == 1)

        // A reload with a broken mass.json is refused with the key named; the loaded versions keep serving.
        let massJSON = try #require(s.repository).appendingPathComponent(name).appendingPathComponent("mass.json")
        try Data(#"{"task": "text-embedding", "max_batch": 3}"#.utf8).write(to: massJSON)
        let (status, body) = try s.request("POST", "/v2/repository/models/\(name)/load")
        #expect(status == 400 && (body["error"] as? String ?? "").contains("max_batch"), "\(body)")
        #expect(try embedding().0 == 200)
        // A reload with a new policy takes effect.
        try Data(#"{"task": "text-embedding", "version_policy": {"specific": [1]}}"#.utf8).write(to: massJSON)
        #expect(try s.request("POST", "/v2/repository/models/\(name)/load").0 == 200)
        #expect(try s.request("GET", "/v2/models/\(name)").1["versions"] as? [String] == ["1"])
        #expect(try embedding(version: "2").0 == 404)

        #expect(try s.request("POST", "/v2/repository/models/nope/load").0 == 404)
        #expect(try s.request("POST", "/v2/repository/models/nope/unload").0 == 404)
    }
}
