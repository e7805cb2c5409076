import Foundation
import MassAudio
import MassModels
import MassTensor
import MassTesting
import MassWeights
import Testing

/// Whisper tiny.en against faster-whisper (fixtures/README.md gates), stage by stage: the encoder on the golden
/// log-mel, greedy decoding of that window, then whole clips from their audio files through Mass's own decoding.
@Suite struct WhisperParityTests {
    static let transcriber: WhisperTranscriber? = try? WhisperTranscriber(directory: WhisperFixture.modelDirectory)

    static func model() throws -> CTranslate2Model {
        try CTranslate2Model(path: WhisperFixture.modelDirectory.appendingPathComponent("model.bin").path)
    }

    static func goldenLogMel() throws -> [Float] {
        try FixturePaths.readFloats(WhisperFixture.audio.appendingPathComponent("clip1_us_short.logmel.f32"))
    }

    /// The 16 kHz samples of a fixture file, through Mass's decoder, downmix and resampler.
    static func samples(_ file: String) throws -> [Float] {
        try AudioDecoder.decode(Array(Data(contentsOf: WhisperFixture.audio.appendingPathComponent(file))))
            .resampled(to: 16000).samples
    }

    /// Max |diff| <= 1e-3 against CTranslate2's float32 output and every frame's cosine >= 0.99999.
    @Test func encoderMatchesCTranslate2() throws {
        let encoder = try WhisperEncoder(model: Self.model())
        #expect(encoder.width == 384 && encoder.heads == 6 && encoder.frames == 1500 && encoder.melBands == 80)
        let golden = try FixturePaths.readFloats(
            WhisperFixture.audio.appendingPathComponent("clip1_us_short.encoder_out.f32"))
        let out = encoder(try Self.goldenLogMel(), pool: ComputePool(threads: 2))
        #expect(out.count == golden.count)
        let worst = Comparison.maxAbsDiff(out, golden)
        var lowest = 1.0
        for t in 0..<1500 {
            let frame = (t * 384)..<((t + 1) * 384)
            lowest = min(lowest, Comparison.cosine(Array(out[frame]), Array(golden[frame])))
        }
        #expect(worst <= 1e-3, "max |diff| \(worst)")
        #expect(lowest >= 0.99999, "lowest frame cosine \(lowest)")
    }

    /// Greedy decoding of clip 1's window from the golden log-mel: the decoder alone, identical token ids.
    @Test func greedyDecoderTokensAreIdentical() throws {
        let model = try Self.model()
        let transcriber = try #require(Self.transcriber)
        let window = try WhisperFixture.load().clip("clip1_us_short").results.greedy_no_timestamps.decoder_windows[0]
        #expect(window.prompt == [50257, 50362])
        let pool = ComputePool(threads: 2)
        let encoded = try WhisperEncoder(model: model)(try Self.goldenLogMel(), pool: pool)
        let decoder = transcriber.decoder
        let search = WhisperBeamSearch(
            prompt: window.prompt, root: decoder.start(decoder.memory(encoded, pool: pool)),
            maxPositions: decoder.maxPositions, beams: 1, rules: transcriber.rules)
        while search.result == nil {
            let rows = search.rows()
            if !rows.isEmpty { search.take(decoder.step(rows, pool: pool)) }
        }
        #expect(search.result?.tokens == window.sequences_ids[0])
    }

    /// Greedy without timestamps: every window's prompt and tokens identical, and the same text.
    @Test(arguments: WhisperFixture.clipIDs) func greedyWindowsAreIdentical(id: String) throws {
        let transcriber = try #require(Self.transcriber)
        let clip = try WhisperFixture.load().clip(id)
        let transcript = transcriber.transcribe(
            try Self.samples(clip.file), options: .greedy, pool: ComputePool(threads: 2))
        let golden = clip.results.greedy_no_timestamps
        #expect(transcript.windows.count == golden.decoder_windows.count)
        for (ours, theirs) in zip(transcript.windows, golden.decoder_windows) {
            #expect(ours.prompt == theirs.prompt, "\(id) window at \(ours.seek): prompt")
            #expect(ours.tokens == theirs.sequences_ids[0], "\(id) window at \(ours.seek): tokens")
        }
        #expect(transcript.tokens == golden.token_ids)
        #expect(transcript.text == golden.text)
    }

    /// faster-whisper's defaults (beam 5, patience 1, timestamps, temperature fallback): identical text, the same
    /// number of segments, start/end times within 0.02 s; and no window falls back, as none did in the reference.
    @Test(arguments: WhisperFixture.clipIDs) func defaultsGiveTheGoldenSegments(id: String) throws {
        let transcriber = try #require(Self.transcriber)
        let clip = try WhisperFixture.load().clip(id)
        let transcript = transcriber.transcribe(try Self.samples(clip.file), pool: ComputePool(threads: 2))
        let golden = clip.results.defaults
        #expect(transcript.text == golden.text, "\(id)")
        #expect(transcript.segments.count == golden.segments.count, "\(id)")
        for (ours, theirs) in zip(transcript.segments, golden.segments) {
            #expect(
                abs(ours.start - theirs.start) <= 0.02 + 1e-9 && abs(ours.end - theirs.end) <= 0.02 + 1e-9,
                "\(id): \(ours.start)-\(ours.end) vs \(theirs.start)-\(theirs.end)")
            #expect(ours.text == theirs.text, "\(id)")
            #expect(ours.temperature == theirs.temperature, "\(id)")
            #expect(abs(ours.compressionRatio - theirs.compression_ratio) <= 1e-4, "\(id)")
            #expect(abs(ours.averageLogProbability - theirs.avg_logprob) <= 0.01, "\(id)")
            #expect(abs(ours.noSpeechProbability - theirs.no_speech_prob) <= 0.01, "\(id)")
        }
    }

    /// Real speech: jfk.flac (stereo, 44.1 kHz, 24-bit FLAC) through Mass's own decoding, downmix and resampling
    /// gives faster-whisper's transcripts, greedy and with its defaults.
    @Test func jfkTranscriptsAreGolden() throws {
        let transcriber = try #require(Self.transcriber)
        let json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: WhisperFixture.audio.appendingPathComponent("real_speech.json")))
        let clip = try #require(((json as? [String: Any])?["clips"] as? [[String: Any]])?.first)
        let results = try #require(clip["results"] as? [String: [String: Any]])
        let samples = try Self.samples("jfk.flac")
        let greedy = try #require(results["greedy_no_timestamps"]?["text"] as? String)
        #expect(transcriber.transcribe(samples, options: .greedy, pool: ComputePool(threads: 2)).text == greedy)
        let defaults = try #require(results["defaults"]?["text"] as? String)
        #expect(transcriber.transcribe(samples, pool: ComputePool(threads: 2)).text == defaults)
    }
}
