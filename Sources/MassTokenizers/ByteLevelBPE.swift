public import Foundation

/// GPT-2's byte-level BPE encoder as Whisper's `tokenizer.json` defines it (`model.type` BPE,
/// `pre_tokenizer` ByteLevel with the GPT-2 split pattern, no normalizer): the text is split into words,
/// each word's UTF-8 bytes become GPT-2's byte characters, and adjacent symbols are merged lowest rank first.
/// Used for initial prompts; special tokens are never produced from text.
public struct ByteLevelBPE: Sendable {
    private let vocabulary: [String: Int]
    private let ranks: [String: Int]  // "left right" → merge rank
    private let byteCharacters: [Character]

    public init(contentsOf url: URL) throws {
        let file = url.path
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        } catch {
            throw TokenizerError(.malformed, file: file, "cannot be read as JSON (\(error.localizedDescription))")
        }
        guard let model = (parsed as? [String: Any])?["model"] as? [String: Any] else {
            throw TokenizerError(.malformed, file: file, "missing 'model' object")
        }
        guard model["type"] as? String == "BPE" else {
            throw TokenizerError(
                .unsupported, file: file, "model type '\(model["type"] as? String ?? "?")' is not BPE")
        }
        guard let vocab = model["vocab"] as? [String: Int], let merges = model["merges"] as? [Any] else {
            throw TokenizerError(.malformed, file: file, "model.vocab or model.merges is missing or malformed")
        }
        var ranks: [String: Int] = [:]
        ranks.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            // Older files write "a b", newer ones ["a", "b"].
            if let pair = merge as? String {
                ranks[pair] = rank
            } else if let pair = merge as? [String], pair.count == 2 {
                ranks[pair[0] + " " + pair[1]] = rank
            } else {
                throw TokenizerError(.malformed, file: file, "merge \(rank) is neither \"a b\" nor [a, b]")
            }
        }
        self.vocabulary = vocab
        self.ranks = ranks
        byteCharacters = WhisperTokenizer.byteCharacters()
    }

    /// The token ids of `text`.
    public func encode(_ text: String) -> [Int] {
        Self.split(text).flatMap { word -> [Int] in
            let symbols = merge(word.utf8.map { String(byteCharacters[Int($0)]) })
            // Every single byte character is in the vocabulary, so a merged symbol always is too.
            return symbols.compactMap { vocabulary[$0] }
        }
    }

    /// Repeatedly merges the adjacent pair of lowest rank (every occurrence, left to right).
    private func merge(_ start: [String]) -> [String] {
        var symbols = start
        while symbols.count > 1 {
            var best: (rank: Int, index: Int)? = nil
            for i in 0..<(symbols.count - 1) {
                if let rank = ranks[symbols[i] + " " + symbols[i + 1]], rank < (best?.rank ?? Int.max) {
                    best = (rank, i)
                }
            }
            guard let best else { break }
            let left = symbols[best.index]
            let right = symbols[best.index + 1]
            var merged: [String] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count && symbols[i] == left && symbols[i + 1] == right {
                    merged.append(left + right)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        return symbols
    }

    /// GPT-2's pre-tokenization pattern
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, as a scanner over scalars.
    static func split(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        func isLetter(_ c: Unicode.Scalar) -> Bool {
            switch c.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
            default: return false
            }
        }
        func isNumber(_ c: Unicode.Scalar) -> Bool {
            switch c.properties.generalCategory {
            case .decimalNumber, .letterNumber, .otherNumber: return true
            default: return false
            }
        }
        func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }
        func isOther(_ c: Unicode.Scalar) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }
        var words: [String] = []
        func emit(_ range: Range<Int>) {
            var word = String.UnicodeScalarView()
            word.append(contentsOf: s[range])
            words.append(String(word))
        }
        func run(from start: Int, while test: (Unicode.Scalar) -> Bool) -> Int {
            var k = start
            while k < s.count && test(s[k]) { k += 1 }
            return k
        }
        var i = 0
        while i < s.count {
            if s[i] == "'" {
                let rest = String(String.UnicodeScalarView(s[(i + 1)..<min(s.count, i + 3)]))
                if let suffix = ["s", "t", "re", "ve", "m", "ll", "d"].first(where: { rest.hasPrefix($0) }) {
                    emit(i..<(i + 1 + suffix.unicodeScalars.count))
                    i += 1 + suffix.unicodeScalars.count
                    continue
                }
            }
            // An optional single space joins the letters, digits or symbols that follow it.
            let j = s[i] == " " && i + 1 < s.count && !isSpace(s[i + 1]) ? i + 1 : i
            let c = s[j]
            let end: Int
            if isLetter(c) {
                end = run(from: j, while: isLetter)
            } else if isNumber(c) {
                end = run(from: j, while: isNumber)
            } else if isOther(c) {
                end = run(from: j, while: isOther)
            } else {
                // Whitespace: all of it, but the last one when a word follows (that one starts the word).
                let k = run(from: i, while: isSpace)
                end = k < s.count && k - i > 1 ? k - 1 : k
            }
            emit(i..<end)
            i = end
        }
        return words
    }
}
