import Foundation

/// Hugging Face `BPE` model (byte-pair encoding, GPT-2's and RoBERTa's with the ByteLevel pre-tokenizer): a word
/// starts as its characters, and the adjacent pair with the lowest merge rank is merged (the leftmost on ties)
/// until no pair has a merge, as the reference's priority queue does. A character outside the vocabulary becomes
/// its `<0xXX>` byte pieces with `byte_fallback`, else the unknown token (fused with unknown neighbours when
/// `fuse_unk`), else it is dropped; `ignore_merges` takes a whole word that is itself in the vocabulary as is.
public struct BPE: Sendable {
    public let vocabulary: [String: Int32]
    let tokens: [String]
    /// (left id, right id) → (rank, id of the merged token).
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    let unknownId: Int32?
    let fuseUnknown: Bool
    let continuingSubwordPrefix: String?
    let endOfWordSuffix: String?
    let ignoreMerges: Bool
    let byteFallback: Bool

    static func parse(_ json: [String: Any], file: String) throws(TokenizerError) -> BPE {
        guard let vocab = json["vocab"] as? [String: Any], let mergeList = json["merges"] as? [Any] else {
            throw TokenizerError(.malformed, file: file, "BPE needs model.vocab (token → id) and model.merges")
        }
        if let dropout = (json["dropout"] as? NSNumber)?.doubleValue, dropout != 0 {
            throw TokenizerError(.unsupported, file: file, "BPE dropout \(dropout) is not supported (it is random)")
        }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(vocab.count)
        var size = 0
        for (token, value) in vocab {
            guard let id = value as? Int, id >= 0, id < Int(Int32.max) else {
                throw TokenizerError(.malformed, file: file, "model.vocab['\(token)'] is not a non-negative integer id")
            }
            vocabulary[token] = Int32(id)
            size = max(size, id + 1)
        }
        var tokens = [String](repeating: "", count: size)
        for (token, id) in vocabulary { tokens[Int(id)] = token }
        let prefix = json["continuing_subword_prefix"] as? String
        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        merges.reserveCapacity(mergeList.count)
        for (rank, merge) in mergeList.enumerated() {
            // Older files write "a b", newer ones ["a", "b"].
            let pair: [String]
            if let text = merge as? String {
                pair = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else {
                pair = merge as? [String] ?? []
            }
            guard pair.count == 2, let left = vocabulary[pair[0]], let right = vocabulary[pair[1]] else {
                throw TokenizerError(
                    .malformed, file: file, "model.merges[\(rank)] is not a pair of vocabulary tokens: \(merge)")
            }
            var second = Substring(pair[1])
            if let prefix, second.hasPrefix(prefix) { second = second.dropFirst(prefix.count) }
            guard let merged = vocabulary[pair[0] + second] else {
                throw TokenizerError(
                    .malformed, file: file, "model.merges[\(rank)]: '\(pair[0])\(second)' is not in the vocabulary")
            }
            merges[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))] = (Int32(rank), merged)
        }
        var unknownId: Int32? = nil
        if let unk = json["unk_token"] as? String {
            guard let id = vocabulary[unk] else {
                throw TokenizerError(.malformed, file: file, "BPE unk_token '\(unk)' is not in the vocabulary")
            }
            unknownId = id
        }
        return BPE(
            vocabulary: vocabulary, tokens: tokens, merges: merges, unknownId: unknownId,
            fuseUnknown: json["fuse_unk"] as? Bool ?? false,
            continuingSubwordPrefix: (json["continuing_subword_prefix"] as? String).flatMap { $0.isEmpty ? nil : $0 },
            endOfWordSuffix: (json["end_of_word_suffix"] as? String).flatMap { $0.isEmpty ? nil : $0 },
            ignoreMerges: json["ignore_merges"] as? Bool ?? false, byteFallback: json["byte_fallback"] as? Bool ?? false
        )
    }

    public func token(for id: Int32) -> String? {
        id >= 0 && Int(id) < tokens.count && !tokens[Int(id)].isEmpty ? tokens[Int(id)] : nil
    }

    /// One piece of a word during merging: its id, the characters it covers, and its neighbours (−1: none).
    private struct Symbol {
        var id: Int32
        var start: Int
        var end: Int
        var previous: Int
        var next: Int
    }

    /// The tokens of one word (its characters), each with the range of characters it covers.
    func tokenize(_ word: [Unicode.Scalar]) -> [(id: Int32, range: Range<Int>)] {
        guard !word.isEmpty else { return [] }
        if ignoreMerges, let id = vocabulary[Self.string(word[...])] { return [(id, 0..<word.count)] }
        var symbols: [Symbol] = []
        symbols.reserveCapacity(word.count)
        var unknown: (id: Int32, start: Int)? = nil
        func add(_ id: Int32, _ start: Int, _ end: Int) {
            symbols.append(Symbol(id: id, start: start, end: end, previous: symbols.count - 1, next: symbols.count + 1))
        }
        for i in word.indices {
            var piece = String(word[i])
            if i > 0, let prefix = continuingSubwordPrefix { piece = prefix + piece }
            if i == word.count - 1, let suffix = endOfWordSuffix { piece += suffix }
            if let id = vocabulary[piece] {
                if let u = unknown {
                    add(u.id, u.start, i)
                    unknown = nil
                }
                add(id, i, i + 1)
                continue
            }
            if byteFallback {
                let bytes = piece.utf8.map { vocabulary["<0x" + Self.hex($0) + ">"] }
                if bytes.allSatisfy({ $0 != nil }) {
                    if let u = unknown {
                        add(u.id, u.start, i)
                        unknown = nil
                    }
                    // Each byte piece is given the whole character as its offsets.
                    for id in bytes { add(id!, i, i + 1) }
                    continue
                }
            }
            guard let unknownId else { continue }
            if let u = unknown {
                if fuseUnknown { continue }
                add(u.id, u.start, i)
            }
            unknown = (unknownId, i)
        }
        if let u = unknown { add(u.id, u.start, word.count) }
        guard !symbols.isEmpty else { return [] }
        symbols[symbols.count - 1].next = -1
        merge(&symbols)
        var out: [(id: Int32, range: Range<Int>)] = []
        var at = 0
        while at != -1 {
            out.append((symbols[at].id, symbols[at].start..<symbols[at].end))
            at = symbols[at].next
        }
        return out
    }

    /// Merges adjacent pairs lowest rank first, leftmost on ties: a min-heap of candidate merges keyed by
    /// (rank, position), where an entry whose pair has changed since it was pushed is skipped.
    private func merge(_ symbols: inout [Symbol]) {
        var heap = MergeHeap()
        func candidate(_ left: Int) {
            let right = symbols[left].next
            guard right != -1 else { return }
            if let m = merges[UInt64(UInt32(symbols[left].id)) << 32 | UInt64(UInt32(symbols[right].id))] {
                heap.push((m.rank, left, m.id))
            }
        }
        for i in 0..<(symbols.count - 1) { candidate(i) }
        while let (rank, left, id) = heap.pop() {
            let right = symbols[left].next
            // Removed symbols have start == end; a stale entry no longer names this pair's merge.
            guard symbols[left].start < symbols[left].end, right != -1,
                let m = merges[UInt64(UInt32(symbols[left].id)) << 32 | UInt64(UInt32(symbols[right].id))],
                m.rank == rank, m.id == id
            else { continue }
            symbols[left].id = id
            symbols[left].end = symbols[right].end
            symbols[left].next = symbols[right].next
            symbols[right].start = symbols[right].end
            if symbols[left].next != -1 { symbols[symbols[left].next].previous = left }
            if symbols[left].previous != -1 { candidate(symbols[left].previous) }
            candidate(left)
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }

    static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}

/// A binary min-heap of pending merges ordered by (rank, position).
private struct MergeHeap {
    private var items: [(rank: Int32, position: Int, id: Int32)] = []

    private static func less(_ a: (rank: Int32, position: Int, id: Int32), _ b: (rank: Int32, position: Int, id: Int32))
        -> Bool
    { a.rank != b.rank ? a.rank < b.rank : a.position < b.position }

    mutating func push(_ item: (rank: Int32, position: Int, id: Int32)) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (rank: Int32, position: Int, id: Int32)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < items.count && Self.less(items[left], items[smallest]) { smallest = left }
                if right < items.count && Self.less(items[right], items[smallest]) { smallest = right }
                guard smallest != parent else { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
