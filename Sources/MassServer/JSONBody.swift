import Foundation
import Hummingbird
import MassRuntime

/// Request bodies decoded into Codable DTOs, with errors that name the field and say what it must be.
enum JSONBody {
    /// Reads a JSON body of at most `limit` bytes (415 for another media type, 413 beyond the limit) and decodes it.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, limit: Int) async throws -> T {
        if let contentType = request.headers[.contentType], !contentType.lowercased().hasPrefix("application/json") {
            throw APIError(
                status: .unsupportedMediaType, message: "Content-Type must be application/json, not \(contentType)",
                family: .of(path: request.uri.path))
        }
        let buffer = try await JSONResponse.collect(request, limit: limit, family: .of(path: request.uri.path))
        return try decode(type, from: Data(buffer.readableBytesView))
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            throw RuntimeError(.invalidInput, "the body is not valid JSON")
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw RuntimeError(.invalidInput, "the body must be a JSON object")
        } catch DecodingError.keyNotFound(let key, let context) {
            let name = path(context.codingPath + [key])
            throw RuntimeError(.invalidInput, "'\(name)' is required", param: name)
        } catch DecodingError.typeMismatch(let expected, let context) {
            let name = path(context.codingPath)
            throw RuntimeError(.invalidInput, "'\(name)' must be \(describe(expected))", param: name)
        } catch DecodingError.valueNotFound(let expected, let context) {
            let name = path(context.codingPath)
            throw RuntimeError(.invalidInput, "'\(name)' must be \(describe(expected)), not null", param: name)
        } catch DecodingError.dataCorrupted(let context) {
            let name = path(context.codingPath)
            throw RuntimeError(.invalidInput, "'\(name)': \(context.debugDescription)", param: name)
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[")
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        case is [String].Type: "an array of strings"
        case is [Int].Type: "an array of integers"
        default:
            String(describing: type).hasPrefix("Array<")
                ? "an array" : String(describing: type).hasPrefix("Dictionary<") ? "an object" : "of type \(type)"
        }
    }
}

/// A request field that is one text or a list of texts (OpenAI's `input`, TEI's `inputs`); a wrong type is an
/// `invalidInput` naming the field.
enum TextOrTexts: Decodable {
    case one(String)
    case many([String])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .one(text)
        } else if let texts = try? container.decode([String].self) {
            self = .many(texts)
        } else {
            let field = decoder.codingPath.last?.stringValue ?? "input"
            throw RuntimeError(.invalidInput, "'\(field)' must be a string or an array of strings", param: field)
        }
    }

    var texts: [String] {
        switch self {
        case .one(let t): [t]
        case .many(let t): t
        }
    }
}
