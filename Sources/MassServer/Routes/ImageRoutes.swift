import Foundation
import Hummingbird
import MassModels
import MassRuntime

/// `POST /v1/images/classifications`: multipart (`file`, `model`, `top_k`) or JSON (`image` base64, `model`,
/// `top_k`) → `{"model", "data": [{"label", "index", "score"}]}`. Errors in OpenAI's envelope.
enum ImageRoutes {
    static let defaultTopK = 5

    /// The JSON body of the task route.
    struct ImageRequest: Decodable {
        let model: String?
        let image: String?
        let topK: Int?

        enum CodingKeys: String, CodingKey {
            case model, image
            case topK = "top_k"
        }
    }

    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        router.post("/v1/images/classifications") { request, context in
            RequestLabels.inference("/v1/images/classifications")
            do {
                let body = try await read(request, limit: state.bodyLimit)
                let image = body.image
                guard let name = body.model else {
                    throw APIError.badRequest("'model' must name a hosted image model", .openAI, param: "model")
                }
                let service = try state.model(
                    name, as: (any ImageClassificationServing).self, serving: .imageClassification)
                let classes = service.classifier.labels.count
                let topK: Int
                switch body.topK {
                case nil: topK = min(defaultTopK, classes)
                case let k? where (1...classes).contains(k): topK = k
                default:
                    throw APIError.badRequest(
                        "'top_k' must be an integer from 1 to \(classes)", .openAI, param: "top_k")
                }
                guard !image.isEmpty else { throw APIError.badRequest("the image is empty", .openAI, param: "file") }
                let logits = try await context.cancellingOnDisconnect { try await service.classify(encoded: [image]) }
                let data = service.classifier.top(logits[0], k: topK).map {
                    ["label": $0.label, "index": $0.index, "score": $0.score] as [String: Any]
                }
                return JSONResponse.make(["model": name, "data": data])
            }
        }
    }

    /// KServe `infer` for image classifiers: one input, encoded images as BYTES (any name) or prepared FP32
    /// [N, 3, side, side] → FP32 `logits` and `probabilities` [N, classes].
    static let kserve = KServeAdapter(task: .imageClassification) { infer, model, context, state in
        guard let service = model as? any ImageClassificationServing else { throw KServeRoutes.mismatch(model) }
        let side = service.classifier.inputSide
        guard infer.inputs.count == 1, let input = infer.inputs.first else {
            throw RuntimeError(
                .invalidInput, "'inputs' must hold exactly one tensor: BYTES images or FP32 [N, 3, \(side), \(side)]")
        }
        func checkCount(_ count: Int) throws {
            guard count > 0 else { throw RuntimeError(.invalidInput, "the input holds no image") }
            guard count <= service.config.maxInputs else {
                throw RuntimeError(
                    .invalidInput, "\(count) images; this model takes at most \(service.config.maxInputs)")
            }
        }
        let count: Int
        let logits: [[Float]]
        switch input.data {
        case .bytes(let files):
            count = files.count
            try checkCount(count)
            logits = try await context.cancellingOnDisconnect { try await service.classify(encoded: files) }
        case .fp32(let values):
            guard input.shape.count == 4, input.shape[1] == 3, input.shape[2] == side, input.shape[3] == side else {
                throw RuntimeError(
                    .invalidInput,
                    "input '\(input.name)': FP32 images must have shape [N, 3, \(side), \(side)], not \(input.shape)")
            }
            count = input.shape[0]
            try checkCount(count)
            logits = try await context.cancellingOnDisconnect { try await service.classify(prepared: values) }
        }
        let classes = service.classifier.labels.count
        let probabilities = logits.flatMap(service.classifier.probabilities)
        return try InferResponse(
            model: service, id: infer.id,
            outputs: [
                .init(name: "logits", shape: [count, classes], values: logits.flatMap { $0 }),
                .init(name: "probabilities", shape: [count, classes], values: probabilities),
            ]
        ).encode(for: infer)
    }

    /// What the task route reads, from either body.
    struct ImageInput {
        var model: String?
        var topK: Int?
        var image: [UInt8]
    }

    /// Reads a multipart form (`file`, `model`, `top_k`) or a JSON `ImageRequest` (`image` in base64).
    static func read(_ request: Request, limit: Int) async throws -> ImageInput {
        let type = request.headers[.contentType] ?? ""
        if let boundary = MultipartForm.boundary(of: type) {
            let body = try await JSONResponse.collect(request, limit: limit, family: .openAI)
            let form = try MultipartForm(Array(body.readableBytesView), boundary: boundary, family: .openAI)
            guard let file = form.first("file") else {
                throw APIError.badRequest("the form has no 'file' part", .openAI, param: "file")
            }
            return ImageInput(
                model: try form.text("model", family: .openAI), topK: try form.integer("top_k", family: .openAI),
                image: Array(file.body))
        }
        let body = try await JSONBody.decode(ImageRequest.self, request, limit: limit)
        guard let encoded = body.image else {
            throw APIError.badRequest(
                "send multipart/form-data with a 'file', or JSON with 'image' as a base64 string", .openAI,
                param: "image")
        }
        let base64 = encoded.hasPrefix("data:") ? String(encoded.drop { $0 != "," }.dropFirst()) : encoded
        guard let image = Data(base64Encoded: base64, options: .ignoreUnknownCharacters) else {
            throw APIError.badRequest("'image' is not valid base64", .openAI, param: "image")
        }
        return ImageInput(model: body.model, topK: body.topK, image: Array(image))
    }
}
