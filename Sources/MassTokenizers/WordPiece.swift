/// Hugging Face `WordPiece` model: greedy longest-prefix match, continuation pieces prefixed ("##"); a word
/// longer than `maxInputCharsPerWord` characters, or with any part that matches nothing, becomes the unknown
/// token as a whole.
public struct WordPiece: Sendable {
    public let vocabulary: [String: Int32]
    public let unknownToken: String
    public let unknownId: Int32
    public let continuingSubwordPrefix: String
    public let maxInputCharsPerWord: Int
    private let tokensById: [Int32: String]

    public init(
        vocabulary: [String: Int32], unknownToken: String, continuingSubwordPrefix: String, maxInputCharsPerWord: Int
    )
        throws(TokenizerError)
    {
        guard let unk = vocabulary[unknownToken] else {
            throw TokenizerError(
                .malformed, file: "tokenizer.json", "unk_token '\(unknownToken)' is not in the vocabulary")
        }
        self.vocabulary = vocabulary
        self.unknownToken = unknownToken
        unknownId = unk
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.maxInputCharsPerWord = maxInputCharsPerWord
        tokensById = Dictionary(vocabulary.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public func token(for id: Int32) -> String? { tokensById[id] }

    /// The pieces of one word with their character ranges in it (the whole word for the unknown token).
    func tokenize(_ word: [Unicode.Scalar]) -> [(id: Int32, token: String, range: Range<Int>)] {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: word)
        var ids: [Int32] = []
        var tokens: [String] = []
        let string = String(view)
        tokenize(string.unicodeScalars[...], ids: &ids, tokens: &tokens)
        if ids == [unknownId], tokens == [unknownToken] { return [(unknownId, unknownToken, 0..<word.count)] }
        var start = 0
        return zip(ids, tokens).enumerated().map { i, pair in
            let length = pair.1.unicodeScalars.count - (i > 0 ? continuingSubwordPrefix.unicodeScalars.count : 0)
            defer { start += length }
            return (pair.0, pair.1, start..<(start + length))
        }
    }

    /// Appends the pieces of one word to `ids` and `tokens`.
    public func tokenize(_ word: Substring.UnicodeScalarView, ids: inout [Int32], tokens: inout [String]) {
        let chars = Array(word)
        if chars.count > maxInputCharsPerWord {
            ids.append(unknownId)
            tokens.append(unknownToken)
            return
        }
        var pieceIds: [Int32] = []
        var pieces: [String] = []
        var start = 0
        while start < chars.count {
            var end = chars.count
            var found: (Int32, String)? = nil
            while start < end {
                var candidate = String.UnicodeScalarView()
                if start > 0 { candidate.append(contentsOf: continuingSubwordPrefix.unicodeScalars) }
                candidate.append(contentsOf: chars[start..<end])
                let piece = String(candidate)
                if let id = vocabulary[piece] {
                    found = (id, piece)
                    break
                }
                end -= 1
            }
            guard let (id, piece) = found else {
                ids.append(unknownId)
                tokens.append(unknownToken)
                return
            }
            pieceIds.append(id)
            pieces.append(piece)
            start = end
        }
        ids.append(contentsOf: pieceIds)
        tokens.append(contentsOf: pieces)
    }
}
