import Foundation

/// Hugging Face `BertNormalizer` (tokenizers `normalizers/bert.rs`), in its order:
/// clean text → space around CJK ideographs → strip accents (NFD, drop Mn) → lowercase (per character, full
/// Unicode mapping). `strip_accents` unset follows `lowercase`, as in the reference.
public struct BertNormalizer: Sendable {
    public var cleanText: Bool
    public var handleChineseChars: Bool
    public var stripAccents: Bool
    public var lowercase: Bool

    public init(
        cleanText: Bool = true, handleChineseChars: Bool = true, stripAccents: Bool? = nil, lowercase: Bool = true
    ) {
        self.cleanText = cleanText
        self.handleChineseChars = handleChineseChars
        self.stripAccents = stripAccents ?? lowercase
        self.lowercase = lowercase
    }

    public func normalize(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if cleanText {
                if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
                if Self.isWhitespace(s) {
                    scalars.append(" ")
                    continue
                }
            }
            if handleChineseChars && Self.isChineseChar(s) {
                scalars.append(" ")
                scalars.append(s)
                scalars.append(" ")
            } else {
                scalars.append(s)
            }
        }
        var result = String(scalars)
        if stripAccents {
            // Fast path: ASCII has nothing to decompose.
            if !result.unicodeScalars.allSatisfy(\.isASCII) {
                var kept = String.UnicodeScalarView()
                for s in result.decomposedStringWithCanonicalMapping.unicodeScalars
                where s.properties.generalCategory != .nonspacingMark {
                    kept.append(s)
                }
                result = String(kept)
            }
        }
        if lowercase {
            var lowered = String.UnicodeScalarView()
            for s in result.unicodeScalars {
                if s.isASCII {
                    lowered.append(s.value >= 65 && s.value <= 90 ? Unicode.Scalar(s.value + 32)! : s)
                } else {
                    lowered.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                }
            }
            result = String(lowered)
        }
        return result
    }

    /// The same steps on a text whose alignments are kept: every character maps to those it becomes (accents
    /// decomposed per character, then dropped).
    public func normalize(_ text: inout NormalizedText) {
        text.map { s in
            if cleanText {
                if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { return [] }
                if Self.isWhitespace(s) { return [" "] }
            }
            if handleChineseChars && Self.isChineseChar(s) { return [" ", s, " "] }
            return nil
        }
        if stripAccents {
            text.map { s in
                s.isASCII
                    ? nil
                    : String(s).decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                        $0.properties.generalCategory != .nonspacingMark
                    }
            }
        }
        if lowercase {
            text.map { s in
                s.isASCII
                    ? (s.value >= 65 && s.value <= 90 ? [Unicode.Scalar(s.value + 32)!] : nil)
                    : Array(s.properties.lowercaseMapping.unicodeScalars)
            }
        }
    }

    /// \t \n \r count as whitespace, not control (as in the reference).
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
    }

    /// Unicode "Other" categories (Cc, Cf, Cn, Co, Cs), except \t \n \r.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT spaces out (not kana, not hangul).
    static func isChineseChar(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
