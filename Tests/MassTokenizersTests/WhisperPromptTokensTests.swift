import Foundation
import MassTesting
import MassTokenizers
import Testing

/// Whisper's prompt tokens (its tokenizer.json through `Tokenizer`, no special tokens added) against ids computed
/// offline with the reference notes' `whisper_bpe.py` (which agrees with the `tokenizers` library), and
/// faster-whisper's suppressed-token list rebuilt from the encoder.
@Suite struct WhisperPromptTokensTests {
    static let folder = WhisperFixture.modelDirectory
    static let tokenizer: Tokenizer? = try? Tokenizer(contentsOf: folder.appendingPathComponent("tokenizer.json"))

    struct Encoder {
        let tokenizer: Tokenizer
        func encode(_ text: String) -> [Int] { tokenizer.encode(text, addSpecialTokens: false).ids.map(Int.init) }
    }
    static var bpe: Encoder? { tokenizer.map(Encoder.init) }
    static let vocabulary: WhisperTokenizer? = try? WhisperTokenizer(
        vocabularyFile: folder.appendingPathComponent("vocabulary.txt"))

    static let cases: [(String, [Int])] = [
        (" Hello world, it's 2024!", [18435, 995, 11, 340, 338, 48609, 0]),
        (" Ask not what your country can do for you.", [16981, 407, 644, 534, 1499, 460, 466, 329, 345, 13]),
        (
            "naïve café — 東京 \u{2019}quoted\u{2019}  two  spaces\n\nnew line\t tab",
            [
                2616, 38776, 40304, 851, 10545, 251, 109, 12859, 105, 564, 247, 421, 5191, 447, 247, 220, 734, 220,
                9029, 198, 198, 3605, 1627, 197, 7400,
            ]
        ),
        (" ♪♪ <<>> 3.14159", [20724, 103, 17992, 103, 9959, 4211, 513, 13, 1415, 19707]),
        ("I'LL  you're  x  ", [40, 6, 3069, 220, 345, 821, 220, 2124, 220, 220]),
    ]

    @Test(arguments: cases.indices) func encodesLikeTheReference(index: Int) throws {
        let bpe = try #require(Self.bpe)
        let (text, ids) = Self.cases[index]
        #expect(bpe.encode(text) == ids, "\(text.debugDescription)")
        #expect(try #require(Self.vocabulary).decode(bpe.encode(text)) == text)
    }

    @Test func emptyTextHasNoTokens() throws {
        #expect(try #require(Self.bpe).encode("").isEmpty)
    }

    /// faster-whisper's `non_speech_tokens` plus the task tokens is exactly config.json's `suppress_ids`.
    @Test func rebuildsTheSuppressedTokens() throws {
        let bpe = try #require(Self.bpe)
        var symbols = "\"#()*+/:;<=>@[\\]^_`{|}~「」『』".map(String.init)
        symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split(separator: " ").map(
            String.init)
        let misc = "♩♪♫♬♭♮♯".map(String.init)
        var ids: Set<Int> = [bpe.encode(" -")[0], bpe.encode(" '")[0]]
        for symbol in symbols + misc {
            for tokens in [bpe.encode(symbol), bpe.encode(" " + symbol)]
            where tokens.count == 1 || misc.contains(symbol) {
                ids.insert(tokens[0])
            }
        }
        // sot, translate, transcribe, sot_lm, sot_prev, no speech
        ids.formUnion([50257, 50357, 50358, 50359, 50360, 50361])
        let config = try JSONSerialization.jsonObject(
            with: Data(contentsOf: Self.folder.appendingPathComponent("config.json")))
        let expected = try #require((config as? [String: Any])?["suppress_ids"] as? [Int])
        #expect(ids.sorted() == expected)
    }
}
