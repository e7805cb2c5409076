/// Hugging Face `Unigram` model (SentencePiece's unigram language model): every way of cutting a word into
/// vocabulary pieces is scored by the sum of the pieces' log probabilities and the best one wins (Viterbi over
/// byte positions, as tokenizers' `encode_optimized`: candidates in order of length, a later one only when strictly
/// better). A character no piece starts with becomes the unknown piece (score: the lowest minus 10), and runs of
/// unknown pieces are fused into one.
public struct Unigram: Sendable {
    /// Pieces and their scores, by id.
    public let pieces: [(piece: String, score: Double)]
    public let unknownId: Int32
    /// Byte trie of the pieces: child of (node, byte) → node; each node's piece id or −1.
    private let children: [UInt64: Int32]
    private let values: [Int32]
    private let unknownScore: Double

    public init(pieces: [(piece: String, score: Double)], unknownId: Int, file: String) throws(TokenizerError) {
        guard !pieces.isEmpty else { throw TokenizerError(.malformed, file: file, "model.vocab is empty") }
        guard unknownId >= 0, unknownId < pieces.count else {
            throw TokenizerError(.malformed, file: file, "model.unk_id \(unknownId) is outside the vocabulary")
        }
        self.pieces = pieces
        self.unknownId = Int32(unknownId)
        var children: [UInt64: Int32] = [:]
        children.reserveCapacity(pieces.count * 4)
        var values: [Int32] = [-1]
        var lowest = Double.infinity
        for (id, (piece, score)) in pieces.enumerated() {
            lowest = min(lowest, score)
            var node = 0
            for byte in piece.utf8 {
                let key = UInt64(node) << 8 | UInt64(byte)
                if let child = children[key] {
                    node = Int(child)
                } else {
                    children[key] = Int32(values.count)
                    node = values.count
                    values.append(-1)
                }
            }
            values[node] = Int32(id)  // a later duplicate wins, as in the reference's map
        }
        self.children = children
        self.values = values
        unknownScore = lowest - 10
    }

    /// The best segmentation of one word (UTF-8 bytes of whole characters): each piece's id and byte range.
    public func segment(_ word: [UInt8]) -> [(id: Int32, bytes: Range<Int>)] {
        let size = word.count
        var score = [Double](repeating: 0, count: size + 1)
        var from = [Int](repeating: -1, count: size + 1)
        var piece = [Int32](repeating: 0, count: size + 1)
        var start = 0
        while start < size {
            let here = score[start]
            let charLength = Self.utf8Length(word[start])
            var single = false
            var node = 0
            var end = start
            while end < size, let child = children[UInt64(node) << 8 | UInt64(word[end])] {
                node = Int(child)
                end += 1
                let id = values[node]
                guard id >= 0 else { continue }
                let candidate = pieces[Int(id)].score + here
                if from[end] < 0 || candidate > score[end] {
                    score[end] = candidate
                    from[end] = start
                    piece[end] = id
                }
                if end - start == charLength { single = true }
            }
            let next = min(size, start + charLength)
            if !single {
                let candidate = unknownScore + here
                if from[next] < 0 || candidate > score[next] {
                    score[next] = candidate
                    from[next] = start
                    piece[next] = unknownId
                }
            }
            start = next
        }
        var result: [(id: Int32, bytes: Range<Int>)] = []
        var end = size
        while end > 0 {
            let begin = from[end]
            if piece[end] == unknownId, let last = result.last, last.id == unknownId, last.bytes.lowerBound == end {
                result[result.count - 1].bytes = begin..<last.bytes.upperBound
            } else {
                result.append((piece[end], begin..<end))
            }
            end = begin
        }
        // A fused run of unknown characters that happens to spell a piece is that piece (the reference looks
        // every result up by its text).
        return result.reversed().map { p in
            p.id == unknownId ? (id(of: word[p.bytes]) ?? unknownId, p.bytes) : p
        }
    }

    /// The id of a piece by its exact bytes, if it is one.
    func id(of bytes: some Sequence<UInt8>) -> Int32? {
        var node = 0
        for byte in bytes {
            guard let child = children[UInt64(node) << 8 | UInt64(byte)] else { return nil }
            node = Int(child)
        }
        return values[node] >= 0 ? values[node] : nil
    }

    private static func utf8Length(_ lead: UInt8) -> Int {
        switch lead {
        case 0..<0x80: 1
        case 0xC0..<0xE0: 2
        case 0xE0..<0xF0: 3
        case 0xF0...: 4
        default: 1
        }
    }
}
