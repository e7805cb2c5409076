import Foundation

/// Decodes a JSON config file, turning decoding failures into `ModelError`s that name the file and the key.
enum ConfigLoading {
    /// Throws `.missingFile` for the first of `names` that `directory` lacks.
    static func require(_ names: [String], in directory: URL) throws {
        for name in names where !FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            throw ModelError(
                .missingFile,
                "\(directory.appendingPathComponent(name).path) is missing; is \(directory.path) a model folder?")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, at url: URL) throws -> T {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ModelError(.missingFile, "\(url.path): cannot read (\(error.localizedDescription))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch DecodingError.keyNotFound(let key, let context) {
            let path = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            throw ModelError(.badConfig, "\(url.path): missing key '\(path)'")
        } catch DecodingError.typeMismatch(let type, let context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ModelError(.badConfig, "\(url.path): key '\(path)' should be of type \(type)")
        } catch DecodingError.valueNotFound(let type, let context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ModelError(.badConfig, "\(url.path): key '\(path)' is null, expected \(type)")
        } catch {
            throw ModelError(.badConfig, "\(url.path): not valid JSON (\(error.localizedDescription))")
        }
    }
}
