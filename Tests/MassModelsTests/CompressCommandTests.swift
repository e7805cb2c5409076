import Foundation
import MassTesting
import Testing

/// `mass compress --int8` end to end: the int8 folder, its report, and the folder loaded unchanged by `mass embed`
/// with exactly the embeddings of quantising at load (`--precision int8`).
@Suite(.serialized) struct CompressCommandTests {
    let cli = EmbedCommandTests()

    @Test func int8FolderIsReportedAndLoadsUnchanged() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mass-compress-\(UUID())")
        defer { try? FileManager.default.removeItem(at: out) }
        let texts = out.deletingLastPathComponent().appendingPathComponent("mass-compress-texts-\(UUID()).txt")
        defer { try? FileManager.default.removeItem(at: texts) }
        let corpus = try String(
            contentsOf: FixturePaths.fixtures.deletingLastPathComponent().appendingPathComponent("peers/corpus.txt"),
            encoding: .utf8)
        try corpus.split(separator: "\n").prefix(40).joined(separator: "\n").write(
            to: texts, atomically: true, encoding: .utf8)
        let model = MiniLMFixture.modelDirectory.path
        let compressed = try cli.run([
            "compress", "--model", model, "--int8", "--out", out.path, "--calibration", texts.path,
        ])
        #expect(compressed.status == 0, "\(compressed.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: compressed.stdout) as? [String: Any])
        let layers = report["layers"] as? [[String: Any]] ?? []
        // 6 layers x (query, key, value, attention output, intermediate, output).
        #expect(layers.count == 36)
        #expect(layers.allSatisfy { ($0["relative_error"] as? Double ?? 1) < 0.03 })
        #expect(report["dropped"] as? [String] == ["embeddings.position_ids"])
        #expect(report["bytes_after"] as? Int ?? .max < (report["bytes_before"] as? Int ?? 0) * 2 / 3)
        #expect(report["calibration_texts"] as? Int == 40)
        #expect(report["min_cosine"] as? Double ?? 0 >= 0.995 && report["mean_cosine"] as? Double ?? 1 < 0.99999)
        // The folder loads as any model; its embeddings are those of quantising at load.
        let fromFolder = try cli.run(["embed", "--model", out.path, "A man is eating food.", "Hello world"])
        let atLoad = try cli.run([
            "embed", "--model", model, "--precision", "int8", "A man is eating food.", "Hello world",
        ])
        #expect(fromFolder.status == 0 && atLoad.status == 0, "\(fromFolder.stderr)")
        #expect(!fromFolder.stdout.isEmpty && fromFolder.stdout == atLoad.stdout)
        // Refused: no compression named, an output folder that is not empty, a folder that is not BERT.
        let noMethod = try cli.run(["compress", "--model", model, "--out", out.path + "-x"])
        #expect(noMethod.status != 0 && noMethod.stderr.contains("--int8, --prune or both"))
        for bad in [
            ["--prune", "1.5"], ["--prune", "0.3", "--pattern", "2:4"], ["--prune", "0.5", "--pattern", "4:8"],
        ] {
            let refused = try cli.run(["compress", "--model", model, "--out", out.path + "-p"] + bad)
            #expect(refused.status != 0 && refused.stderr.contains("--p"), "\(bad): \(refused.stderr)")
        }
        let notEmpty = try cli.run(["compress", "--model", model, "--int8", "--out", out.path])
        #expect(notEmpty.status != 0 && notEmpty.stderr.contains("not empty"))
        let whisper = try cli.run([
            "compress", "--model", WhisperFixture.modelDirectory.path, "--int8", "--out", out.path + "-w",
        ])
        #expect(whisper.status != 0 && whisper.stderr.contains("BERT-family"), "\(whisper.stderr)")
    }

    /// Magnitude pruning: exactly the asked share of zeros per layer (2:4: two in every four inputs), kept zero
    /// through int8, the folder served; the report shows what it costs without fine-tuning.
    @Test func pruningZeroesWhatItSaysAndReportsTheCost() throws {
        let model = MiniLMFixture.modelDirectory.path
        let texts = FileManager.default.temporaryDirectory.appendingPathComponent("mass-prune-\(UUID()).txt")
        try "A man is eating food.\nThe quick brown fox jumps over the lazy dog.\nHow do I reset my password?".write(
            to: texts, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: texts) }
        for (arguments, sparsity, cosineBelow) in [
            (["--prune", "0.5", "--pattern", "2:4"], 0.5, 0.9), (["--prune", "0.3", "--int8"], 0.3, 0.99),
        ] {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("mass-pruned-\(UUID())")
            defer { try? FileManager.default.removeItem(at: out) }
            let run = try cli.run(
                ["compress", "--model", model, "--out", out.path, "--calibration", texts.path] + arguments)
            #expect(run.status == 0, "\(run.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [String: Any])
            let layers = report["layers"] as? [[String: Any]] ?? []
            #expect(layers.count == 36 && layers.allSatisfy { abs(($0["sparsity"] as? Double ?? 0) - sparsity) < 1e-3 })
            let cosine = report["min_cosine"] as? Double ?? 1
            #expect(cosine > 0 && cosine < cosineBelow, "\(arguments): \(cosine)")
            let embedded = try cli.run(["embed", "--model", out.path, "A man is eating food."])
            #expect(embedded.status == 0 && !embedded.stdout.isEmpty, "\(embedded.stderr)")
        }
    }
}
