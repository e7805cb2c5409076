import Foundation
import Hummingbird
import MassModels
import MassRuntime

/// KServe v2 Open Inference Protocol (REST): health, server and model metadata, readiness and `infer`.
/// Text goes in as a `BYTES` tensor (flat or nested JSON data); embeddings come out as `FP32` [n, dim].
enum KServeRoutes {
    static func add(to router: Router<BasicRequestContext>, host: ModelHost) {
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: host.metrics.exposition())))
        }
        router.get("/v2/health/live") { _, _ in JSONResponse.make(["live": true]) }
        router.get("/v2/health/ready") { _, _ in JSONResponse.make(["ready": true]) }
        router.get("/v2") { _, _ in
            JSONResponse.make(["name": "mass", "version": "0.1.0", "extensions": [String]()])
        }
        for suffix in ["", "/versions/:version"] {
            router.get("/v2/models/:name\(suffix)") { _, context in
                let hosted = try host.model(
                    try context.parameters.require("name"), version: context.parameters.get("version"), family: .kserve)
                return JSONResponse.make([
                    "name": hosted.entry.name, "versions": [String(hosted.version)], "platform": "mass",
                    "inputs": [["name": "text", "datatype": "BYTES", "shape": [-1]]],
                    "outputs": [
                        ["name": "embedding", "datatype": "FP32", "shape": [-1, hosted.service.model.dimension]]
                    ],
                ])
            }
            router.get("/v2/models/:name\(suffix)/ready") { _, context in
                let hosted = try host.model(
                    try context.parameters.require("name"), version: context.parameters.get("version"), family: .kserve)
                return JSONResponse.make(["name": hosted.entry.name, "ready": true])
            }
            router.post("/v2/models/:name\(suffix)/infer") { request, context in
                do {
                    let hosted = try host.model(
                        try context.parameters.require("name"), version: context.parameters.get("version"),
                        family: .kserve)
                    let body = try await JSONResponse.object(request, limit: host.bodyLimit, family: .kserve)
                    let texts = try textInput(body)
                    try host.check(texts, for: hosted, family: .kserve, param: "inputs")
                    let result = try await hosted.service.embed(texts)
                    let dim = hosted.service.model.dimension
                    var response: [String: Any] = [
                        "model_name": hosted.entry.name, "model_version": String(hosted.version),
                        "outputs": [
                            [
                                "name": "embedding", "datatype": "FP32", "shape": [texts.count, dim],
                                "data": result.embeddings.flatMap { $0 }.map(Double.init),
                            ]
                        ],
                    ]
                    if let id = body["id"] as? String { response["id"] = id }
                    return JSONResponse.make(response)
                }
            }
        }
    }

    /// The texts of the request's single BYTES input: `data` flat or nested, its element count matching `shape`.
    static func textInput(_ body: [String: Any]) throws -> [String] {
        guard let inputs = body["inputs"] as? [[String: Any]], inputs.count == 1, let input = inputs.first else {
            throw APIError.badRequest("'inputs' must be an array of exactly one tensor", .kserve)
        }
        guard input["name"] is String else { throw APIError.badRequest("input 'name' must be a string", .kserve) }
        guard let datatype = input["datatype"] as? String, datatype == "BYTES" else {
            throw APIError.badRequest("input 'datatype' must be \"BYTES\" for text", .kserve)
        }
        guard let shape = input["shape"] as? [Int], !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }) else {
            throw APIError.badRequest("input 'shape' must be an array of non-negative integers", .kserve)
        }
        guard let data = input["data"] as? [Any] else {
            throw APIError.badRequest("input 'data' must be an array", .kserve)
        }
        var texts: [String] = []
        func flatten(_ values: [Any]) throws {
            for v in values {
                if let s = v as? String {
                    texts.append(s)
                } else if let nested = v as? [Any] {
                    try flatten(nested)
                } else {
                    throw APIError.badRequest("BYTES input 'data' must hold strings", .kserve)
                }
            }
        }
        try flatten(data)
        guard shape.reduce(1, *) == texts.count else {
            throw APIError.badRequest(
                "input 'shape' \(shape) holds \(shape.reduce(1, *)) elements but 'data' has \(texts.count)", .kserve)
        }
        return texts
    }
}
