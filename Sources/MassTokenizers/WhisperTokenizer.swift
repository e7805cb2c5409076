public import Foundation

/// Whisper's byte-level BPE vocabulary (`vocabulary.txt` of a CTranslate2 package: line i is token i, written
/// with GPT-2's byte-to-character table; or `vocabulary.json`, the same tokens as a JSON list), for turning
/// generated ids back into text. Ids of special tokens (end of text and above) decode to nothing.
public struct WhisperTokenizer: Sendable {
    public let tokens: [String]
    public let endOfText: Int
    private let byteOf: [Unicode.Scalar: UInt8]

    public init(vocabularyFile: URL) throws {
        guard let text = try? String(contentsOf: vocabularyFile, encoding: .utf8) else {
            throw TokenizerError(.fileUnreadable, file: vocabularyFile.path, "cannot be read as UTF-8 text")
        }
        var lines: [String]
        if vocabularyFile.pathExtension == "json" {
            guard let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String] else {
                throw TokenizerError(.malformed, file: vocabularyFile.path, "is not a JSON list of tokens")
            }
            lines = list
        } else {
            lines = text.components(separatedBy: "\n")
            if lines.last == "" { lines.removeLast() }
        }
        guard let eot = lines.firstIndex(of: "<|endoftext|>") else {
            throw TokenizerError(.malformed, file: vocabularyFile.path, "has no <|endoftext|> token")
        }
        tokens = lines
        endOfText = eot
        byteOf = ByteLevel.byteOfScalar
    }

    /// The id of a token written as in the vocabulary (e.g. "<|startoftranscript|>"), or nil.
    public func id(of token: String) -> Int? {
        // Special tokens follow end of text; search there first.
        if let found = tokens[endOfText...].firstIndex(of: token) { return found }
        return tokens.firstIndex(of: token)
    }

    /// The text of `ids` (special tokens skipped; invalid UTF-8 replaced, as the reference decodes with
    /// `errors="replace"`).
    public func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && id < endOfText && id < tokens.count {
            for c in tokens[id].unicodeScalars { if let b = byteOf[c] { bytes.append(b) } }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
