import Foundation

/// A `multipart/form-data` body (RFC 7578) split into its named parts.
struct MultipartForm {
    struct Part {
        let name: String
        let filename: String?
        let contentType: String?
        let body: ArraySlice<UInt8>

        var text: String? { String(validating: body, as: UTF8.self) }
    }

    let parts: [Part]

    func first(_ name: String) -> Part? { parts.first { $0.name == name } }

    /// A text field, trimmed; nil when absent or empty. A part that is not UTF-8 is a 400 naming the field.
    func text(_ name: String, family: APIError.Family) throws -> String? {
        guard let part = first(name) else { return nil }
        guard let text = part.text else {
            throw APIError.badRequest("'\(name)' must be UTF-8 text", family, param: name)
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    /// An integer field; nil when absent or empty.
    func integer(_ name: String, family: APIError.Family) throws -> Int? {
        guard let text = try text(name, family: family) else { return nil }
        guard let value = Int(text) else {
            throw APIError.badRequest("'\(name)' must be an integer, not \"\(text)\"", family, param: name)
        }
        return value
    }

    /// The boundary of a `multipart/form-data; boundary=...` content type, or nil for another type.
    static func boundary(of contentType: String) -> String? {
        let pieces = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard pieces.first?.lowercased() == "multipart/form-data" else { return nil }
        for piece in pieces.dropFirst() where piece.lowercased().hasPrefix("boundary=") {
            var value = piece.dropFirst("boundary=".count)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            return value.isEmpty ? nil : String(value)
        }
        return nil
    }

    /// Splits `body` at `--boundary` lines; throws a 400 for a body that is not well formed.
    init(_ body: [UInt8], boundary: String, family: APIError.Family) throws {
        func bad(_ why: String) -> APIError { APIError.badRequest("malformed multipart body: \(why)", family) }
        let delimiter = Array("--\(boundary)".utf8)
        func find(_ needle: [UInt8], from: Int) -> Int? {
            guard needle.count <= body.count else { return nil }
            var i = from
            while i + needle.count <= body.count {
                if body[i] == needle[0] && body[i..<(i + needle.count)].elementsEqual(needle) { return i }
                i += 1
            }
            return nil
        }
        guard var position = find(delimiter, from: 0) else { throw bad("no part starts with the boundary") }
        var parts: [Part] = []
        while true {
            position += delimiter.count
            if body[position...].starts(with: [45, 45]) { break }  // "--": the closing delimiter
            guard body[position...].starts(with: [13, 10]) else { throw bad("a boundary is not followed by CRLF") }
            position += 2
            guard let headerEnd = find([13, 10, 13, 10], from: position) else { throw bad("a part has no header end") }
            let headers = String(decoding: body[position..<headerEnd], as: UTF8.self).components(separatedBy: "\r\n")
            guard let next = find([13, 10] + delimiter, from: headerEnd + 4) else {
                throw bad("a part is not closed by the boundary (truncated?)")
            }
            var name: String?
            var filename: String?
            var contentType: String?
            for header in headers {
                let lower = header.lowercased()
                if lower.hasPrefix("content-disposition:") {
                    name = Self.parameter("name", in: header)
                    filename = Self.parameter("filename", in: header)
                } else if lower.hasPrefix("content-type:") {
                    contentType = header.dropFirst("content-type:".count).trimmingCharacters(in: .whitespaces)
                }
            }
            guard let name else { throw bad("a part has no Content-Disposition name") }
            parts.append(
                Part(name: name, filename: filename, contentType: contentType, body: body[(headerEnd + 4)..<next]))
            position = next + 2
        }
        self.parts = parts
    }

    /// `name="value"` (or unquoted) in a Content-Disposition header.
    private static func parameter(_ key: String, in header: String) -> String? {
        for piece in header.split(separator: ";").dropFirst() {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            guard trimmed.lowercased().hasPrefix(key + "=") else { continue }
            var value = trimmed.dropFirst(key.count + 1)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            return String(value)
        }
        return nil
    }
}
