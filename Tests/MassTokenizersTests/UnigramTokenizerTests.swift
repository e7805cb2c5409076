import Foundation
import MassTesting
import MassTokenizers
import Testing

/// The SentencePiece-Unigram pipeline (Precompiled charsmap, Replace, Metaspace, Unigram, TemplateProcessing) on
/// multilingual-e5-small's XLM-R tokenizer.json (`scripts/fetch-models.sh models-extra extra`), and offsets and
/// decoding on MiniLM's WordPiece tokenizer, against the `tokenizers` library on the same 332 texts (goldens from
/// scripts/make-unigram-goldens.py): ids, tokens, character offsets and decoded text identical.
@Suite(.serialized) struct UnigramTokenizerTests {
    struct Golden: Decodable {
        let texts: [TokenizedText]
        let pairs: [TokenizedPair]
        let wordpiece: [TokenizedText]
    }

    static let golden: Golden = {
        let url = FixturePaths.packageRoot.appendingPathComponent("Tests/MassTokenizersTests/Goldens/xlmr-unigram.json")
        return try! JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    }()

    static func xlmr() throws -> Tokenizer {
        try Tokenizer(
            contentsOf: FixturePaths.extraModels.appendingPathComponent(
                "multilingual-e5-small-tokenizer/tokenizer.json"))
    }

    @Test func idsTokensOffsetsAndTextMatchTheReference() throws {
        let tokenizer = try Self.xlmr()
        #expect(Self.golden.texts.count == 332)
        for c in Self.golden.texts {
            let e = tokenizer.encode(c.text, offsets: true)
            #expect(e.ids == c.ids, "\(c.text.debugDescription): ids")
            #expect(e.tokens == c.tokens, "\(c.text.debugDescription): tokens")
            #expect(e.offsets == c.offsets, "\(c.text.debugDescription): offsets")
            #expect(tokenizer.encode(c.text).ids == c.ids, "\(c.text.debugDescription): ids without offsets")
            #expect(try tokenizer.decode(c.ids) == c.decoded, "\(c.text.debugDescription): decoded")
        }
    }

    @Test func pairsFollowTheTemplate() throws {
        let tokenizer = try Self.xlmr()
        for p in Self.golden.pairs {
            let e = try tokenizer.encode(pair: p.a, p.b, offsets: true)
            #expect(e.ids == p.ids && e.typeIds == p.type_ids && e.offsets == p.offsets, "\(p.a) / \(p.b)")
        }
    }

    @Test func wordPieceOffsetsAndDecodingMatchTheReference() throws {
        let tokenizer = try Tokenizer(contentsOf: MiniLMFixture.modelDirectory.appendingPathComponent("tokenizer.json"))
        for c in Self.golden.wordpiece {
            let e = tokenizer.encode(c.text, offsets: true)
            #expect(e.ids == c.ids, "\(c.text.debugDescription): ids")
            #expect(e.offsets == c.offsets, "\(c.text.debugDescription): offsets")
            #expect(try tokenizer.decode(c.ids) == c.decoded, "\(c.text.debugDescription): decoded")
        }
    }

    /// Broken SentencePiece files are refused at load, naming what is wrong.
    @Test func malformedUnigramFilesAreRefused() throws {
        func load(_ model: String, normalizer: String = "null") -> String? {
            let json =
                #"{"model": \#(model), "normalizer": \#(normalizer), "pre_tokenizer": {"type": "Metaspace", "replacement": "▁"}}"#
            do {
                _ = try Tokenizer(data: Data(json.utf8))
                return nil
            } catch {
                return error.description
            }
        }
        let good = #"{"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["▁a", -1.5]]}"#
        #expect(load(good) == nil)
        #expect(
            load(#"{"type": "Unigram", "unk_id": 0, "vocab": {"a": 1}}"#)?.contains("list of [piece, score]") == true)
        #expect(load(#"{"type": "Unigram", "unk_id": 5, "vocab": [["a", 0.0]]}"#)?.contains("unk_id 5") == true)
        #expect(load(#"{"type": "Unigram", "unk_id": 0, "vocab": [["a"]]}"#)?.contains("vocab[0]") == true)
        #expect(
            load(good, normalizer: #"{"type": "Precompiled", "precompiled_charsmap": "!!"}"#)?.contains("not base64")
                == true)
        #expect(
            load(good, normalizer: #"{"type": "Precompiled", "precompiled_charsmap": "AAAAAA=="}"#)?.contains(
                "does not fit") == true)
        #expect(
            load(good, normalizer: #"{"type": "Replace", "pattern": {"Regex": "("}, "content": " "}"#)?.contains(
                "Replace needs") == true)
        #expect(load(good, normalizer: #"{"type": "NFKC"}"#)?.contains("normalizer type 'NFKC'") == true)
    }

    /// A character no piece covers is the unknown piece; a run of them is one.
    @Test func unknownCharactersFuseIntoOnePiece() throws {
        let json = #"""
            {"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["▁a", -1.0], ["b", -2.0], ["▁", -3.0]]},
             "normalizer": null, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁"}}
            """#
        let tokenizer = try Tokenizer(data: Data(json.utf8))
        let e = tokenizer.encode("axyb", offsets: true)
        #expect(e.ids == [1, 0, 2] && e.tokens == ["▁a", "xy", "b"] && e.offsets == [[0, 1], [1, 3], [3, 4]])
    }

    @Test func unknownIdsAreRefused() throws {
        let tokenizer = try Self.xlmr()
        #expect(throws: TokenizerError.self) { try tokenizer.decode([0, 250_002]) }
    }
}
