import Foundation

/// The result of tokenizing one text.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int32]
    public var tokens: [String]
    /// Token count before truncation (special tokens included).
    public var untruncatedCount: Int
    /// The segment of each token (0 for a single text; 0 and 1 for a pair, as the pair template says).
    public var typeIds: [Int32]
}

/// A Hugging Face `tokenizer.json` pipeline: added (special) tokens matched verbatim, then normalizer →
/// pre-tokenizer → model → post-processor.
///
/// Supported: normalizer `BertNormalizer`; pre-tokenizer `BertPreTokenizer`; model `WordPiece`;
/// post-processor `TemplateProcessing` (single and pair templates) and `BertProcessing`. Anything else is refused at
/// load with an error naming the component. The file's own `truncation`/`padding` settings are ignored: the
/// caller passes the model's maximum length (sentence-transformers does the same).
public struct Tokenizer: Sendable {
    public let normalizer: BertNormalizer?
    public let preTokenizer: BertPreTokenizer
    public let model: WordPiece
    public let postProcessor: PostProcessor
    /// Added tokens matched in the raw text before normalization, longest first.
    public let addedTokens: [(content: String, id: Int32)]

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
        let modelType = modelJSON["type"] as? String ?? "<missing>"
        guard modelType == "WordPiece" else {
            throw TokenizerError(
                .unsupported, file: file, "model type '\(modelType)' is not supported (supported: WordPiece)")
        }
        guard let vocabJSON = modelJSON["vocab"] as? [String: Any] else {
            throw TokenizerError(.malformed, file: file, "model.vocab must be an object of token → id")
        }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(vocabJSON.count)
        for (token, value) in vocabJSON {
            guard let id = value as? Int, id >= 0, id <= Int(Int32.max) else {
                throw TokenizerError(.malformed, file: file, "model.vocab['\(token)'] is not a non-negative integer id")
            }
            // Swift compares strings by canonical equivalence; keep the lowest id if two keys are equivalent.
            if let existing = vocabulary[token], existing < Int32(id) { continue }
            vocabulary[token] = Int32(id)
        }
        model = try WordPiece(
            vocabulary: vocabulary,
            unknownToken: modelJSON["unk_token"] as? String ?? "[UNK]",
            continuingSubwordPrefix: modelJSON["continuing_subword_prefix"] as? String ?? "##",
            maxInputCharsPerWord: modelJSON["max_input_chars_per_word"] as? Int ?? 100)

        switch json["normalizer"] {
        case nil, is NSNull:
            normalizer = nil
        case let n as [String: Any] where n["type"] as? String == "BertNormalizer":
            normalizer = BertNormalizer(
                cleanText: n["clean_text"] as? Bool ?? true,
                handleChineseChars: n["handle_chinese_chars"] as? Bool ?? true,
                stripAccents: n["strip_accents"] as? Bool,
                lowercase: n["lowercase"] as? Bool ?? true)
        case let n as [String: Any]:
            throw TokenizerError(
                .unsupported, file: file,
                "normalizer type '\(n["type"] as? String ?? "<missing>")' is not supported (supported: BertNormalizer)")
        default:
            throw TokenizerError(.malformed, file: file, "'normalizer' must be an object or null")
        }

        let preType = (json["pre_tokenizer"] as? [String: Any])?["type"] as? String ?? "<missing>"
        guard preType == "BertPreTokenizer" else {
            throw TokenizerError(
                .unsupported, file: file,
                "pre_tokenizer type '\(preType)' is not supported (supported: BertPreTokenizer)")
        }
        preTokenizer = BertPreTokenizer()
        postProcessor = try PostProcessor.parse(
            json["post_processor"] as? [String: Any], vocabulary: vocabulary, file: file)

