/// One text as the `tokenizers` library tokenized it (the goldens of the Unigram and byte-level BPE suites).
struct TokenizedText: Decodable {
    let text: String
    let ids: [Int32]
    /// Absent where a golden file records ids and offsets only (MiniLM's WordPiece texts).
    let tokens: [String]?
    let offsets: [[Int]]
    let decoded: String
}

/// A pair with its type ids and offsets.
struct TokenizedPair: Decodable {
    let a: String
    let b: String
    let ids: [Int32]
    let type_ids: [Int32]
    let offsets: [[Int]]
}
