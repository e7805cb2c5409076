import Foundation
import Hummingbird
import MassAudio
import MassImage
import MassRuntime

/// The one place where failures become HTTP responses. `family` picks the body's envelope: KServe v2
/// `{"error": "..."}` or OpenAI `{"error": {"message", "type", "param", "code"}}`.
struct APIError: Error, HTTPResponseError {
    enum Family: Sendable { case kserve, openAI }

    let status: HTTPResponse.Status
    let message: String
    let family: Family
    var param: String? = nil

    static func badRequest(_ message: String, _ family: Family, param: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, family: family, param: param)
    }

    /// Maps runtime and model errors; anything unknown is a 500 that says no more than that.
    static func from(_ error: any Error, _ family: Family) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as RuntimeError:
            switch e.code {
            case .modelNotFound: return APIError(status: .notFound, message: e.message, family: family)
            case .queueFull:
                return APIError(
                    status: family == .openAI ? .tooManyRequests : .serviceUnavailable, message: e.message,
                    family: family)
            case .deadlineExceeded: return APIError(status: .serviceUnavailable, message: e.message, family: family)
            case .badConfig, .modelFailed:
                return APIError(status: .internalServerError, message: e.message, family: family)
            }
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
                status.code == 429 ? "rate_limit_error" : status.code >= 500 ? "server_error" : "invalid_request_error"
            body = ["error": ["message": message, "type": type, "param": param as Any? ?? NSNull(), "code": NSNull()]]
        }
        var response = JSONResponse.make(body, status: status)
        if status == .tooManyRequests { response.headers[.retryAfter] = "1" }
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
