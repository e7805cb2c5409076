import Foundation

/// A `tokenizer.json`'s added tokens ("[CLS]", "<mask>", "<|endoftext|>", ...), found in the text before the model
/// sees it, as the reference's `AddedVocabulary` does: tokens with `normalized: false` in the raw text, the others
/// (their content normalized too) in the normalized text; leftmost match, the longest at a position; a
/// `single_word` token only between non-word characters; `lstrip`/`rstrip` take the spaces on their side into the
/// token (its text and offsets).
struct AddedVocabulary: Sendable {
    struct Token: Sendable {
        var content: [Unicode.Scalar]
        var id: Int32
        var singleWord = false
        var lstrip = false
        var rstrip = false
    }

    /// Finds one group of tokens (raw or normalized) in a text.
    struct Matcher: Sendable {
        /// Tokens by their first character, longest first.
        private let byFirst: [Unicode.Scalar: [Token]]

        init(_ tokens: [Token]) {
            byFirst = Dictionary(grouping: tokens.filter { !$0.content.isEmpty }, by: { $0.content[0] })
                .mapValues { $0.sorted { $0.content.count > $1.content.count } }
        }

        var isEmpty: Bool { byFirst.isEmpty }

        /// Whether `text` holds a character some token starts with (else nothing can match).
        func mayMatch(_ text: String) -> Bool {
            !byFirst.isEmpty && text.unicodeScalars.contains { byFirst[$0] != nil }
        }

        /// The stretches of `s`: text between tokens, and tokens with the range they take (spaces included).
        func split(_ s: [Unicode.Scalar]) -> [(range: Range<Int>, id: Int32?)] {
            guard !byFirst.isEmpty else { return [(0..<s.count, nil)] }
            var parts: [(range: Range<Int>, id: Int32?)] = []
            var textStart = 0
            var i = 0
            while i < s.count {
                guard let candidates = byFirst[s[i]],
                    let token = candidates.first(where: { s[i...].starts(with: $0.content) })
                else {
                    i += 1
                    continue
                }
                var start = i
                var stop = i + token.content.count
                i = stop
                if token.singleWord
                    && ((start > 0 && Self.isWord(s[start - 1])) || (stop < s.count && Self.isWord(s[stop])))
                {
                    continue
                }
                if token.lstrip {
                    while start > textStart && s[start - 1].properties.isWhitespace { start -= 1 }
                }
                if token.rstrip {
                    while stop < s.count && s[stop].properties.isWhitespace { stop += 1 }
                }
                if textStart < start { parts.append((textStart..<start, nil)) }
                parts.append((start..<stop, token.id))
                textStart = stop
                i = max(i, stop)
            }
            if textStart < s.count { parts.append((textStart..<s.count, nil)) }
            return parts
        }

        /// `split` on a string: each stretch's text, and the token's id for a token.
        func parts(_ text: String) -> [(text: String, id: Int32?)] {
            let scalars = Array(text.unicodeScalars)
            return split(scalars).map { part in
                var view = String.UnicodeScalarView()
                view.append(contentsOf: scalars[part.range])
                return (String(view), part.id)
            }
        }

        /// The regular-expression class `\w`: letters, marks, digits, connector punctuation, joiners.
        static func isWord(_ c: Unicode.Scalar) -> Bool {
            if c.properties.isAlphabetic || c.properties.isJoinControl { return true }
            switch c.properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
            default: return false
            }
        }
    }

    let raw: Matcher
    let normalized: Matcher
    /// Every added token by id, and whether it is special (left out of decoded text).
    let byId: [Int32: (content: String, special: Bool)]

    /// Reads `added_tokens`; `normalize` gives a normalized token's content as the text around it will be.
    static func parse(
        _ json: Any?, file: String, normalize: (String) -> String
    ) throws(TokenizerError) -> AddedVocabulary {
        guard let list = json as? [[String: Any]] ?? (json == nil || json is NSNull ? [] : nil) else {
            throw TokenizerError(.malformed, file: file, "'added_tokens' must be a list of objects")
        }
        var raw: [Token] = []
        var normalized: [Token] = []
        var byId: [Int32: (content: String, special: Bool)] = [:]
        for (i, entry) in list.enumerated() {
            guard let content = entry["content"] as? String, let id = entry["id"] as? Int, id >= 0,
                id <= Int(Int32.max)
            else { throw TokenizerError(.malformed, file: file, "added_tokens[\(i)] needs content and a valid id") }
            let special = entry["special"] as? Bool ?? false
            byId[Int32(id)] = (content, special)
            var token = Token(
                content: Array(content.unicodeScalars), id: Int32(id),
                singleWord: entry["single_word"] as? Bool ?? false,
                lstrip: entry["lstrip"] as? Bool ?? false, rstrip: entry["rstrip"] as? Bool ?? false)
            if entry["normalized"] as? Bool ?? !special {
                token.content = Array(normalize(content).unicodeScalars)
                normalized.append(token)
            } else {
                raw.append(token)
            }
        }
        return AddedVocabulary(raw: Matcher(raw), normalized: Matcher(normalized), byId: byId)
    }
}
