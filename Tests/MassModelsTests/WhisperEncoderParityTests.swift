import Foundation
import MassAudio
import MassModels
import MassTensor
import MassTesting
import MassWeights
import Testing

/// The Whisper tiny.en encoder against CTranslate2's float32 output for clip 1's golden log-mel
/// (fixtures/README.md gate: max |diff| <= 1e-3, every frame's cosine >= 0.99999).
@Suite struct WhisperEncoderParityTests {
    @Test(arguments: [2]) func encoderMatchesCTranslate2(threads: Int) throws {
        let model = try CTranslate2Model(
            path: FixturePaths.models.appendingPathComponent("whisper-tiny.en/1/model.bin").path)
        let encoder = try WhisperEncoder(model: model)
        #expect(encoder.width == 384 && encoder.heads == 6 && encoder.frames == 1500 && encoder.melBands == 80)
        let audio = FixturePaths.fixtures.appendingPathComponent("audio")
        let features = try FixturePaths.readFloats(audio.appendingPathComponent("clip1_us_short.logmel.f32"))
        let golden = try FixturePaths.readFloats(audio.appendingPathComponent("clip1_us_short.encoder_out.f32"))
        let out = encoder(features, pool: ComputePool(threads: threads))
        #expect(out.count == golden.count)
        let worst = Comparison.maxAbsDiff(out, golden)
        var lowest = 1.0
        for t in 0..<1500 {
            lowest = min(
                lowest,
                Comparison.cosine(Array(out[(t * 384)..<((t + 1) * 384)]), Array(golden[(t * 384)..<((t + 1) * 384)])))
        }
        #expect(worst <= 1e-3, "max |diff| \(worst)")
        #expect(lowest >= 0.99999, "lowest frame cosine \(lowest)")
    }
}

/// Greedy decoding without timestamps (faster-whisper `beam_size=1, temperature=0, without_timestamps=True`) of
/// clip 1's window: the token ids must be identical to faster-whisper's.
@Suite struct WhisperGreedyParityTests {
    struct Fixture: Decodable {
        struct Clip: Decodable {
            struct Results: Decodable {
                struct Window: Decodable {
                    let prompt: [Int]
                    let sequences_ids: [[Int]]
                }
                struct Greedy: Decodable { let decoder_windows: [Window] }
                let greedy_no_timestamps: Greedy
            }
            let id: String
            let results: Results
        }
        let clips: [Clip]
    }

    struct Config: Decodable {
        let suppress_ids: [Int]
        let suppress_ids_begin: [Int]
    }

    @Test func clipOneTokensAreIdentical() throws {
        let folder = FixturePaths.models.appendingPathComponent("whisper-tiny.en/1")
        let model = try CTranslate2Model(path: folder.appendingPathComponent("model.bin").path)
        let config = try JSONDecoder().decode(
            Config.self, from: Data(contentsOf: folder.appendingPathComponent("config.json")))
        let audio = FixturePaths.fixtures.appendingPathComponent("audio")
        let fixture = try JSONDecoder().decode(
            Fixture.self, from: Data(contentsOf: audio.appendingPathComponent("whisper.json")))
        let window = try #require(
            fixture.clips.first { $0.id == "clip1_us_short" }?.results.greedy_no_timestamps.decoder_windows.first)
        #expect(window.prompt == [50257, 50362])
        let pool = ComputePool(threads: 2)
        let memory = try WhisperEncoder(model: model)(
            FixturePaths.readFloats(audio.appendingPathComponent("clip1_us_short.logmel.f32")), pool: pool)
        let decoder = try WhisperDecoder(model: model)
        let tokens = decoder.greedy(
            memory: memory, prompt: window.prompt, endOfText: 50256, startOfTranscript: 50257, noSpeech: 50361,
            suppress: Set(config.suppress_ids), suppressAtBegin: Set(config.suppress_ids_begin), maxNewTokens: 224,
            pool: pool
        ).tokens
        #expect(tokens == window.sequences_ids[0])
    }
}

/// Every fixture clip, from its WAV file through Mass's decoder, front end, encoder and greedy long-form loop:
/// each window's prompt and tokens identical to faster-whisper's, and the same text.
@Suite struct WhisperGreedyTranscriptTests {
    struct Fixture: Decodable {
        struct Clip: Decodable {
            struct Results: Decodable {
                struct Window: Decodable {
                    let prompt: [Int]
                    let sequences_ids: [[Int]]
                }
                struct Greedy: Decodable {
                    let text: String
                    let token_ids: [Int]
                    let decoder_windows: [Window]
                }
                let greedy_no_timestamps: Greedy
            }
            let id: String
            let file: String
            let results: Results
        }
        let clips: [Clip]
    }

