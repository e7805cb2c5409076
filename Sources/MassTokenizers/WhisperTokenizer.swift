public import Foundation

/// Whisper's byte-level BPE vocabulary (`vocabulary.txt` of a CTranslate2 package: line i is token i, written
/// with GPT-2's byte-to-character table; or `vocabulary.json`, the same tokens as a JSON list), for turning
/// generated ids back into text. Ids of special tokens (end of text and above) decode to nothing.
public struct WhisperTokenizer: Sendable {
    public let tokens: [String]
    public let endOfText: Int

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
        ByteLevel.decode(ids.filter { $0 >= 0 && $0 < endOfText && $0 < tokens.count }.map { tokens[$0] })
    }

    /// Languages written without spaces between words, whose words faster-whisper splits at every complete
    /// character instead.
    public static let unspacedLanguages: Set<String> = ["zh", "ja", "th", "lo", "my", "yue"]

    /// faster-whisper's `split_to_word_tokens`: `splitOnUnicode` for the unspaced languages, else
    /// `split_tokens_on_spaces` (the complete-character pieces joined into words that start at a space, a
    /// punctuation mark or a special token).
    public func splitToWordTokens(_ tokens: [Int], language: String?) -> ([String], [[Int]]) {
        let pieces = splitOnUnicode(tokens)
        if let language, Self.unspacedLanguages.contains(language) { return pieces }
        var words: [String] = []
        var wordTokens: [[Int]] = []
        for (piece, tokens) in zip(pieces.words, pieces.tokens) {
            let special = tokens[0] >= endOfText
            // Python's `piece.strip() in string.punctuation`: a substring test.
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            let punctuation = trimmed.isEmpty || Self.asciiPunctuation.contains(trimmed)
            if special || piece.hasPrefix(" ") || punctuation || words.isEmpty {
                words.append(piece)
                wordTokens.append(tokens)
            } else {
                words[words.count - 1] += piece
                wordTokens[wordTokens.count - 1] += tokens
            }
        }
        return (words, wordTokens)
    }

    /// faster-whisper's `split_tokens_on_unicode`: tokens grouped until their text is complete UTF-8 (no
    /// replacement character, or one the whole text has at that place too: the model wrote invalid UTF-8).
    /// Special tokens decode to nothing, as in the reference; tokens left incomplete at the end are dropped.
    public func splitOnUnicode(_ tokens: [Int]) -> (words: [String], tokens: [[Int]]) {
        let full = Array(decode(tokens).unicodeScalars)
        var words: [String] = []
        var wordTokens: [[Int]] = []
        var current: [Int] = []
        var offset = 0
        for token in tokens {
            current.append(token)
            let decoded = decode(current)
            let scalars = Array(decoded.unicodeScalars)
            if let bad = scalars.firstIndex(of: "\u{FFFD}").map({ $0 + offset }),
                bad >= full.count || full[bad] != "\u{FFFD}"
            {
                continue
            }
            words.append(decoded)
            wordTokens.append(current)
            current = []
            offset += scalars.count
        }
        return (words, wordTokens)
    }

    static let asciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
}
