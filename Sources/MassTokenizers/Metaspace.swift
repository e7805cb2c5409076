/// Hugging Face `Metaspace` (SentencePiece's word boundary marker), as pre-tokenizer and decoder: spaces become
/// `replacement` (▁), the text gets one in front unless it starts with one (`prepend_scheme` "always", or
/// "first" for the first part of the input only; `add_prefix_space: false` means "never"), and with `split` the
/// text is cut before every ▁. Decoding turns ▁ back into spaces and drops the first token's leading one.
public struct Metaspace: Sendable {
    public enum PrependScheme: String, Sendable {
        case always, first, never
    }

    public let replacement: Unicode.Scalar
    public let prependScheme: PrependScheme
    public let split: Bool

    public init(replacement: Unicode.Scalar = "\u{2581}", prependScheme: PrependScheme = .always, split: Bool = true) {
        self.replacement = replacement
        self.prependScheme = prependScheme
        self.split = split
    }

    static func parse(_ json: [String: Any], file: String) throws(TokenizerError) -> Metaspace {
        guard let text = json["replacement"] as? String, text.unicodeScalars.count == 1 else {
            throw TokenizerError(.malformed, file: file, "Metaspace.replacement must be one character")
        }
        var scheme = PrependScheme.always
        if let name = json["prepend_scheme"] as? String {
            guard let parsed = PrependScheme(rawValue: name) else {
                throw TokenizerError(.malformed, file: file, "Metaspace.prepend_scheme '\(name)' is unknown")
            }
            scheme = parsed
        }
        if json["add_prefix_space"] as? Bool == false {
            guard json["prepend_scheme"] == nil || scheme == .never else {
                throw TokenizerError(.malformed, file: file, "add_prefix_space does not match prepend_scheme")
            }
            scheme = .never
        }
        return Metaspace(
            replacement: text.unicodeScalars.first!, prependScheme: scheme, split: json["split"] as? Bool ?? true)
    }

    /// The words of one part of the input (`first`: whether it starts the input).
    func split(_ text: NormalizedText, first: Bool) -> [NormalizedText] {
        var text = text
        let spaces = text.scalars.indices.filter { text.scalars[$0] == " " }
        text.replace(spaces.map { $0..<($0 + 1) }, with: [replacement])
        let prepend =
            switch prependScheme {
            case .always: true
            case .first: first
            case .never: false
            }
        if prepend, text.scalars.first != replacement { text.prepend(replacement) }
        guard split else { return text.scalars.isEmpty ? [] : [text] }
        var words: [NormalizedText] = []
        var start = 0
        for i in text.scalars.indices where text.scalars[i] == replacement && i > start {
            words.append(text.slice(start..<i))
            start = i
        }
        if start < text.scalars.count { words.append(text.slice(start..<text.scalars.count)) }
        return words
    }

    /// The text of decoded tokens: ▁ as spaces, the first token's leading ▁ dropped when one is prepended.
    func decode(_ tokens: [String]) -> String {
        var out = String.UnicodeScalarView()
        for (i, token) in tokens.enumerated() {
            for s in token.unicodeScalars {
                if s == replacement {
                    if i == 0 && prependScheme != .never { continue }
                    out.append(" ")
                } else {
                    out.append(s)
                }
            }
        }
        return String(out)
    }
}
