/// Hugging Face `BertPreTokenizer`: splits on whitespace (dropped) and isolates every punctuation character
/// (ASCII punctuation, or Unicode category P*) as a word of its own.
public struct BertPreTokenizer: Sendable {
    public init() {}

    public func split(_ text: String) -> [Substring.UnicodeScalarView] {
        var words: [Substring.UnicodeScalarView] = []
        let scalars = text.unicodeScalars
        var start: String.UnicodeScalarView.Index? = nil
        var i = scalars.startIndex
        while i < scalars.endIndex {
            let s = scalars[i]
            if BertNormalizer.isWhitespace(s) {
                if let st = start { words.append(scalars[st..<i]) }
                start = nil
            } else if Self.isPunctuation(s) {
                if let st = start { words.append(scalars[st..<i]) }
                start = nil
                words.append(scalars[i...i])
            } else if start == nil {
                start = i
            }
            i = scalars.index(after: i)
        }
        if let st = start { words.append(scalars[st..<scalars.endIndex]) }
        return words
    }

    /// The same split of a text whose alignments are kept.
    func split(_ text: NormalizedText) -> [NormalizedText] {
        var words: [NormalizedText] = []
        var start: Int? = nil
        for (i, s) in text.scalars.enumerated() {
            if BertNormalizer.isWhitespace(s) {
                if let st = start { words.append(text.slice(st..<i)) }
                start = nil
            } else if Self.isPunctuation(s) {
                if let st = start { words.append(text.slice(st..<i)) }
                start = nil
                words.append(text.slice(i..<(i + 1)))
            } else if start == nil {
                start = i
            }
        }
        if let st = start { words.append(text.slice(st..<text.scalars.count)) }
        return words
    }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }
}
