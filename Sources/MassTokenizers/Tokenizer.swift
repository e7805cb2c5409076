import Foundation

/// The result of tokenizing one text.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int32]
    public var tokens: [String]
    /// Token count before truncation (special tokens included).
    public var untruncatedCount: Int
    /// The segment of each token (0 for a single text; 0 and 1 for a pair, as the pair template says).
    public var typeIds: [Int32]
    /// Each token's [start, end) in its text, in characters, when asked for (special tokens [0, 0]).
    public var offsets: [[Int]]? = nil
}

/// A Hugging Face `tokenizer.json` pipeline: added (special) tokens matched verbatim, then normalizer →
/// pre-tokenizer → model → post-processor, and a decoder back to text.
///
/// Supported: normalizers `BertNormalizer`, `Precompiled` (SentencePiece's charsmap), `Replace` and `Sequence` of
/// them; pre-tokenizers `BertPreTokenizer` and `Metaspace`; models `WordPiece` and `Unigram`; post-processors
/// `TemplateProcessing`, `BertProcessing` and `RobertaProcessing`; decoders `WordPiece` and `Metaspace`. Anything
/// else is refused at load with an error naming the component. The file's own `truncation`/`padding` settings
/// are ignored: the caller passes the model's maximum length (sentence-transformers does the same).
public struct Tokenizer: Sendable {
    enum Model: Sendable {
        case wordPiece(WordPiece)
        case unigram(Unigram)
    }
    enum PreTokenizer: Sendable {
        case bert
        case metaspace(Metaspace)
    }
    enum Normalizer: Sendable {
        case bert(BertNormalizer)
        case precompiled(PrecompiledCharsMap)
        /// Every match of a literal or a regular expression replaced by `content`.
        case replace(NSRegularExpression, content: String)
    }
    enum Decoder: Sendable {
        case wordPiece(prefix: String, cleanup: Bool)
        case metaspace(Metaspace)
    }

    let model: Model
    /// Decided once at load: the pipeline is BERT's, so plain encodes take the fast path.
    let bertPipeline: (normalizer: BertNormalizer?, wordPiece: WordPiece)?
    let normalizers: [Normalizer]
    let preTokenizer: PreTokenizer
    let decoder: Decoder?
    public let postProcessor: PostProcessor
    /// Added tokens matched in the raw text before normalization, longest first.
    public let addedTokens: [(content: String, id: Int32)]
    /// Added tokens by id, and whether each is special (left out of decoded text).
    let addedById: [Int32: (content: String, special: Bool)]

