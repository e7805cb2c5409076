import Foundation
import MassAudio
import MassModels
import MassTensor
import MassTesting
import Testing

/// Multilingual Whisper (whisper-base, `scripts/fetch-models.sh models-extra extra`) against faster-whisper 1.2.1
/// with transcribe() defaults (goldens from scripts/make-whisper-base-goldens.py): English clips and German,
/// Spanish and Italian speech synthesized by espeak-ng, each with its language detected, given, and translated into
/// English: the same detected language with its probability within 0.01, identical text, the same number of
/// segments, times within 0.02 s.
@Suite(.serialized) struct WhisperMultilingualParityTests {
    struct Golden: Decodable {
        struct Segment: Decodable {
            let start: Double
            let end: Double
            let text: String
        }
        struct Case: Decodable {
            let name: String
            let file: String
            let spoken: String
            let language: String
            let language_probability: Double
            let text: String
            let segments: [Segment]
        }
        let cases: [Case]
    }

    static let folder = FixturePaths.extraModels.appendingPathComponent("whisper-base/1")
    static let transcriber = try? WhisperTranscriber(directory: folder)

    static func samples(_ relative: String) throws -> [Float] {
        let url =
            relative.hasPrefix("../shared/")
            ? FixturePaths.fixtures.appendingPathComponent(String(relative.dropFirst("../shared/fixtures/".count)))
            : FixturePaths.packageRoot.appendingPathComponent(relative)
        return try AudioDecoder.decode(Array(Data(contentsOf: url))).resampled(to: 16000).samples
    }

    @Test func detectsTranscribesAndTranslatesAsFasterWhisper() throws {
        let transcriber = try #require(Self.transcriber, "run `make models-extra`: \(Self.folder.path)")
        #expect(transcriber.isMultilingual && transcriber.languages.count == 99)
        let golden = try JSONDecoder().decode(
            Golden.self,
            from: Data(
                contentsOf: FixturePaths.packageRoot.appendingPathComponent(
                    "Tests/MassModelsTests/Goldens/whisper-base.json")))
        #expect(golden.cases.count == 18)
        let pool = ComputePool(threads: 2)
        var worstProbability = 0.0
        for c in golden.cases {
            var options = WhisperOptions()
            let kind = c.name.split(separator: "/").last.map(String.init) ?? ""
            if kind == "given" { options.language = c.spoken }
            if kind == "translate" { options.task = .translate }
            let t = transcriber.transcribe(try Self.samples(c.file), options: options, pool: pool)
            #expect(t.language == c.language, "\(c.name): language")
            if kind == "given" {
                #expect(t.languageProbability == nil, "\(c.name): a given language is not detected")
            } else {
                let p = try #require(t.languageProbability)
                worstProbability = max(worstProbability, abs(p - c.language_probability))
                #expect(abs(p - c.language_probability) <= 0.01, "\(c.name): probability \(p)")
            }
            #expect(t.text == c.text, "\(c.name)")
            #expect(t.segments.count == c.segments.count, "\(c.name): segments")
            for (ours, theirs) in zip(t.segments, c.segments) {
                #expect(abs(ours.start - theirs.start) <= 0.02 + 1e-9 && abs(ours.end - theirs.end) <= 0.02 + 1e-9)
                #expect(ours.text == theirs.text, "\(c.name)")
                #expect(ours.temperature == 0, "\(c.name): no fallback")
            }
        }
        print("whisper-base: largest language-probability difference \(worstProbability)")
    }

    /// Options a model cannot honour are refused by name.
    @Test func impossibleOptionsAreRefused() throws {
        let base = try #require(Self.transcriber)
        var options = WhisperOptions()
        options.language = "xx"
        #expect(throws: ModelError.self) { try base.check(options) }
        let english = try WhisperTranscriber(directory: WhisperFixture.modelDirectory)
        #expect(!english.isMultilingual)
        options.language = "de"
        #expect(throws: ModelError.self) { try english.check(options) }
        options.language = nil
        options.task = .translate
        #expect(throws: ModelError.self) { try english.check(options) }
        options.task = .transcribe
        options.language = "en"
        try english.check(options)
    }
}
