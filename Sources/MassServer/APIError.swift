import Foundation
import HTTPTypes
import Hummingbird
import MassAudio
import MassImage
import MassModels
import MassRegistry
import MassRuntime
import MassTenancy
import MassTraining
import MassTuning

/// The one place where failures become HTTP responses. `family` picks the body's envelope: KServe v2
/// `{"error": "..."}`, OpenAI `{"error": {"message", "type", "param", "code"}}` or TEI
/// `{"error": "...", "error_type": "..."}`.
struct APIError: Error, HTTPResponseError {
    enum Family: Sendable {
        case kserve, openAI, tei

        /// The envelope of a path's API: KServe under /v2 (and the admin API, which shares its plain
        /// `{"error"}`), TEI's task routes, OpenAI's otherwise.
        static func of(path: String) -> Family {
            if path.hasPrefix("/v2") || path.hasPrefix("/admin/") { return .kserve }
            if ["/predict", "/rerank", "/tokenize", "/decode"].contains(path) { return .tei }
            return .openAI
        }
    }

    let status: HTTPResponse.Status
    let message: String
    let family: Family
    var param: String? = nil
    /// OpenAI's `type` and `code`, when not the status's default.
    var type: String? = nil
    var code: String? = nil
    /// Extra response headers (rate limits, `Retry-After`, `WWW-Authenticate`).
    var headers: [(String, String)] = []

    static func badRequest(_ message: String, _ family: Family, param: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, family: family, param: param)
    }

    /// Maps runtime and model errors; anything unknown is a 500 that says no more than that.
    static func from(_ error: any Error, _ family: Family) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as RuntimeError:
            let status: HTTPResponse.Status
            switch e.code {
            case .modelNotFound, .versionNotFound, .modelUnavailable: status = .notFound
            case .wrongTask, .invalidInput, .loadFailed: status = .badRequest
            case .inputTooLong: status = .contentTooLarge
            case .conflict: status = .conflict
            case .modelLoading, .deadlineExceeded, .providerUnavailable: status = .serviceUnavailable
            case .providerFailed: status = .badGateway
            case .queueFull: status = family == .kserve ? .serviceUnavailable : .tooManyRequests
            case .badConfig, .modelFailed: status = .internalServerError
            }
            return APIError(status: status, message: e.message, family: family, param: e.param)
        case let e as ModelError:
            switch e.code {
            case .invalidInput: return APIError(status: .badRequest, message: e.message, family: family)
            case .inputTooLong: return APIError(status: .contentTooLarge, message: e.message, family: family)
            case .missingFile, .badConfig, .unsupported:
                return APIError(status: .internalServerError, message: "internal error", family: family)
            }
        case let e as RegistryError:
            let status: HTTPResponse.Status
            switch e.code {
            case .notFound: status = .notFound
            case .conflict: status = .conflict
            case .invalid: status = .badRequest
            case .integrity: status = .unprocessableContent
            case .unavailable: status = .serviceUnavailable
            }
            return APIError(status: status, message: e.message, family: family)
        case let e as TenancyError:
            // One stable mapping (docs/tenancy.md): 401 no or bad key, 403 role or model not allowed, 429 rate
            // limit (`rate_limit_exceeded`) or quota (`insufficient_quota`).
            var mapped = APIError(
                status: .init(code: e.status), message: e.message, family: family, headers: e.headers)
            switch e.code {
            case .unauthenticated:
                (mapped.type, mapped.code) = ("invalid_request_error", "invalid_api_key")
                mapped.headers.append(("WWW-Authenticate", "Bearer realm=\"mass\""))
            case .forbidden: (mapped.type, mapped.code) = ("invalid_request_error", "permission_denied")
            case .rateLimited: (mapped.type, mapped.code) = ("rate_limit_error", "rate_limit_exceeded")
            case .quotaExhausted: (mapped.type, mapped.code) = ("insufficient_quota", "insufficient_quota")
            }
            return mapped
        case let e as HTTPError:
            // Hummingbird's own: no route (404), a method not allowed, a body it could not read.
            let message = e.body ?? (e.status == .notFound ? "no such route" : e.status.reasonPhrase)
            return APIError(status: e.status, message: message, family: family)
        case let e as TrainingError:
            // A training configuration or state the server was asked to accept: the client's to fix.
            return APIError(status: .badRequest, message: e.message, family: family)
        case let e as TuningError:
            // A study configuration the server was asked to accept.
            return APIError(status: .badRequest, message: e.message, family: family)
        case let e as AudioError:
            return APIError(status: .badRequest, message: e.message, family: family)
        case let e as ImageError:
            return APIError(
                status: e.code == .tooLarge ? .contentTooLarge : .badRequest, message: e.message, family: family)
        case is CancellationError:
            // The client closed its connection before compute (nginx's 499; nobody reads the answer).
            return APIError(
                status: .init(code: 499, reasonPhrase: "Client Closed Request"),
                message: "the client closed the connection", family: family)
        default:
            return APIError(status: .internalServerError, message: "internal error", family: family)
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body: [String: Any]
        switch family {
        case .kserve:
            body = ["error": message]
        case .openAI:
            let type =
                self.type
                ?? (status.code == 429
                    ? "rate_limit_error" : status.code >= 500 ? "server_error" : "invalid_request_error")
            body = [
                "error": [
                    "message": message, "type": type, "param": param as Any? ?? NSNull(),
                    "code": code as Any? ?? NSNull(),
                ]
            ]
        case .tei:
            // TEI's error types: Validation (4xx), Overloaded (429), Backend / Unhealthy (5xx); and Mass's
            // Unauthorized (401), Forbidden (403), Quota (429 insufficient_quota).
            let type =
                status.code == 401
                ? "unauthorized"
                : status.code == 403
                    ? "forbidden"
                    : code == "insufficient_quota"
                        ? "quota"
                        : status.code == 429
                            ? "overloaded"
                            : status.code == 503 ? "unhealthy" : status.code >= 500 ? "backend" : "validation"
            body = ["error": message, "error_type": type]
        }
        var response = JSONResponse.make(body, status: status)
        if status == .tooManyRequests { response.headers[.retryAfter] = "1" }
        for (name, value) in headers {
            if let field = HTTPField.Name(name) { response.headers[field] = value }
        }
        return response
    }
}

/// JSON request and response bodies (responses through `JSONWriter`, requests through JSONSerialization).
enum JSONResponse {
    static func make(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.bytes(object))))
    }

    /// Collects a body of at most `limit` bytes (413 beyond).
    static func collect(_ request: Request, limit: Int, family: APIError.Family) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: limit)
        } catch {
            throw APIError(
                status: .contentTooLarge, message: "the request body is over the \(limit)-byte limit", family: family)
        }
    }

    /// Parses `bytes` as a JSON object.
    static func parseObject(_ bytes: some Collection<UInt8>, family: APIError.Family) throws -> [String: Any] {
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(bytes)) else {
            throw APIError.badRequest("the body is not valid JSON", family)
        }
        guard let object = parsed as? [String: Any] else {
            throw APIError.badRequest("the body must be a JSON object", family)
        }
        return object
    }

    /// Reads a JSON object body of at most `limit` bytes.
    static func object(_ request: Request, limit: Int, family: APIError.Family) async throws -> [String: Any] {
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw APIError(
                status: .unsupportedMediaType, message: "Content-Type must be application/json, not \(type)",
                family: family)
        }
        let buffer = try await collect(request, limit: limit, family: family)
        return try parseObject(buffer.readableBytesView, family: family)
    }
}