    public init(contentsOf url: URL) throws {
        let file = url.path
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError(.fileUnreadable, file: file, "cannot read: \(error.localizedDescription)")
        }
        try self.init(data: data, file: file)
    }

    public init(data: Data, file: String = "tokenizer.json") throws(TokenizerError) {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TokenizerError(.malformed, file: file, "not valid JSON (\(error.localizedDescription))")
        }
        guard let json = parsed as? [String: Any] else {
            throw TokenizerError(.malformed, file: file, "top level is not a JSON object")
        }
        guard let modelJSON = json["model"] as? [String: Any] else {
            throw TokenizerError(.malformed, file: file, "missing 'model' object")
        }
        var vocabulary: [String: Int32] = [:]
        switch modelJSON["type"] as? String ?? "<missing>" {
        case "WordPiece":
            guard let vocabJSON = modelJSON["vocab"] as? [String: Any] else {
                throw TokenizerError(.malformed, file: file, "model.vocab must be an object of token → id")
            }
            vocabulary.reserveCapacity(vocabJSON.count)
            for (token, value) in vocabJSON {
                guard let id = value as? Int, id >= 0, id <= Int(Int32.max) else {
                    throw TokenizerError(
                        .malformed, file: file, "model.vocab['\(token)'] is not a non-negative integer id")
                }
                // Swift compares strings by canonical equivalence; keep the lowest id if two keys are equivalent.
                if let existing = vocabulary[token], existing < Int32(id) { continue }
                vocabulary[token] = Int32(id)
            }
            model = .wordPiece(
                try WordPiece(
                    vocabulary: vocabulary,
                    unknownToken: modelJSON["unk_token"] as? String ?? "[UNK]",
                    continuingSubwordPrefix: modelJSON["continuing_subword_prefix"] as? String ?? "##",
                    maxInputCharsPerWord: modelJSON["max_input_chars_per_word"] as? Int ?? 100))
        case "Unigram":
            guard let list = modelJSON["vocab"] as? [[Any]] else {
                throw TokenizerError(.malformed, file: file, "model.vocab must be a list of [piece, score]")
            }
            var pieces: [(piece: String, score: Double)] = []
            pieces.reserveCapacity(list.count)
            for (i, entry) in list.enumerated() {
                guard entry.count == 2, let piece = entry[0] as? String,
                    let score = (entry[1] as? NSNumber)?.doubleValue
                else { throw TokenizerError(.malformed, file: file, "model.vocab[\(i)] is not [piece, score]") }
                pieces.append((piece, score))
            }
            guard modelJSON["byte_fallback"] as? Bool != true else {
                throw TokenizerError(.unsupported, file: file, "Unigram byte_fallback is not supported")
            }
            guard let unk = modelJSON["unk_id"] as? Int else {
                throw TokenizerError(.unsupported, file: file, "a Unigram model without unk_id is not supported")
            }
            model = .unigram(try Unigram(pieces: pieces, unknownId: unk, file: file))
        case let other:
            throw TokenizerError(
                .unsupported, file: file, "model type '\(other)' is not supported (supported: WordPiece, Unigram)")
        }

        normalizers = try Self.parseNormalizer(json["normalizer"], file: file)
        let pre = json["pre_tokenizer"] as? [String: Any]
        switch pre?["type"] as? String ?? "<missing>" {
        case "BertPreTokenizer": preTokenizer = .bert
        case "Metaspace": preTokenizer = .metaspace(try Metaspace.parse(pre!, file: file))
        case let other:
            throw TokenizerError(
                .unsupported, file: file,
                "pre_tokenizer type '\(other)' is not supported (supported: BertPreTokenizer, Metaspace)")
        }
        switch json["decoder"] {
        case nil, is NSNull: decoder = nil
        case let d as [String: Any] where d["type"] as? String == "WordPiece":
            decoder = .wordPiece(prefix: d["prefix"] as? String ?? "##", cleanup: d["cleanup"] as? Bool ?? true)
        case let d as [String: Any] where d["type"] as? String == "Metaspace":
            decoder = .metaspace(try Metaspace.parse(d, file: file))
        case let d as [String: Any]:
            throw TokenizerError(
                .unsupported, file: file,
                "decoder type '\(d["type"] as? String ?? "<missing>")' is not supported (supported: WordPiece, Metaspace)"
            )
        default:
            throw TokenizerError(.malformed, file: file, "'decoder' must be an object or null")
        }
        postProcessor = try PostProcessor.parse(
            json["post_processor"] as? [String: Any], vocabulary: vocabulary, file: file)

        var added: [(String, Int32)] = []
        var byId: [Int32: (content: String, special: Bool)] = [:]
        for entry in json["added_tokens"] as? [[String: Any]] ?? [] {
            if let content = entry["content"] as? String, let id = entry["id"] as? Int, !content.isEmpty {
                added.append((content, Int32(id)))
                byId[Int32(id)] = (content, entry["special"] as? Bool ?? false)
            }
        }
        addedTokens = added.sorted { $0.0.utf8.count > $1.0.utf8.count }.map { (content: $0.0, id: $0.1) }
        addedById = byId
        bertPipeline = Self.bertPipeline(normalizers, preTokenizer, model)
    }

    private static func parseNormalizer(_ json: Any?, file: String) throws(TokenizerError) -> [Normalizer] {
        switch json {
        case nil, is NSNull:
            return []
        case let n as [String: Any]:
            switch n["type"] as? String ?? "<missing>" {
            case "BertNormalizer":
                return [
                    .bert(
                        BertNormalizer(
                            cleanText: n["clean_text"] as? Bool ?? true,
                            handleChineseChars: n["handle_chinese_chars"] as? Bool ?? true,
                            stripAccents: n["strip_accents"] as? Bool,
                            lowercase: n["lowercase"] as? Bool ?? true))
                ]
            case "Precompiled":
                guard let map = n["precompiled_charsmap"] as? String else {
                    throw TokenizerError(.malformed, file: file, "Precompiled needs precompiled_charsmap")
                }
                return [.precompiled(try PrecompiledCharsMap(base64: map, file: file))]
            case "Replace":
                let pattern = n["pattern"] as? [String: Any]
                let regex: NSRegularExpression?
                if let literal = pattern?["String"] as? String {
                    regex = try? NSRegularExpression(pattern: NSRegularExpression.escapedPattern(for: literal))
                } else if let expression = pattern?["Regex"] as? String {
                    regex = try? NSRegularExpression(pattern: expression)
                } else {
                    regex = nil
                }
                guard let regex, let content = n["content"] as? String else {
                    throw TokenizerError(
                        .malformed, file: file, "Replace needs a pattern (String or Regex that compiles) and content")
                }
                return [.replace(regex, content: content)]
            case "Sequence":
                guard let list = n["normalizers"] as? [Any] else {
                    throw TokenizerError(.malformed, file: file, "Sequence needs a list of normalizers")
                }
                var all: [Normalizer] = []
                for item in list { all += try parseNormalizer(item, file: file) }
                return all
            case let other:
                throw TokenizerError(
                    .unsupported, file: file,
                    "normalizer type '\(other)' is not supported (supported: BertNormalizer, Precompiled, Replace, Sequence)"
                )
            }
        default:
            throw TokenizerError(.malformed, file: file, "'normalizer' must be an object or null")
        }
    }

    /// Tokenizes one text. `maxLength`, when given, caps the result including the post-processor's tokens
    /// (truncation keeps the start of the text). With `offsets`, each token's range in `text` (in characters, as
    /// the `tokenizers` library gives them; special tokens (0, 0)).
    /// Without `addSpecialTokens`, the post-processor's tokens are left out.
    public func encode(_ text: String, maxLength: Int? = nil, offsets: Bool = false, addSpecialTokens: Bool = true)
        -> Encoding
    {
        var piece = pieces(text, offsets: offsets)
        let added = addSpecialTokens ? postProcessor.addedCount : 0
        let untruncated = piece.ids.count + added
        if let maxLength {
            piece.keep(max(0, maxLength - added))
        }
        return postProcessor.apply(
            addSpecialTokens ? postProcessor.single : [.sequence(0, typeId: 0)], [piece], untruncated: untruncated)
    }

    /// Whether `id` is a special token: one the post-processor adds, or an added token marked special.
    public func isSpecial(_ id: Int32) -> Bool {
        if let added = addedById[id] { return added.special }
        return postProcessor.specialIds.contains(id)
    }

    /// Tokenizes a pair (a query and a passage) with the pair template, e.g. `[CLS] A [SEP] B [SEP]` with type ids
    /// 0 then 1. `maxLength` caps the result, special tokens included, as Hugging Face's `longest_first`
    /// truncation does: a side that fits in half of the room keeps its tokens and the other takes the rest; when
    /// neither fits, each gets half and the longer side one more when the room is odd. Throws when the tokenizer
    /// has no pair template. Offsets, when asked for, are within each text.
    public func encode(pair first: String, _ second: String, maxLength: Int? = nil, offsets: Bool = false)
        throws(TokenizerError) -> Encoding
    {
        guard let template = postProcessor.pair, let added = postProcessor.pairAddedCount else {
            throw TokenizerError(.unsupported, file: "tokenizer.json", "the post-processor defines no pair template")
        }
        var a = pieces(first, offsets: offsets)
        var b = pieces(second, offsets: offsets)
        let untruncated = a.ids.count + b.ids.count + added
        if let maxLength, a.ids.count + b.ids.count + added > maxLength {
            let (keepA, keepB) = Self.longestFirst(a.ids.count, b.ids.count, room: max(0, maxLength - added))
            a.keep(keepA)
            b.keep(keepB)
        }
        return postProcessor.apply(template, [a, b], untruncated: untruncated)
    }

    /// Hugging Face tokenizers' `LongestFirst` split of `room` tokens between sequences of `n1` and `n2` tokens.
    static func longestFirst(_ n1: Int, _ n2: Int, room: Int) -> (Int, Int) {
        let swap = n1 > n2
        let short = min(n1, n2)
        var keepShort = short
        var long = short > room ? short : max(short, room - short)
        if keepShort + long > room {
            keepShort = room / 2
            long = keepShort + room % 2
        }
        return swap ? (long, keepShort) : (keepShort, long)
    }

    /// The text of `ids`: special added tokens left out, the rest through the decoder (WordPiece joins "##"
    /// pieces and cleans spaces before punctuation; Metaspace turns ▁ into spaces); without a decoder, the tokens
    /// joined by spaces. Ids outside the vocabulary are refused.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = true) throws(TokenizerError) -> String {
        var tokens: [String] = []
        for id in ids {
            if let added = addedById[id] {
                if added.special && skipSpecialTokens { continue }
                tokens.append(added.content)
                continue
            }
            guard let token = token(for: id) else {
                throw TokenizerError(.malformed, file: "tokenizer.json", "token id \(id) is outside the vocabulary")
            }
            tokens.append(token)
        }
        switch decoder {
        case .wordPiece(let prefix, let cleanup):
            // By Unicode scalars: "##" before a combining mark is one Swift Character.
            let marker = Array(prefix.unicodeScalars)
            return tokens.enumerated().map { i, token in
                var t = token
                if i != 0 {
                    if t.unicodeScalars.starts(with: marker) {
                        var rest = String.UnicodeScalarView()
                        rest.append(contentsOf: t.unicodeScalars.dropFirst(marker.count))
                        t = String(rest)
                    } else {
                        t = " " + t
                    }
                }
                return cleanup ? Self.cleanup(t) : t
            }.joined()
        case .metaspace(let metaspace):
            return metaspace.decode(tokens)
        case nil:
            return tokens.joined(separator: " ")
        }
    }

    /// The model's piece for an id.
    public func token(for id: Int32) -> String? {
        switch model {
        case .wordPiece(let w): w.token(for: id)
        case .unigram(let u): id >= 0 && Int(id) < u.pieces.count ? u.pieces[Int(id)].piece : nil
        }
    }

    /// The WordPiece decoder's clean-up of spaces before punctuation and English contractions (the reference's).
    static func cleanup(_ text: String) -> String {
        var t = text
        for (dirty, clean) in [
            (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
        ] {
            t = t.replacingOccurrences(of: dirty, with: clean, options: .literal)
        }
        return t
    }

    /// The model's tokens for a text, before the post-processor.
    private func pieces(_ text: String, offsets: Bool) -> Pieces {
        var out = Pieces(offsets: offsets ? [] : nil)
        var first = true
        for segment in splitOnAddedTokens(text) {
            switch segment {
            case .added(let id, let content, let range):
                out.append(id, content, range)
            case .text(let piece, let start):
                if !offsets, let (bert, wordPiece) = bertPipeline {
                    // The fast path BERT models take for every request: no alignments kept.
                    let normalized = bert?.normalize(piece) ?? piece
                    for word in BertPreTokenizer().split(normalized) {
                        wordPiece.tokenize(word, ids: &out.ids, tokens: &out.tokens)
                    }
                } else {
                    tokenize(NormalizedText(piece), first: first, shift: start, into: &out)
                }
            }
            first = false
        }
        return out
    }

    /// BERT's pipeline (at most a BertNormalizer, BertPreTokenizer, WordPiece), whose fast path keeps no
    /// alignments; nil for any other.
    private static func bertPipeline(_ normalizers: [Normalizer], _ pre: PreTokenizer, _ model: Model)
        -> (normalizer: BertNormalizer?, wordPiece: WordPiece)?
    {
        guard case .wordPiece(let wordPiece) = model, case .bert = pre, normalizers.count <= 1 else { return nil }
        guard let only = normalizers.first else { return (nil, wordPiece) }
        if case .bert(let bert) = only { return (bert, wordPiece) }
        return nil
    }

    /// Normalizes, splits and tokenizes one stretch of text between added tokens, keeping offsets (moved by
    /// `shift`, where the stretch starts in the input).
    private func tokenize(_ text: NormalizedText, first: Bool, shift: Int, into out: inout Pieces) {
        var text = text
        for normalizer in normalizers {
            switch normalizer {
            case .bert(let bert): bert.normalize(&text)
            case .precompiled(let map): map.normalize(&text)
            case .replace(let regex, let content): Self.replace(&text, regex, content)
            }
        }
        let words: [NormalizedText]
        switch preTokenizer {
        case .bert: words = BertPreTokenizer().split(text)
        case .metaspace(let metaspace): words = metaspace.split(text, first: first)
        }
        for word in words {
            switch model {
            case .wordPiece(let wordPiece):
                for (id, token, range) in wordPiece.tokenize(word.scalars) {
                    let original = word.originalRange(range)
                    out.append(id, token, (original.start + shift, original.end + shift))
                }
            case .unigram(let unigram):
                var bytes: [UInt8] = []
                var charAt: [Int] = []  // byte index → character index
                for (i, scalar) in word.scalars.enumerated() {
                    for byte in String(scalar).utf8 {
                        bytes.append(byte)
                        charAt.append(i)
                    }
                }
                charAt.append(word.scalars.count)
                for (id, range) in unigram.segment(bytes) {
                    let chars = charAt[range.lowerBound]..<charAt[range.upperBound]
                    let original = word.originalRange(chars)
                    out.append(
                        id, String(decoding: bytes[range], as: UTF8.self),
                        (original.start + shift, original.end + shift))
                }
            }
        }
    }

    /// Replaces every match of `regex` in the text by `content`, keeping alignments as the reference does.
    private static func replace(_ text: inout NormalizedText, _ regex: NSRegularExpression, _ content: String) {
        let string = text.string
        let matches = regex.matches(in: string, range: NSRange(location: 0, length: (string as NSString).length))
        guard !matches.isEmpty else { return }
        // UTF-16 offset → character index.
        var scalarAt: [Int] = []
        for (i, scalar) in text.scalars.enumerated() {
            scalarAt += Array(repeating: i, count: scalar.utf16.count)
        }
        scalarAt.append(text.scalars.count)
        let ranges = matches.map { scalarAt[$0.range.location]..<scalarAt[$0.range.location + $0.range.length] }
        text.replace(ranges.filter { !$0.isEmpty }, with: Array(content.unicodeScalars))
    }

    private enum Segment {
        case text(String, start: Int)
        case added(Int32, String, (Int, Int))
    }

    /// Splits the raw text around verbatim occurrences of added tokens ("[CLS]", "<mask>", ...); each part with
    /// where it starts, in characters.
    private func splitOnAddedTokens(_ text: String) -> [Segment] {
        guard !addedTokens.isEmpty, text.contains("[") || addedTokens.contains(where: { !$0.content.hasPrefix("[") })
        else { return [.text(text, start: 0)] }
        var segments: [Segment] = []
        let bytes = Array(text.utf8)
        let patterns = addedTokens.map { (Array($0.content.utf8), $0.id, $0.content) }
        var textStart = 0
        var i = 0
        var characters = 0  // characters before textStart
        func count(_ part: ArraySlice<UInt8>) -> Int { part.reduce(0) { $0 + ($1 & 0xC0 != 0x80 ? 1 : 0) } }
        outer: while i < bytes.count {
            for (pattern, id, content) in patterns
            where i + pattern.count <= bytes.count && bytes[i..<(i + pattern.count)].elementsEqual(pattern) {
                if textStart < i {
                    segments.append(.text(String(decoding: bytes[textStart..<i], as: UTF8.self), start: characters))
                    characters += count(bytes[textStart..<i])
                }
                let length = content.unicodeScalars.count
                segments.append(.added(id, content, (characters, characters + length)))
                characters += length
                i += pattern.count
                textStart = i
                continue outer
            }
            i += 1
        }
        if textStart < bytes.count {
            segments.append(.text(String(decoding: bytes[textStart...], as: UTF8.self), start: characters))
        }
        return segments
    }
}

/// The tokens of one text before the post-processor, with their offsets when asked for.
struct Pieces {
    var ids: [Int32] = []
    var tokens: [String] = []
    var offsets: [(Int, Int)]?

    mutating func append(_ id: Int32, _ token: String, _ span: (Int, Int)) {
        ids.append(id)
        tokens.append(token)
        offsets?.append(span)
    }

    /// Truncates to the first `count` tokens.
    mutating func keep(_ count: Int) {
        guard ids.count > count else { return }
        ids.removeLast(ids.count - count)
        tokens.removeLast(tokens.count - count)
        if let n = offsets?.count { offsets?.removeLast(n - count) }
    }
}