        var added: [(String, Int32)] = []
        for entry in json["added_tokens"] as? [[String: Any]] ?? [] {
            if let content = entry["content"] as? String, let id = entry["id"] as? Int, !content.isEmpty {
                added.append((content, Int32(id)))
            }
        }
        addedTokens = added.sorted { $0.0.utf8.count > $1.0.utf8.count }.map { (content: $0.0, id: $0.1) }
    }

    /// Tokenizes one text. `maxLength`, when given, caps the result including the post-processor's tokens
    /// (truncation keeps the start of the text).
    public func encode(_ text: String, maxLength: Int? = nil) -> Encoding {
        var (ids, tokens) = pieces(text)
        let untruncated = ids.count + postProcessor.addedCount
        if let maxLength {
            let room = max(0, maxLength - postProcessor.addedCount)
            if ids.count > room {
                ids.removeLast(ids.count - room)
                tokens.removeLast(tokens.count - room)
            }
        }
        let out = postProcessor.apply(postProcessor.single, [(ids, tokens)])
        return Encoding(ids: out.ids, tokens: out.tokens, untruncatedCount: untruncated, typeIds: out.typeIds)
    }

    /// Tokenizes a pair (a query and a passage) with the pair template, e.g. `[CLS] A [SEP] B [SEP]` with type ids
    /// 0 then 1. `maxLength` caps the result, special tokens included, as Hugging Face's `longest_first`
    /// truncation does: a side that fits in half of the room keeps its tokens and the other takes the rest; when
    /// neither fits, each gets half and the longer side one more when the room is odd. Throws when the tokenizer
    /// has no pair template.
    public func encode(pair first: String, _ second: String, maxLength: Int? = nil) throws(TokenizerError)
        -> Encoding
    {
        guard let template = postProcessor.pair, let added = postProcessor.pairAddedCount else {
            throw TokenizerError(.unsupported, file: "tokenizer.json", "the post-processor defines no pair template")
        }
        var a = pieces(first)
        var b = pieces(second)
        let untruncated = a.ids.count + b.ids.count + added
        if let maxLength, a.ids.count + b.ids.count + added > maxLength {
            let (keepA, keepB) = Self.longestFirst(a.ids.count, b.ids.count, room: max(0, maxLength - added))
            a = (Array(a.ids.prefix(keepA)), Array(a.tokens.prefix(keepA)))
            b = (Array(b.ids.prefix(keepB)), Array(b.tokens.prefix(keepB)))
        }
        let out = postProcessor.apply(template, [a, b])
        return Encoding(ids: out.ids, tokens: out.tokens, untruncatedCount: untruncated, typeIds: out.typeIds)
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

    /// The model's tokens for a text, before the post-processor.
    private func pieces(_ text: String) -> (ids: [Int32], tokens: [String]) {
        var ids: [Int32] = []
        var tokens: [String] = []
        for segment in splitOnAddedTokens(text) {
            switch segment {
            case .added(let id, let content):
                ids.append(id)
                tokens.append(content)
            case .text(let piece):
                let normalized = normalizer?.normalize(piece) ?? piece
                for word in preTokenizer.split(normalized) {
                    model.tokenize(word, ids: &ids, tokens: &tokens)
                }
            }
        }
        return (ids, tokens)
    }

    private enum Segment {
        case text(String)
        case added(Int32, String)
    }

    /// Splits the raw text around verbatim occurrences of added tokens ("[CLS]", "[MASK]", ...).
    private func splitOnAddedTokens(_ text: String) -> [Segment] {
        guard !addedTokens.isEmpty, text.contains("[") || addedTokens.contains(where: { !$0.content.hasPrefix("[") })
        else { return [.text(text)] }
        var segments: [Segment] = []
        let bytes = Array(text.utf8)
        let patterns = addedTokens.map { (Array($0.content.utf8), $0.id, $0.content) }
        var textStart = 0
        var i = 0
        outer: while i < bytes.count {
            for (pattern, id, content) in patterns
            where i + pattern.count <= bytes.count && bytes[i..<(i + pattern.count)].elementsEqual(pattern) {
                if textStart < i { segments.append(.text(String(decoding: bytes[textStart..<i], as: UTF8.self))) }
                segments.append(.added(id, content))
                i += pattern.count
                textStart = i
                continue outer
            }
            i += 1
        }
        if textStart < bytes.count { segments.append(.text(String(decoding: bytes[textStart...], as: UTF8.self))) }
        return segments
    }
}
