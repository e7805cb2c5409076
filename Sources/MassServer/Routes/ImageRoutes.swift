import Foundation
import Hummingbird
import MassModels
import MassRuntime

/// `POST /v1/images/classifications`: multipart (`file`, `model`, `top_k`) or JSON (`image` base64, `model`,
/// `top_k`) → `{"model", "data": [{"label", "index", "score"}]}`. Errors in OpenAI's envelope.
enum ImageRoutes {
    static let defaultTopK = 5

    static func add(to router: Router<MassRequestContext>, host: ModelHost) {
        router.post("/v1/images/classifications") { request, context in
            var name = "unknown"
            return try await host.measured(model: name, route: "/v1/images/classifications", family: .openAI) {
                let (fields, image) = try await read(request, limit: host.bodyLimit)
                guard let requested = fields["model"] as? String else {
                    throw APIError.badRequest("'model' must name a hosted image model", .openAI, param: "model")
                }
                name = requested
                let hosted = try host.model(name, family: .openAI)
                let service = try hosted.classification(.openAI)
                let classes = service.classifier.labels.count
                let topK: Int
                switch fields["top_k"] {
                case nil: topK = min(defaultTopK, classes)
                case let k as Int where (1...classes).contains(k): topK = k
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

    /// The form fields (`model` as a string, `top_k` as an integer) and the image bytes.
    static func read(_ request: Request, limit: Int) async throws -> ([String: Any], [UInt8]) {
        let type = request.headers[.contentType] ?? ""
        if let boundary = MultipartForm.boundary(of: type) {
            let body = try await JSONResponse.collect(request, limit: limit, family: .openAI)
            let form = try MultipartForm(Array(body.readableBytesView), boundary: boundary, family: .openAI)
            guard let file = form.first("file") else {
                throw APIError.badRequest("the form has no 'file' part", .openAI, param: "file")
            }
            var fields: [String: Any] = [:]
            if let model = form.first("model") { fields["model"] = model.text }
            if let k = form.first("top_k") {
                guard let text = k.text, let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                    throw APIError.badRequest("'top_k' must be an integer", .openAI, param: "top_k")
                }
                fields["top_k"] = value
            }
            return (fields, Array(file.body))
        }
        let body = try await JSONResponse.object(request, limit: limit, family: .openAI)
        guard let encoded = body["image"] as? String else {
            throw APIError.badRequest(
                "send multipart/form-data with a 'file', or JSON with 'image' as a base64 string", .openAI,
                param: "image")
        }
        let base64 = encoded.hasPrefix("data:") ? String(encoded.drop { $0 != "," }.dropFirst()) : encoded
        guard let image = Data(base64Encoded: base64, options: .ignoreUnknownCharacters) else {
            throw APIError.badRequest("'image' is not valid base64", .openAI, param: "image")
        }
        var fields: [String: Any] = ["model": body["model"] as Any]
        if let k = body["top_k"] {
            guard let n = k as? NSNumber, String(cString: n.objCType) != "c", String(cString: n.objCType) != "d" else {
                throw APIError.badRequest("'top_k' must be an integer", .openAI, param: "top_k")
            }
            fields["top_k"] = n.intValue
        }
        if fields["model"] is NSNull { fields["model"] = nil }
        return (fields, Array(image))
    }
}
