import Foundation
import MassTesting
import Testing

/// `mass classify` end to end: the built binary on the fixture images, and on files it cannot read.
@Suite struct ClassifyCommandTests {
    let embed = EmbedCommandTests()

    @Test func printsTheGoldenClasses() throws {
        let fixture = try EfficientNetFixture.load()
        let files = fixture.images.map { EfficientNetFixture.url($0.file).path }
        let out = try embed.run(
            ["classify", "--model", EfficientNetFixture.modelDirectory.path, "--json", "--top-k", "5"] + files)
        #expect(out.status == 0, "\(out.stderr)")
        let lines = String(decoding: out.stdout, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == fixture.images.count)
        for (line, image) in zip(lines, fixture.images) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect((object["file"] as? String)?.hasSuffix(image.file) == true)
            let data = try #require(object["data"] as? [[String: Any]])
            // From the file with Mass's own decode and resize: the top-1 as the fixtures README states.
            let top = data.compactMap { $0["index"] as? Int }
            if image.id == "coffee" || image.id == "rocket" || image.id == "chelsea" {
                #expect(top.first == image.top5[0].index, "\(image.id)")
            }
            #expect(image.top5.prefix(2).map(\.index).contains(top[0]), "\(image.id)")
            #expect(data.first?["label"] as? String == image.top5.first { $0.index == top[0] }?.name)
            let score = try #require(data.first?["score"] as? Double)
            let golden = image.top5.first { $0.index == top[0] }!.prob
            #expect(abs(score - golden) < 0.02, "\(image.id): \(score) vs \(golden)")
        }
    }

    @Test func unreadableFilesAreReportedAndTheRestClassified() throws {
        let good = EfficientNetFixture.url("coffee.png").path
        let text = FixturePaths.packageRoot.appendingPathComponent("README.md").path
        let out = try embed.run([
            "classify", "--model", EfficientNetFixture.modelDirectory.path, "/nonexistent.jpg", text, good,
        ])
        #expect(out.status == 1)
        #expect(out.stderr.contains("/nonexistent.jpg: no such file"))
        #expect(out.stderr.contains("not a PNG or JPEG file"))
        #expect(String(decoding: out.stdout, as: UTF8.self).contains("espresso"))
        let missing = try embed.run(["classify", "--model", "/nonexistent-model", good])
        #expect(missing.status != 0 && missing.stderr.contains("no PyTorch checkpoint"), "\(missing.stderr)")
    }
}
