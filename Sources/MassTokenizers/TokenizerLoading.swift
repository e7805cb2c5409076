import Foundation

/// Reading a `tokenizer.json`: each stage's JSON into its Swift form, refusing what is not supported with the
/// component's name.
extension Tokenizer {
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
        let (model, vocabulary) = try Self.parseModel(modelJSON, file: file)
        let normalizers = try Self.parseNormalizer(json["normalizer"], file: file)
        let preTokenizer = try Self.parsePreTokenizer(json["pre_tokenizer"], file: file)
        if case .byteLevel = preTokenizer {
            guard case .bpe = model else {
                throw TokenizerError(.unsupported, file: file, "the ByteLevel pre-tokenizer needs a BPE model")
            }
        }
        let added = try AddedVocabulary.parse(json["added_tokens"], file: file) { content in
            Self.normalize(NormalizedText(content), normalizers).string
        }
        self.init(
            model: model, normalizers: normalizers, preTokenizer: preTokenizer,
            decoder: try Self.parseDecoder(json["decoder"], file: file),
            postProcessor: try PostProcessor.parse(
                json["post_processor"] as? [String: Any], vocabulary: vocabulary, file: file),
            added: added)
    }

    /// The model, and its vocabulary when the post-processor may need to look tokens up (WordPiece, BPE).
    private static func parseModel(_ json: [String: Any], file: String) throws(TokenizerError)
        -> (Model, [String: Int32])
    {
        switch json["type"] as? String ?? "<missing>" {
        case "WordPiece":
            guard let vocabJSON = json["vocab"] as? [String: Any] else {
                throw TokenizerError(.malformed, file: file, "model.vocab must be an object of token → id")
            }
            var vocabulary: [String: Int32] = [:]
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
            let wordPiece = try WordPiece(
                vocabulary: vocabulary,
                unknownToken: json["unk_token"] as? String ?? "[UNK]",
                continuingSubwordPrefix: json["continuing_subword_prefix"] as? String ?? "##",
                maxInputCharsPerWord: json["max_input_chars_per_word"] as? Int ?? 100)
            return (.wordPiece(wordPiece), vocabulary)
        case "Unigram":
            guard let list = json["vocab"] as? [[Any]] else {
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
            guard json["byte_fallback"] as? Bool != true else {
                throw TokenizerError(.unsupported, file: file, "Unigram byte_fallback is not supported")
            }
            guard let unk = json["unk_id"] as? Int else {
                throw TokenizerError(.unsupported, file: file, "a Unigram model without unk_id is not supported")
            }
            return (.unigram(try Unigram(pieces: pieces, unknownId: unk, file: file)), [:])
        case "BPE":
            let bpe = try BPE.parse(json, file: file)
            return (.bpe(bpe), bpe.vocabulary)
        case let other:
            throw TokenizerError(
                .unsupported, file: file,
                "model type '\(other)' is not supported (supported: WordPiece, Unigram, BPE)")
        }
    }

    private static func parsePreTokenizer(_ json: Any?, file: String) throws(TokenizerError) -> PreTokenizer {
        let pre = json as? [String: Any]
        switch pre?["type"] as? String ?? "<missing>" {
        case "BertPreTokenizer": return .bert
        case "Metaspace": return .metaspace(try Metaspace.parse(pre!, file: file))
        case "ByteLevel": return .byteLevel(ByteLevel.parse(pre!))
        case let other:
            throw TokenizerError(
                .unsupported, file: file,
                "pre_tokenizer type '\(other)' is not supported (supported: BertPreTokenizer, Metaspace, ByteLevel)")
        }
    }

    private static func parseDecoder(_ json: Any?, file: String) throws(TokenizerError) -> Decoder? {
        switch json {
        case nil, is NSNull: return nil
        case let d as [String: Any]:
            switch d["type"] as? String ?? "<missing>" {
            case "WordPiece":
                return .wordPiece(prefix: d["prefix"] as? String ?? "##", cleanup: d["cleanup"] as? Bool ?? true)
            case "Metaspace": return .metaspace(try Metaspace.parse(d, file: file))
            case "ByteLevel": return .byteLevel
            case let other:
                throw TokenizerError(
                    .unsupported, file: file,
                    "decoder type '\(other)' is not supported (supported: WordPiece, Metaspace, ByteLevel)")
            }
        default:
            throw TokenizerError(.malformed, file: file, "'decoder' must be an object or null")
        }
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
}
