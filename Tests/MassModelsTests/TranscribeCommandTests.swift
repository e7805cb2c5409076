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
        let badTemperature = try runner.run(["transcribe", "--model", model, "--temperature", "0,hot", "x.wav"])
        #expect(badTemperature.status != 0 && badTemperature.stderr.contains("--temperature must be"))
        // Word timestamps in the JSON segments.
        let worded = try runner.run([
            "transcribe", "--model", model, "--format", "json", "--word-timestamps",
            audio.appendingPathComponent("clip4_lancaster_tiny.wav").path,
        ])
        let wordedJSON = try #require(try JSONSerialization.jsonObject(with: worded.stdout) as? [String: Any])
        let words = ((wordedJSON["segments"] as? [[String: Any]]) ?? []).flatMap {
            $0["words"] as? [[String: Any]] ?? []
        }
        #expect(
            words.compactMap { $0["word"] as? String }.joined() == " Yes, turn left at the next junction, then stop.")
        // The defaults (beam 5, timestamps) as SubRip subtitles.
        let srt = try runner.run([
            "transcribe", "--model", model, "--format", "srt", audio.appendingPathComponent("clip1_us_short.wav").path,
        ])
        #expect(srt.status == 0)
        #expect(
            String(decoding: srt.stdout, as: UTF8.self)
                == "1\n00:00:00,000 --> 00:00:05,400\nGood morning. This is a short test on the speech recognition system. Please confirm that\n\n2\n00:00:05,400 --> 00:00:07,560\nevery word is transcribed correctly.\n\n"
        )
    }
}