    static let transcriber: WhisperTranscriber? = try? WhisperTranscriber(
        directory: FixturePaths.models.appendingPathComponent("whisper-tiny.en/1"))

    @Test(arguments: [
        "clip1_us_short", "clip2_gb_female", "clip3_scotland_fast", "clip4_lancaster_tiny", "clip5_long_us",
    ])
    func greedyWindowsAreIdentical(id: String) throws {
        let transcriber = try #require(Self.transcriber)
        let audio = FixturePaths.fixtures.appendingPathComponent("audio")
        let fixture = try JSONDecoder().decode(
            Fixture.self, from: Data(contentsOf: audio.appendingPathComponent("whisper.json")))
        let clip = try #require(fixture.clips.first { $0.id == id })
        let decoded = try AudioDecoder.decode(Array(Data(contentsOf: audio.appendingPathComponent(clip.file))))
        let transcript = transcriber.transcribeGreedy(
            decoded.resampled(to: 16000).samples, pool: ComputePool(threads: 2))
        let golden = clip.results.greedy_no_timestamps
        #expect(transcript.windows.count == golden.decoder_windows.count)
        for (ours, theirs) in zip(transcript.windows, golden.decoder_windows) {
            #expect(ours.prompt == theirs.prompt, "\(id) window at \(ours.seek): prompt")
            #expect(ours.tokens == theirs.sequences_ids[0], "\(id) window at \(ours.seek): tokens")
        }
        #expect(transcript.tokens == golden.token_ids)
        #expect(transcript.text == golden.text)
    }
}

/// Real speech: jfk.flac (stereo, 44.1 kHz, 24-bit FLAC) through Mass's own decoding, downmix and resampling
/// gives faster-whisper's greedy transcript.
@Suite struct WhisperRealSpeechTests {
    @Test func jfkGreedyTextIsGolden() throws {
        let transcriber = try #require(WhisperGreedyTranscriptTests.transcriber)
        let audio = FixturePaths.fixtures.appendingPathComponent("audio")
        let json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: audio.appendingPathComponent("real_speech.json")))
        let clip = try #require(((json as? [String: Any])?["clips"] as? [[String: Any]])?.first)
        let results = try #require(clip["results"] as? [String: [String: Any]])
        let golden = try #require(results["greedy_no_timestamps"]?["text"] as? String)
        let decoded = try AudioDecoder.decode(Array(Data(contentsOf: audio.appendingPathComponent("jfk.flac"))))
        let transcript = transcriber.transcribeGreedy(
            decoded.resampled(to: 16000).samples, pool: ComputePool(threads: 2))
        #expect(transcript.text == golden)
    }
}

/// faster-whisper's defaults (beam 5, patience 1, timestamps, temperature 0) on every fixture clip: identical
/// text, the same number of segments, and start/end times within 0.02 s (fixtures/README.md gates).
@Suite struct WhisperDefaultsParityTests {
    struct Fixture: Decodable {
        struct Clip: Decodable {
            struct Results: Decodable {
                struct Segment: Decodable {
                    let start: Double
                    let end: Double
                    let text: String
                }
                struct Defaults: Decodable {
                    let text: String
                    let segments: [Segment]
                }
                let defaults: Defaults
            }
            let id: String
            let file: String
            let results: Results
        }
        let clips: [Clip]
    }

    @Test(arguments: [
        "clip1_us_short", "clip2_gb_female", "clip3_scotland_fast", "clip4_lancaster_tiny", "clip5_long_us",
    ])
    func defaultsGiveTheGoldenSegments(id: String) throws {
        let transcriber = try #require(WhisperGreedyTranscriptTests.transcriber)
        let audio = FixturePaths.fixtures.appendingPathComponent("audio")
        let fixture = try JSONDecoder().decode(
            Fixture.self, from: Data(contentsOf: audio.appendingPathComponent("whisper.json")))
        let clip = try #require(fixture.clips.first { $0.id == id })
        let decoded = try AudioDecoder.decode(Array(Data(contentsOf: audio.appendingPathComponent(clip.file))))
        let transcript = transcriber.transcribe(decoded.resampled(to: 16000).samples, pool: ComputePool(threads: 2))
        let golden = clip.results.defaults
        #expect(transcript.text == golden.text, "\(id)")
        #expect(transcript.segments.count == golden.segments.count, "\(id)")
        for (ours, theirs) in zip(transcript.segments, golden.segments) {
            #expect(
                abs(ours.start - theirs.start) <= 0.02 + 1e-9 && abs(ours.end - theirs.end) <= 0.02 + 1e-9,
                "\(id): \(ours.start)-\(ours.end) vs \(theirs.start)-\(theirs.end)")
            #expect(ours.text == theirs.text, "\(id)")
        }
    }
}
