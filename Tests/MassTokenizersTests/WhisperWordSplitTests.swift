import Foundation
import MassTesting
import MassTokenizers
import Testing

/// How word timestamps group Whisper's tokens into words, against faster-whisper 1.2.1's `split_to_word_tokens`
/// (goldens from scripts/make-word-split-goldens.py, whisper-base's vocabulary): every complete character in
/// Chinese, Japanese, Thai, Lao, Burmese and Cantonese; spaces and punctuation in other languages; a lone leading
/// byte the model wrote kept as its own piece.
@Suite struct WhisperWordSplitTests {
    struct Golden: Decodable {
        struct Case: Decodable {
            let text: String
            let language: String
            let tokens: [Int]
            let words: [String]
            let word_tokens: [[Int]]
        }
        let cases: [Case]
    }

    @Test func wordsAndTheirTokensMatchFasterWhisper() throws {
        let url = FixturePaths.packageRoot.appendingPathComponent(
            "Tests/MassTokenizersTests/Goldens/whisper-word-split.json")
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
        let tokenizer = try WhisperTokenizer(
            vocabularyFile: FixturePaths.extraModels.appendingPathComponent("whisper-base/1/vocabulary.json"))
        #expect(golden.cases.count == 200)
        for c in golden.cases {
            let (words, tokens) = tokenizer.splitToWordTokens(c.tokens, language: c.language)
            #expect(words == c.words, "\(c.language) \(c.text): words")
            #expect(tokens == c.word_tokens, "\(c.language) \(c.text): tokens")
        }
        // Both ways of splitting are exercised: Chinese by character, English by spaces.
        let zh = try #require(golden.cases.first { $0.language == "zh" && $0.text.hasPrefix("北京") })
        let en = try #require(golden.cases.first { $0.language == "en" && $0.text.hasPrefix("北京") })
        #expect(zh.words.count == 9 && en.words.count == 4)
    }
}
