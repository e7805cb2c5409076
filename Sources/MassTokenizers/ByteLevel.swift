/// Hugging Face `ByteLevel` (GPT-2's byte-level BPE front and back end), as pre-tokenizer, decoder and offset
/// trimmer: with `addPrefixSpace` a text gets a space in front unless it starts with one; the GPT-2 pattern splits
/// it into words (`useRegex`); each word's UTF-8 bytes become GPT-2's byte characters, every one aligned to the
/// character it came from. Decoding maps the characters back to bytes and reads them as UTF-8 (invalid sequences
/// replaced). Trimming moves a token's offsets past the spaces it starts or ends with.
public struct ByteLevel: Sendable {
    public let addPrefixSpace: Bool
    public let useRegex: Bool

    public init(addPrefixSpace: Bool = true, useRegex: Bool = true) {
        self.addPrefixSpace = addPrefixSpace
        self.useRegex = useRegex
    }

    static func parse(_ json: [String: Any]) -> ByteLevel {
        ByteLevel(
            addPrefixSpace: json["add_prefix_space"] as? Bool ?? true, useRegex: json["use_regex"] as? Bool ?? true)
    }

    /// GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the others to U+0100 onwards.
    public static let byteScalars: [Unicode.Scalar] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var scalars = printable.map { Unicode.Scalar(UInt8($0)) }
        var next: UInt32 = 256
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            scalars.append(Unicode.Scalar(next)!)
            next += 1
        }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        for (b, c) in zip(printable, scalars) { table[b] = c }
        return table
    }()

    /// The byte each byte character stands for.
    static let byteOfScalar: [Unicode.Scalar: UInt8] = Dictionary(
        uniqueKeysWithValues: byteScalars.enumerated().map { ($1, UInt8($0)) })

    /// The words of a text (a stretch between added tokens), each in byte characters with, per byte character,
    /// the character of `text` it came from.
    func split(_ text: NormalizedText) -> [(bytes: [Unicode.Scalar], source: NormalizedText, origin: [Int])] {
        var text = text
        if addPrefixSpace && text.scalars.first != " " { text.prepend(" ") }
        let ranges = useRegex ? Self.gpt2Words(text.scalars) : [0..<text.scalars.count]
        return ranges.map { range in
            var bytes: [Unicode.Scalar] = []
            var origin: [Int] = []
            for i in range {
                for byte in String(text.scalars[i]).utf8 {
                    bytes.append(Self.byteScalars[Int(byte)])
                    origin.append(i - range.lowerBound)
                }
            }
            return (bytes, text.slice(range), origin)
        }
    }

    /// The text of byte-character tokens: their bytes read as UTF-8, invalid sequences replaced (a token with a
    /// character outside the table contributes its own UTF-8, as the reference does).
    static func decode(_ tokens: [String]) -> String {
        var bytes: [UInt8] = []
        for token in tokens {
            let mapped = token.unicodeScalars.compactMap { byteOfScalar[$0] }
            if mapped.count == token.unicodeScalars.count {
                bytes += mapped
            } else {
                bytes += token.utf8
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The reference's `process_offsets`: a token's offsets lose its leading and trailing spaces (Ġ or
    /// whitespace), except the one space `addPrefixSpace` put before the first token.
    static func trim(_ pieces: inout Pieces, addPrefixSpace: Bool) {
        guard var offsets = pieces.offsets else { return }
        let space = byteScalars[0x20]
        func isSpace(_ c: Unicode.Scalar) -> Bool { c == space || c.properties.isWhitespace }
        for (i, token) in pieces.tokens.enumerated() {
            let scalars = Array(token.unicodeScalars)
            var leading = scalars.prefix(while: isSpace).count
            let trailing = scalars.reversed().prefix(while: isSpace).count
            var (start, end) = offsets[i]
            if leading > 0 {
                if (i == 0 || start == 0) && addPrefixSpace && leading == 1 { leading = 0 }
                start = min(start + leading, end)
            }
            if trailing > 0 && end >= trailing { end = max(end - trailing, start) }
            offsets[i] = (start, end)
        }
        pieces.offsets = offsets
    }

    /// GPT-2's pre-tokenization pattern
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, as a scanner over characters:
    /// the ranges of the words, covering the text.
    static func gpt2Words(_ s: [Unicode.Scalar]) -> [Range<Int>] {
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
        func run(from start: Int, while test: (Unicode.Scalar) -> Bool) -> Int {
            var k = start
            while k < s.count && test(s[k]) { k += 1 }
            return k
        }
        let contractions: [[Unicode.Scalar]] = ["s", "t", "re", "ve", "m", "ll", "d"].map { Array($0.unicodeScalars) }
        var words: [Range<Int>] = []
        var i = 0
        while i < s.count {
            if s[i] == "'", let suffix = contractions.first(where: { s[(i + 1)...].starts(with: $0) }) {
                words.append(i..<(i + 1 + suffix.count))
                i += 1 + suffix.count
                continue
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
            words.append(i..<end)
            i = end
        }
        return words
    }
}
