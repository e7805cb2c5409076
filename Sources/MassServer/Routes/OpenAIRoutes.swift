import Foundation
import Hummingbird
import MassModels
import MassRuntime

/// OpenAI-compatible routes: `GET /v1/models`, `POST /v1/embeddings` (`input` string or array of strings,
/// `encoding_format` float or base64, `usage` with real token counts); and KServe `infer` for embedding models.
enum OpenAIRoutes {
    /// The body of `POST /v1/embeddings`.
    struct EmbeddingsRequest: Decodable {
        let model: String
        let input: TextOrTexts
        let encodingFormat: String?
        let dimensions: Int?
        let user: String?

        enum CodingKeys: String, CodingKey {
            case model, input, dimensions, user
            case encodingFormat = "encoding_format"
        }
    }

    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        router.get("/v1/models") { _, _ in
            JSONResponse.make([
                "object": "list",
                "data": state.manager.readyNames.map {
                    ["id": $0, "object": "model", "owned_by": "mass", "created": 0]
                },
            ])
        }
        router.post("/v1/embeddings") { request, context in
            RequestLabels.inference("/v1/embeddings")
            let body = try await JSONBody.decode(EmbeddingsRequest.self, request, limit: state.bodyLimit)
            let service = try state.model(body.model, as: (any TextEmbeddingServing).self, serving: .textEmbedding)
            let texts = body.input.texts
            let format = body.encodingFormat ?? "float"
            guard format == "float" || format == "base64" else {
                throw RuntimeError(
                    .invalidInput, "'encoding_format' must be \"float\" or \"base64\"", param: "encoding_format")
            }
            if let dimensions = body.dimensions, dimensions != service.dimension {
                throw RuntimeError(
                    .invalidInput, "this model only produces \(service.dimension) dimensions", param: "dimensions")
            }
            try state.check(texts, limits: service.config, param: "input")
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
                "object": "list", "data": data, "model": body.model,
                "usage": ["prompt_tokens": tokens, "total_tokens": tokens],
            ])
        }
    }

    /// KServe `infer` for embedding models: one BYTES input of texts → FP32 `embedding` [n, dim].
    static let kserve = KServeAdapter(task: .textEmbedding) { infer, model, context, state in
        guard let service = model as? any TextEmbeddingServing else { throw KServeRoutes.mismatch(model) }
        let texts = try KServeRoutes.textInput(infer)
        try state.check(texts, limits: service.config, param: "inputs")
        let result = try await context.cancellingOnDisconnect { try await service.embed(texts) }
        return try InferResponse(
            model: service, id: infer.id,
            outputs: [
                .init(
                    name: "embedding", shape: [texts.count, service.dimension],
                    values: result.embeddings.flatMap { $0 })
            ]
        ).encode(for: infer)
    }
}
