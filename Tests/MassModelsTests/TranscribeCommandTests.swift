import Foundation
import MassTesting
import Testing

/// `mass transcribe` end to end: the built binary on real speech and on files it cannot read.
@Suite struct TranscribeCommandTests {
    let runner = EmbedCommandTests()

    @Test func transcribesAndReportsBadFiles() throws {
        let audio = FixturePaths.fixtures.appendingPathComponent("audio")
        let model = FixturePaths.models.appendingPathComponent("whisper-tiny.en/1").path
        let out = try runner.run([
            "transcribe", "--model", model, "--format", "json",
            audio.appendingPathComponent("clip4_lancaster_tiny.wav").path,
            FixturePaths.packageRoot.appendingPathComponent("README.md").path, "/nonexistent.wav",
        ])
        #expect(out.status == 1)
        let line = try #require(String(decoding: out.stdout, as: UTF8.self).split(separator: "\n").first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["text"] as? String == "Yes, turn left at the next junction, then stop.")
        #expect(out.stderr.contains("README.md: not a readable audio file"))
        #expect(out.stderr.contains("/nonexistent.wav: no such file"))
        let beams = try runner.run(["transcribe", "--model", model, "--beam-size", "5", "x.wav"])
        #expect(beams.status != 0 && beams.stderr.contains("beam search is not implemented yet"))
    }
}
