import Foundation
import MassTesting
import Testing

/// `mass tokenize` on the built binary: one JSON object per text with the reference's ids, tokens and offsets
/// (goldens of Tests/MassTokenizersTests/Goldens/xlmr-unigram.json), pairs with type ids, decoding, bad input.
@Suite struct TokenizeCommandTests {
    let runner = EmbedCommandTests()
    static let xlmr = FixturePaths.extraModels.appendingPathComponent("multilingual-e5-small-tokenizer").path

    struct Golden: Decodable {
        struct Text: Decodable {
            let text: String
            let ids: [Int]
            let tokens: [String]
            let offsets: [[Int]]
            let decoded: String
        }
        struct Pair: Decodable {
            let a: String
            let b: String
            let ids: [Int]
            let type_ids: [Int]
        }
        let texts: [Text]
        let pairs: [Pair]
    }

    static func golden() throws -> Golden {
        try JSONDecoder().decode(
            Golden.self,
            from: Data(
                contentsOf: FixturePaths.packageRoot.appendingPathComponent(
                    "Tests/MassTokenizersTests/Goldens/xlmr-unigram.json")))
    }

    func objects(_ data: Data) -> [[String: Any]] {
        String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    @Test func printsTheReferenceTokensPerText() throws {
        let cases = Array(try Self.golden().texts.filter { !$0.text.contains("\n") && !$0.text.isEmpty }.prefix(30))
        let r = try runner.run(["tokenize", "--tokenizer", Self.xlmr] + cases.map(\.text))
        #expect(r.status == 0, "\(r.stderr)")
        let lines = objects(r.stdout)
        #expect(lines.count == cases.count)
        for (line, c) in zip(lines, cases) {
            #expect(line["ids"] as? [Int] == c.ids, "\(c.text)")
            #expect(line["tokens"] as? [String] == c.tokens, "\(c.text)")
            #expect(line["offsets"] as? [[Int]] == c.offsets, "\(c.text)")
        }
        // Standard input, one text per line, then decoding the ids back.
        let piped = try runner.run(["tokenize", "--tokenizer", Self.xlmr], stdin: Data((cases[0].text + "\n").utf8))
        #expect(objects(piped.stdout).first?["ids"] as? [Int] == cases[0].ids)
        let decoded = try runner.run(
            ["tokenize", "--tokenizer", Self.xlmr, "--decode", cases[0].ids.map(String.init).joined(separator: ",")])
        #expect(decoded.status == 0)
        #expect(
            try JSONSerialization.jsonObject(with: decoded.stdout, options: .fragmentsAllowed) as? String
                == cases[0].decoded)
    }

    @Test func pairsCarryTypeIds() throws {
        let pair = try Self.golden().pairs[0]
        let r = try runner.run(["tokenize", "--tokenizer", Self.xlmr, "--pair", pair.a, pair.b])
        #expect(r.status == 0, "\(r.stderr)")
        let line = try #require(objects(r.stdout).first)
        #expect(line["ids"] as? [Int] == pair.ids && line["type_ids"] as? [Int] == pair.type_ids)
    }

    @Test func badInputIsRefused() throws {
        let odd = try runner.run(["tokenize", "--tokenizer", Self.xlmr, "--pair", "one"])
        #expect(odd.status != 0 && odd.stderr.contains("even number"))
        let missing = try runner.run(["tokenize", "--tokenizer", "/nonexistent/tokenizer.json", "x"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/tokenizer.json"))
        let bad = try runner.run(["tokenize", "--tokenizer", Self.xlmr, "--decode", "1,x"])
        #expect(bad.status != 0 && bad.stderr.contains("'x' is not a token id"))
    }
}
