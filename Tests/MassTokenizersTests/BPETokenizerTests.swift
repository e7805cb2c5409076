import Foundation
import MassTesting
import MassTokenizers
import Testing

/// Byte-level BPE through `Tokenizer` (ByteLevel pre-tokenizer, BPE model, ByteLevel decoder, RoBERTa's and
/// ByteLevel's offset trimming) and added tokens' flags (lstrip, rstrip, single_word, normalized), against the
/// `tokenizers` library on 364 texts (goldens from scripts/make-bpe-goldens.py): Whisper's tokenizer.json as
/// shipped, the same GPT-2 vocabulary set up as RoBERTa's and GPT-2's files are, and MPNet's tokenizer.json.
@Suite(.serialized) struct BPETokenizerTests {
    struct Golden: Decodable {
        struct Configuration: Decodable {
            let texts: [TokenizedText]
            let pairs: [TokenizedPair]
        }
        let configurations: [String: Configuration]
    }

    static let goldenURL = FixturePaths.packageRoot.appendingPathComponent(
        "Tests/MassTokenizersTests/Goldens/byte-level-bpe.json")
    static let golden: Golden = try! JSONDecoder().decode(Golden.self, from: Data(contentsOf: goldenURL))

    /// A configuration's tokenizer: Whisper's tokenizer.json with the golden's overrides applied (MPNet's file as is).
    static func tokenizer(_ name: String) throws -> Tokenizer {
        if name == "mpnet" {
            return try Tokenizer(
                contentsOf: FixturePaths.extraModels.appendingPathComponent("all-mpnet-base-v2/1/tokenizer.json"))
        }
        let whisper = WhisperFixture.modelDirectory.appendingPathComponent("tokenizer.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: whisper)) as? [String: Any])
        let all = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: goldenURL)) as? [String: Any])
        let configurations = try #require(all["configurations"] as? [String: [String: Any]])
        for (key, value) in try #require(configurations[name]?["overrides"] as? [String: Any]) {
            if key == "added_tokens" {
                json[key] = (json[key] as? [Any] ?? []) + (value as? [Any] ?? [])
            } else {
                json[key] = value
            }
        }
        return try Tokenizer(data: JSONSerialization.data(withJSONObject: json))
    }

    @Test(arguments: ["whisper", "roberta", "gpt2", "mpnet"])
    func idsTokensOffsetsAndTextMatchTheReference(configuration: String) throws {
        let tokenizer = try Self.tokenizer(configuration)
        let golden = try #require(Self.golden.configurations[configuration])
        #expect(golden.texts.count == 364)
        for c in golden.texts {
            let e = tokenizer.encode(c.text, offsets: true)
            #expect(e.ids == c.ids, "\(configuration) \(c.text.debugDescription): ids")
            #expect(e.tokens == c.tokens, "\(configuration) \(c.text.debugDescription): tokens")
            #expect(e.offsets == c.offsets, "\(configuration) \(c.text.debugDescription): offsets")
            #expect(tokenizer.encode(c.text).ids == c.ids, "\(configuration) \(c.text.debugDescription): no offsets")
            #expect(try tokenizer.decode(c.ids) == c.decoded, "\(configuration) \(c.text.debugDescription): decoded")
        }
    }

    @Test(arguments: ["roberta", "gpt2", "mpnet"]) func pairsMatchTheReference(configuration: String) throws {
        let tokenizer = try Self.tokenizer(configuration)
        let golden = try #require(Self.golden.configurations[configuration])
        #expect(golden.pairs.count == 10)
        for p in golden.pairs {
            let e = try tokenizer.encode(pair: p.a, p.b, offsets: true)
            #expect(e.ids == p.ids, "\(configuration) \(p.a) / \(p.b): ids")
            #expect(e.typeIds == p.type_ids, "\(configuration) \(p.a) / \(p.b): type ids")
            #expect(e.offsets == p.offsets, "\(configuration) \(p.a) / \(p.b): offsets")
        }
    }

    /// Broken BPE files are refused at load, naming what is wrong.
    @Test func malformedBPEFilesAreRefused() throws {
        func load(_ model: String, pre: String = #"{"type": "ByteLevel"}"#) -> String? {
            do {
                _ = try Tokenizer(data: Data(#"{"model": \#(model), "pre_tokenizer": \#(pre)}"#.utf8))
                return nil
            } catch { return error.description }
        }
        let vocab = #""vocab": {"a": 0, "b": 1, "ab": 2}"#
        #expect(load(#"{"type": "BPE", \#(vocab), "merges": ["a b"]}"#) == nil)
        #expect(load(#"{"type": "BPE", \#(vocab), "merges": [["a", "b"]]}"#) == nil)
        #expect(load(#"{"type": "BPE", \#(vocab)}"#)?.contains("model.merges") == true)
        #expect(load(#"{"type": "BPE", \#(vocab), "merges": ["a c"]}"#)?.contains("merges[0]") == true)
        #expect(load(#"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}"#)?.contains("'ab'") == true)
        #expect(load(#"{"type": "BPE", \#(vocab), "merges": [], "dropout": 0.1}"#)?.contains("dropout") == true)
        #expect(load(#"{"type": "BPE", \#(vocab), "merges": [], "unk_token": "<unk>"}"#)?.contains("<unk>") == true)
        #expect(load(#"{"type": "WordPiece", "vocab": {"[UNK]": 0}}"#)?.contains("needs a BPE model") == true)
        #expect(
            load(#"{"type": "BPE", \#(vocab), "merges": []}"#, pre: #"{"type": "Split"}"#)?.contains("Split") == true)
    }

    /// A BPE without byte-level mapping: unknown characters become the unknown token (fused when asked), the
    /// subword prefix and word suffix join the merges, and byte fallback spells a missing character in bytes.
    @Test func characterLevelBPEOptions() throws {
        func tokenizer(_ options: String) throws -> Tokenizer {
            let json = #"""
                {"model": {"type": "BPE", "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "<0xC3>": 4, "<0xA9>": 5,
                 "##b": 6, "a##b": 7, "b</w>": 8, "ab</w>": 9}, "merges": [["a", "b"], ["a", "##b"], ["a", "b</w>"]],
                 \#(options)}, "pre_tokenizer": {"type": "BertPreTokenizer"}}
                """#
            return try Tokenizer(data: Data(json.utf8))
        }
        #expect(try tokenizer(#""unk_token": "<unk>""#).encode("abxxa ab").ids == [3, 0, 0, 1, 3])
        #expect(try tokenizer(#""unk_token": "<unk>", "fuse_unk": true"#).encode("abxxa").ids == [3, 0, 1])
        // Without an unknown token the character is dropped, and its neighbours merge.
        #expect(try tokenizer(#""fuse_unk": true"#).encode("axb").ids == [3])
        #expect(try tokenizer(#""byte_fallback": true, "unk_token": "<unk>""#).encode("aéx").ids == [1, 4, 5, 0])
        // The merged token is "a" + "b" (the prefix of the right side dropped), not "a##b".
        #expect(try tokenizer(###""continuing_subword_prefix": "##""###).encode("ab").ids == [3])
        #expect(try tokenizer(#""end_of_word_suffix": "</w>""#).encode("ab b").ids == [9, 8])
    }
}
