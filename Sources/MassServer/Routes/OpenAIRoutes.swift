import Foundation
import Hummingbird
import MassModels
import MassRuntime

/// OpenAI-compatible routes: `GET /v1/models`, `POST /v1/embeddings` (`input` string or array of strings,
/// `encoding_format` float or base64, `usage` with real token counts).
enum OpenAIRoutes {
    static func add(to router: Router<MassRequestContext>, host: ModelHost) {
        router.get("/v1/models") { _, _ in
            JSONResponse.make([
                "object": "list",
                "data": host.readyNames.map {
                    ["id": $0, "object": "model", "owned_by": "mass", "created": 0]
                },
            ])
        }
        router.post("/v1/embeddings") { request, context in
            // The model is only known once the body is read; parse failures are counted under "unknown".
            var name = "unknown"
            return try await host.measured(model: name, route: "/v1/embeddings", family: .openAI) {
                let body = try await JSONResponse.object(request, limit: host.bodyLimit, family: .openAI)
                guard let requested = body["model"] as? String else {
                    throw APIError.badRequest("'model' must be a string naming a hosted model", .openAI, param: "model")
                }
                name = requested
                let hosted = try host.model(name, family: .openAI)
                let service = try hosted.embedding(.openAI)
                let texts: [String]
                switch body["input"] {
                case let s as String: texts = [s]
                case let list as [Any] where list.allSatisfy({ $0 is String }): texts = list as! [String]
                default:
                    throw APIError.badRequest(
                        "'input' must be a string or an array of strings", .openAI, param: "input")
                }
                let format = body["encoding_format"] as? String ?? "float"
                guard format == "float" || format == "base64" else {
                    throw APIError.badRequest(
                        "'encoding_format' must be \"float\" or \"base64\"", .openAI, param: "encoding_format")
                }
                if let dimensions = body["dimensions"], (dimensions as? Int) != service.model.dimension {
                    throw APIError.badRequest(
                        "this model only produces \(service.model.dimension) dimensions", .openAI,
                        param: "dimensions")
                }
                try host.check(texts, for: hosted, family: .openAI, param: "input")
                let result = try await context.cancellingOnDisconnect { try await service.embed(texts) }
                let tokens = result.tokenCounts.reduce(0, +)
                let data: [[String: Any]] = result.embeddings.enumerated().map { index, vector in
                    let embedding: Any =
                        format == "float"
                        ? FloatList(vector)
                        : vector.withUnsafeBytes { Data($0) }.base64EncodedString()
                    return ["object": "embedding", "index": index, "embedding": embedding]
                }
                return JSONResponse.make([
                    "object": "list", "data": data, "model": name,
                    "usage": ["prompt_tokens": tokens, "total_tokens": tokens],
                ])
            }
        }
    }
}
