import Foundation
import MassAudio
import MassModels
import MassTensor
import MassTesting
import Testing

/// Decoding options beyond the shared fixtures, against faster-whisper's results recorded by
/// scripts/make-whisper-goldens.py: an initial prompt, and the temperature fallback running through every
/// temperature (log_prob_threshold 0, so no result passes).
@Suite struct WhisperOptionsParityTests {
    struct Golden: Decodable {
        struct Word: Decodable {
            let word: String
            let start: Double
            let end: Double
            let probability: Double
        }
        struct Segment: Decodable {
            let words: [Word]
            let start: Double
            let end: Double
            let text: String
            let temperature: Double
            let avg_logprob: Double
        }
        struct Call: Decodable {
            let prompt: [Int]
            let temperature: Double
        }
        struct Case: Decodable {
            let name: String
            let file: String
            let text: String
            let segments: [Segment]
            let generate_calls: [Call]
        }
        let cases: [Case]
    }

    static func golden(_ name: String) throws -> Golden.Case {
        let url = FixturePaths.packageRoot.appendingPathComponent("Tests/MassModelsTests/Goldens/whisper-options.json")
        let all = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
        return try #require(all.cases.first { $0.name == name })
    }

    static func check(_ transcript: WhisperTranscriber.TimedTranscript, against golden: Golden.Case) {
        #expect(transcript.text == golden.text)
        #expect(transcript.segments.count == golden.segments.count)
        for (ours, theirs) in zip(transcript.segments, golden.segments) {
            #expect(abs(ours.start - theirs.start) <= 0.02 + 1e-9 && abs(ours.end - theirs.end) <= 0.02 + 1e-9)
            #expect(ours.text == theirs.text)
            #expect(ours.temperature == theirs.temperature)
            #expect(abs(ours.averageLogProbability - theirs.avg_logprob) <= 0.01)
        }
        #expect(transcript.windows.map(\.prompt) == golden.generate_calls.map(\.prompt))
        #expect(transcript.windows.map(\.temperature) == golden.generate_calls.map(\.temperature))
    }

    @Test func initialPromptConditionsTheFirstWindow() throws {
        let transcriber = try #require(WhisperParityTests.transcriber)
        let golden = try Self.golden("initial_prompt")
        var options = WhisperOptions()
        options.initialPrompt = try transcriber.promptTokens("Speech recognition status report, Mass.")
        let transcript = transcriber.transcribe(
            try WhisperParityTests.samples(golden.file), options: options, pool: ComputePool(threads: 2))
        Self.check(transcript, against: golden)
    }

    /// Window 1 is judged silent (no-speech probability 0.62 with a failing log-probability) and skipped; window 2
    /// is decoded at every temperature, the most probable result kept and reported at the last temperature.
    @Test func fallbackRunsThroughEveryTemperature() throws {
        let transcriber = try #require(WhisperParityTests.transcriber)
        let golden = try Self.golden("log_prob_threshold_0")
        var options = WhisperOptions()
        options.logProbThreshold = 0
        let samples = try WhisperParityTests.samples(golden.file)
        let transcript = transcriber.transcribe(samples, options: options, pool: ComputePool(threads: 2))
        Self.check(transcript, against: golden)
        // Sampling is seeded: the same input decodes the same way every time.
        let again = transcriber.transcribe(samples, options: options, pool: ComputePool(threads: 2))
        #expect(again.windows.map(\.tokens) == transcript.windows.map(\.tokens))
    }

    /// Word timestamps: the same words with times within 0.02 s and probabilities within 0.01; on the long clip the
    /// words also move where the second window starts.
    @Test(arguments: ["word_timestamps_long", "word_timestamps_short"])
    func wordTimestampsMatchFasterWhisper(name: String) throws {
        let transcriber = try #require(WhisperParityTests.transcriber)
        let golden = try Self.golden(name)
        var options = WhisperOptions()
        options.wordTimestamps = true
        let transcript = transcriber.transcribe(
            try WhisperParityTests.samples(golden.file), options: options, pool: ComputePool(threads: 2))
        Self.check(transcript, against: golden)
        let ours = transcript.segments.flatMap(\.words)
        let theirs = golden.segments.flatMap(\.words)
        #expect(ours.map(\.word) == theirs.map(\.word))
        for (a, b) in zip(ours, theirs) {
            #expect(
                abs(a.start - b.start) <= 0.02 + 1e-9 && abs(a.end - b.end) <= 0.02 + 1e-9,
                "\(a.word): \(a.start)-\(a.end) vs \(b.start)-\(b.end)")
            #expect(abs(a.probability - b.probability) <= 0.01, "\(a.word)")
        }
    }

    /// Sessions advanced together give each request the transcript it gets alone (the same tokens, times and text;
    /// probabilities equal up to float rounding, as batched products sum in another order).
    @Test func sessionsSharingStepsGiveTheSameTranscripts() throws {
        let transcriber = try #require(WhisperParityTests.transcriber)
        let pool = ComputePool(threads: 2)
        let clips = try ["clip1_us_short.wav", "clip4_lancaster_tiny.wav", "clip2_gb_female.wav"].map {
            try WhisperParityTests.samples($0)
        }
        let alone = clips.map { transcriber.transcribe($0, pool: pool).segments }
        var greedy = WhisperOptions.greedy
        greedy.temperatures = [0, 0.5]
        let sessions = clips.map { transcriber.session($0) } + [transcriber.session(clips[0], options: greedy)]
        while sessions.contains(where: { !$0.isFinished }) {
            transcriber.advance(sessions.filter { !$0.isFinished }, pool: pool, maxWindows: 2)
        }
        for (session, segments) in zip(sessions, alone) {
            let together = session.transcript.segments
            #expect(together.map(\.tokens) == segments.map(\.tokens))
            #expect(together.map(\.start) == segments.map(\.start) && together.map(\.end) == segments.map(\.end))
            #expect(together.map(\.text) == segments.map(\.text))
            for (a, b) in zip(together, segments) {
                #expect(abs(a.averageLogProbability - b.averageLogProbability) <= 1e-4)
                #expect(abs(a.noSpeechProbability - b.noSpeechProbability) <= 1e-4)
            }
        }
        #expect(sessions[3].transcript.text == transcriber.transcribe(clips[0], options: greedy, pool: pool).text)
    }
}
