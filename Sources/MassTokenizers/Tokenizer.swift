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

/// A Hugging Face `tokenizer.json` pipeline: added tokens found first, then normalizer → pre-tokenizer → model →
/// post-processor, and a decoder back to text.
///
/// Supported: normalizers `BertNormalizer`, `Precompiled` (SentencePiece's charsmap), `Replace` and `Sequence` of
/// them; pre-tokenizers `BertPreTokenizer`, `Metaspace` and `ByteLevel`; models `WordPiece`, `Unigram` and `BPE`;
/// post-processors `TemplateProcessing`, `BertProcessing`, `RobertaProcessing` and `ByteLevel`; decoders
/// `WordPiece`, `Metaspace` and `ByteLevel`. Anything else is refused at load with an error naming the component.
/// The file's own `truncation`/`padding` settings are ignored: the caller passes the model's maximum length
/// (sentence-transformers does the same).
public struct Tokenizer: Sendable {
    enum Model: Sendable {
        case wordPiece(WordPiece)
        case unigram(Unigram)
        case bpe(BPE)
    }
    enum PreTokenizer: Sendable {
        case bert
        case metaspace(Metaspace)
        case byteLevel(ByteLevel)
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
        case byteLevel
    }

    let model: Model
    /// Decided once at load: the pipeline is BERT's, so plain encodes take the fast path.
    let bertPipeline: (normalizer: BertNormalizer?, wordPiece: WordPiece)?
    let normalizers: [Normalizer]
    let preTokenizer: PreTokenizer
    let decoder: Decoder?
    public let postProcessor: PostProcessor
    let added: AddedVocabulary

    init(
        model: Model, normalizers: [Normalizer], preTokenizer: PreTokenizer, decoder: Decoder?,
        postProcessor: PostProcessor, added: AddedVocabulary
    ) {
        self.model = model
        self.normalizers = normalizers
        self.preTokenizer = preTokenizer
        self.decoder = decoder
        self.postProcessor = postProcessor
        self.added = added
        bertPipeline = Self.bertPipeline(normalizers, preTokenizer, model)
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
        if let token = added.byId[id] { return token.special }
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
            if let token = added.byId[id] {
                if token.special && skipSpecialTokens { continue }
                tokens.append(token.content)
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
        case .byteLevel:
            return ByteLevel.decode(tokens)
        case nil:
            return tokens.joined(separator: " ")
        }
    }

    /// The model's piece for an id.
    public func token(for id: Int32) -> String? {
        switch model {
        case .wordPiece(let w): w.token(for: id)
        case .unigram(let u): id >= 0 && Int(id) < u.pieces.count ? u.pieces[Int(id)].piece : nil
        case .bpe(let bpe): bpe.token(for: id)
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

    /// The model's tokens for a text, before the post-processor: added tokens found in the raw text, the rest
    /// normalized, normalized added tokens found in it, the rest pre-tokenized and through the model.
    private func pieces(_ text: String, offsets: Bool) -> Pieces {
        var out = Pieces(offsets: offsets ? [] : nil)
        if !offsets, let (bert, wordPiece) = bertPipeline {
            // The fast path BERT models take for every request: no alignments kept.
            func words(_ text: String) {
                for word in BertPreTokenizer().split(text) {
                    wordPiece.tokenize(word, ids: &out.ids, tokens: &out.tokens)
                }
            }
            func fast(_ piece: String) {
                let normalized = bert?.normalize(piece) ?? piece
                guard added.normalized.mayMatch(normalized) else { return words(normalized) }
                for (part, id) in added.normalized.parts(normalized) {
                    if let id { out.append(id, part, (0, 0)) } else { words(part) }
                }
            }
            guard added.raw.mayMatch(text) else {
                fast(text)
                return out
            }
            for (part, id) in added.raw.parts(text) {
                if let id { out.append(id, part, (0, 0)) } else { fast(part) }
            }
            return out
        }
        let raw = NormalizedText(text)
        for part in added.raw.split(raw.scalars) {
            let piece = raw.slice(part.range)
            if let id = part.id {
                out.append(id, piece.string, raw.originalRange(part.range))
                continue
            }
            let normalized = Self.normalize(piece, normalizers)
            for inner in added.normalized.split(normalized.scalars) {
                let span = normalized.originalRange(inner.range)
                if let id = inner.id {
                    out.append(id, normalized.slice(inner.range).string, span)
                } else {
                    tokenize(normalized.slice(inner.range), first: span.start == 0, into: &out)
                }
            }
        }
        if let trim = postProcessor.trimOffsets { ByteLevel.trim(&out, addPrefixSpace: trim.addPrefixSpace) }
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

    /// The normalizers applied in order, keeping alignments.
    static func normalize(_ text: NormalizedText, _ normalizers: [Normalizer]) -> NormalizedText {
        var text = text
        for normalizer in normalizers {
            switch normalizer {
            case .bert(let bert): bert.normalize(&text)
            case .precompiled(let map): map.normalize(&text)
            case .replace(let regex, let content): Self.replace(&text, regex, content)
            }
        }
        return text
    }

    /// Pre-tokenizes one normalized stretch of text between added tokens and runs the model on each word; `first`
    /// when the stretch starts the input.
    private func tokenize(_ text: NormalizedText, first: Bool, into out: inout Pieces) {
        let words: [NormalizedText]
        switch preTokenizer {
        case .bert: words = BertPreTokenizer().split(text)
        case .metaspace(let metaspace): words = metaspace.split(text, first: first)
        case .byteLevel(let byteLevel):
            guard case .bpe(let bpe) = model else { return }  // refused at load
            for word in byteLevel.split(text) {
                for (id, range) in bpe.tokenize(word.bytes) {
                    let characters = word.origin[range.lowerBound]..<(word.origin[range.upperBound - 1] + 1)
                    out.append(id, bpe.tokens[Int(id)], word.source.originalRange(characters))
                }
            }
            return
        }
        for word in words {
            switch model {
            case .wordPiece(let wordPiece):
                for (id, token, range) in wordPiece.tokenize(word.scalars) {
                    out.append(id, token, word.originalRange(range))
                }
            case .bpe(let bpe):
                for (id, range) in bpe.tokenize(word.scalars) {
                    out.append(id, bpe.tokens[Int(id)], word.originalRange(range))
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
                    out.append(id, String(decoding: bytes[range], as: UTF8.self), word.originalRange(chars))
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
