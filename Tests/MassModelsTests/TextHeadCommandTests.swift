import Foundation
import MassTesting
import Testing

/// `mass classify-text` and `mass rerank` end to end: the built binary on the checkpoints that ship with the tests.
@Suite struct TextHeadCommandTests {
    let embed = EmbedCommandTests()

    func lines(_ stdout: Data) throws -> [[String: Any]] {
        try String(decoding: stdout, as: UTF8.self).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test func classifyTextPrintsTransformersLogits() throws {
        let fixture = try TextHeadFixture.load()
        let texts = fixture.classification.map(\.text)
        let out = try embed.run(
            ["classify-text", "--model", TextHeadFixture.classifierDirectory.path, "--raw-scores", "--top-k", "2"]
                + texts)
        #expect(out.status == 0, "\(out.stderr)")
        let objects = try lines(out.stdout)
        #expect(objects.count == texts.count)
        let names = ["negative", "neutral", "positive"]
        for (object, golden) in zip(objects, fixture.classification) {
            let labels = try #require(object["labels"] as? [[String: Any]])
            #expect(labels.count == 2)
            let best = golden.logits.enumerated().max { $0.element < $1.element }!
            #expect(labels[0]["label"] as? String == names[best.offset])
            #expect(abs((labels[0]["score"] as? Double ?? .nan) - Double(best.element)) < 1e-4)
        }
        // Pairs from standard input, tab-separated; a line without a tab is refused with its number.
        let pairs = try embed.run(
            ["classify-text", "--model", TextHeadFixture.classifierDirectory.path, "--pair"],
            stdin: Data("a question\tan answer\nno tab here\n".utf8))
        #expect(pairs.status != 0)
        #expect(pairs.stderr.contains("input 1: --pair needs two texts separated by a tab"), "\(pairs.stderr)")
    }

    @Test func rerankPrintsTheOrderOfTransformersLogits() throws {
        let fixture = try TextHeadFixture.load()
        let query = try #require(fixture.rerank.first?.query)
        let out = try embed.run(
            [
                "rerank", "--model", TextHeadFixture.rerankerDirectory.path, "--query", query, "--raw-scores",
                "--return-text",
            ]
                + fixture.rerank.map(\.text))
        #expect(out.status == 0, "\(out.stderr)")
        let objects = try lines(out.stdout)
        let expected = fixture.rerank.enumerated().sorted { $0.element.logits[0] > $1.element.logits[0] }
        #expect(objects.map { $0["index"] as? Int } == expected.map(\.offset))
        for (object, e) in zip(objects, expected) {
            #expect(abs((object["score"] as? Double ?? .nan) - Double(e.element.logits[0])) < 1e-4)
            #expect(object["text"] as? String == e.element.text)
        }
        // A classifier with three labels is not a reranker: refused with the reason.
        let wrong = try embed.run(
            ["rerank", "--model", TextHeadFixture.classifierDirectory.path, "--query", "q", "a"])
        #expect(wrong.status != 0)
        #expect(wrong.stderr.contains("has 3 labels"), "\(wrong.stderr)")
    }
}
