import Foundation
import MassTesting
import MassTokenizers
import Testing

/// A tokenizer.json with a small WordPiece vocabulary, for behaviour tests that need no model.
func tinyTokenizer(
    normalizer: String =
        #"{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}"#,
    model: String? = nil
) throws -> Tokenizer {
    let vocab = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "un", "##aff", "##able", ",", "!", "cafe", "中",
        "e",
    ]
    let vocabJSON = vocab.enumerated().map { "\"\($1)\": \($0)" }.joined(separator: ", ")
    let defaultModel = """
        {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 12,
         "vocab": {\(vocabJSON)}}
        """
    let json = """
        {"version": "1.0",
         "added_tokens": [{"id": 4, "content": "[MASK]", "special": true}],
         "normalizer": \(normalizer),
         "pre_tokenizer": {"type": "BertPreTokenizer"},
         "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
         "model": \(model ?? defaultModel)}
        """
    return try Tokenizer(data: Data(json.utf8))
}

@Suite struct TokenizerTests {
    @Test func goldenIdsForEveryFixtureCase() throws {
        let fixture = try MiniLMFixture.load()
        let url = MiniLMFixture.modelDirectory.appendingPathComponent("tokenizer.json")
        #expect(FileManager.default.fileExists(atPath: url.path), "run 'make models' first: \(url.path) is missing")
        let tokenizer = try Tokenizer(contentsOf: url)
        for c in fixture.cases {
            let encoding = tokenizer.encode(c.text, maxLength: 256)
            #expect(encoding.ids == c.input_ids, "case \(c.id)")
            #expect(encoding.tokens == c.tokens, "case \(c.id)")
            #expect(encoding.untruncatedCount == c.n_tokens_untruncated, "case \(c.id)")
        }
    }

    @Test func wordPieceGreedyLongestMatch() throws {
        let t = try tinyTokenizer()
        #expect(
            t.encode("Hello, unaffable world!").tokens == [
                "[CLS]", "hello", ",", "un", "##aff", "##able", "world", "!", "[SEP]",
            ])
        // No piece matches "xyz": the whole word is unknown; a word over max_input_chars_per_word (12) too.
        #expect(t.encode("hello xyz unaffableunaffable").ids == [2, 5, 1, 1, 3])
    }

    @Test func normalizerCleansSpacesCJKAndStripsAccents() throws {
        let t = try tinyTokenizer()
        // NBSP and tab are spaces, U+200B and BEL are dropped, é loses its accent, 中 is spaced out.
        #expect(t.encode("Café\u{00A0}he\u{200B}llo\u{7}\t中e").tokens == ["[CLS]", "cafe", "hello", "中", "e", "[SEP]"])
        #expect(t.encode("").ids == [2, 3])
        #expect(t.encode(" \t\n ").ids == [2, 3])
    }

    @Test func addedTokensMatchVerbatim() throws {
        let t = try tinyTokenizer()
        #expect(t.encode("hello [MASK]world").ids == [2, 5, 4, 6, 3])
    }

    @Test func truncationKeepsSpecialTokens() throws {
        let t = try tinyTokenizer()
        let e = t.encode("hello world hello world", maxLength: 4)
        #expect(e.ids == [2, 5, 6, 3])
        #expect(e.untruncatedCount == 6)
    }

    @Test func unsupportedAndMalformedFilesAreRefused() throws {
        #expect(
            caught(TokenizerError.self) {
                _ = try tinyTokenizer(model: #"{"type": "WordLevel", "vocab": {}}"#)
            }?.code
                == .unsupported)
        #expect(
            caught(TokenizerError.self) { _ = try tinyTokenizer(normalizer: #"{"type": "NFKC"}"#) }?.code
                == .unsupported)
        #expect(caught(TokenizerError.self) { _ = try Tokenizer(data: Data("{oops".utf8)) }?.code == .malformed)
        #expect(caught(TokenizerError.self) { _ = try Tokenizer(data: Data("{}".utf8)) }?.code == .malformed)
        let e = caught(TokenizerError.self) {
            _ = try tinyTokenizer(model: #"{"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}"#)
        }
        #expect(e?.message.contains("[UNK]") == true)
        let missing = caught(TokenizerError.self) {
            _ = try Tokenizer(contentsOf: URL(fileURLWithPath: "/nonexistent/tokenizer.json"))
        }
        #expect(missing?.code == .fileUnreadable)
        #expect(missing?.description.contains("/nonexistent/tokenizer.json") == true)
    }
}
