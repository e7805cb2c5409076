public import Foundation
public import MassAudio
public import MassTensor
public import MassTokenizers
import MassWeights

/// A Whisper model folder as faster-whisper ships it (CTranslate2 `model.bin`, `config.json`, `vocabulary.txt`),
/// with the long-form loop over 30-second windows. Implemented so far: greedy decoding without timestamps
/// (`beam_size=1, temperature=0, without_timestamps=True`), conditioned on the previous text.
public final class WhisperTranscriber: Sendable {
    public struct Window: Sendable {
        public let seek: Int
        public let prompt: [Int]
        public let tokens: [Int]
        public let averageLogProbability: Double
        public let noSpeechProbability: Double
        public let text: String
    }

    public struct Transcript: Sendable {
        public let windows: [Window]
        /// Text tokens of every kept window, concatenated.
        public var tokens: [Int] { windows.flatMap(\.tokens) }
        public var text: String { windows.map(\.text).joined().trimmingCharacters(in: .whitespaces) }

        /// As one segment spanning `duration` seconds (a greedy transcript has no timestamps).
        public func timed(duration: Double) -> TimedTranscript {
            TimedTranscript(
                segments: [Segment(start: 0, end: duration, text: " " + text, tokens: tokens, seek: 0)],
                prompts: windows.map(\.prompt))
        }
    }

    /// A piece of the transcript with its time span (faster-whisper's segments).
    public struct Segment: Sendable, Equatable {
        public let start: Double
        public let end: Double
        public let text: String
        public let tokens: [Int]
        public let seek: Int

        public init(start: Double, end: Double, text: String, tokens: [Int], seek: Int) {
            self.start = start
            self.end = end
            self.text = text
            self.tokens = tokens
            self.seek = seek
        }
    }

    public struct TimedTranscript: Sendable {
        public let segments: [Segment]
        /// The decoder prompt of every window, in order (for parity checks).
        public let prompts: [[Int]]
        public var text: String {
            segments.map(\.text).joined().trimmingCharacters(in: .whitespaces)
        }

        public init(segments: [Segment], prompts: [[Int]]) {
            self.segments = segments
            self.prompts = prompts
        }

    }

    struct Config: Decodable {
        let suppress_ids: [Int]
        let suppress_ids_begin: [Int]
    }

    public let encoder: WhisperEncoder
    public let decoder: WhisperDecoder
    public let tokenizer: WhisperTokenizer
    public let frontEnd = LogMelSpectrogram()
    public let suppress: Set<Int>
    public let suppressAtBegin: Set<Int>
    static let startOfTranscript = 50257
    static let startOfPrevious = 50360
    static let noSpeech = 50361
    static let noTimestamps = 50362
    static let windowFrames = 3000

    public init(directory: URL) throws {
        let file = { (name: String) in directory.appendingPathComponent(name) }
        for required in ["model.bin", "config.json", "vocabulary.txt"]
        where !FileManager.default.fileExists(atPath: file(required).path) {
            throw ModelError(
                .missingFile, "\(file(required).path) is missing; is \(directory.path) a Whisper CTranslate2 folder?")
        }
        let model: CTranslate2Model
        do {
            model = try CTranslate2Model(path: file("model.bin").path)
        } catch let error as WeightsError {
            throw ModelError(.badConfig, error.description, cause: error)
        }
        guard model.specName == "WhisperSpec" else {
            throw ModelError(
                .unsupported, "\(file("model.bin").path) holds a \(model.specName ?? "?") model, not WhisperSpec")
        }
        encoder = try WhisperEncoder(model: model)
        decoder = try WhisperDecoder(model: model)
        tokenizer = try WhisperTokenizer(vocabularyFile: file("vocabulary.txt"))
        let config = try ConfigLoading.decode(Config.self, at: file("config.json"))
        suppress = Set(config.suppress_ids)
        suppressAtBegin = Set(config.suppress_ids_begin)
    }

    /// Greedy transcription of 16 kHz mono samples, window by window as faster-whisper's `generate_segments`
    /// does without timestamps: each window starts where the previous one ended (3000 frames on), its prompt
    /// carries up to 223 previous text tokens, and a window judged silent (no-speech probability over 0.6
    /// with an average log-probability under −1) is skipped.
    public func transcribeGreedy(_ samples: [Float], pool: ComputePool) -> Transcript {
        let (features, frames) = frontEnd(samples)
        let content = frames - 1
        var seek = 0
        var previous: [Int] = []
        var windows: [Window] = []
        while seek < content {
            let size = min(Self.windowFrames, content - seek)
            let input = frontEnd.window(features, frames: frames, start: seek, count: size)
            let memory = encoder(input, pool: pool)
            let prompt =
                (previous.isEmpty ? [] : [Self.startOfPrevious] + previous.suffix(decoder.maxPositions / 2 - 1))
                + [Self.startOfTranscript, Self.noTimestamps]
            let decoded = decoder.greedy(
                memory: memory, prompt: prompt, endOfText: tokenizer.endOfText,
                startOfTranscript: Self.startOfTranscript, noSpeech: Self.noSpeech, suppress: suppress,
                suppressAtBegin: suppressAtBegin, maxNewTokens: decoder.maxPositions / 2, pool: pool)
            let average = decoded.logProbability / Double(decoded.tokens.count + 1)
            let silent = decoded.noSpeechProbability > 0.6 && average <= -1
            let text = tokenizer.decode(decoded.tokens)
            if !silent && !text.trimmingCharacters(in: .whitespaces).isEmpty {
                windows.append(
                    Window(
                        seek: seek, prompt: prompt, tokens: decoded.tokens, averageLogProbability: average,
                        noSpeechProbability: decoded.noSpeechProbability, text: text))
                previous += decoded.tokens
            }
            seek += size
        }
        return Transcript(windows: windows)
    }

    /// Beam search with timestamps over 30-second windows, as faster-whisper's `generate_segments` with its
    /// defaults at temperature 0 (beam 5, patience 1): segments split at consecutive timestamps, the next window
    /// starting at the last timestamp (or after the window when it ends on a single timestamp), prompts carrying up
    /// to 223 previous tokens (timestamps included). Temperature fallback (sampling) is not implemented: every
    /// window is decoded at temperature 0.
    public func transcribe(_ samples: [Float], beams: Int = 5, pool: ComputePool) -> TimedTranscript {
        let (features, frames) = frontEnd(samples)
        let content = frames - 1
        let special = WhisperDecoder.SpecialTokens()
        let begin = special.timestampBegin
        var seek = 0
        var previous: [Int] = []
        var segments: [Segment] = []
        var prompts: [[Int]] = []
        while seek < content {
            let size = min(Self.windowFrames, content - seek)
            let offset = Double(seek) * 0.01
            let memory = encoder(frontEnd.window(features, frames: frames, start: seek, count: size), pool: pool)
            let prompt =
                (previous.isEmpty ? [] : [Self.startOfPrevious] + previous.suffix(decoder.maxPositions / 2 - 1))
                + [Self.startOfTranscript]
            prompts.append(prompt)
            let decoded = decoder.beamSearch(
                memory: memory, prompt: prompt, beams: beams, timestamps: true, special: special, suppress: suppress,
                suppressAtBegin: suppressAtBegin, maxNewTokens: decoder.maxPositions / 2, pool: pool)
            let tokens = decoded.tokens
            let average = decoded.logProbability / Double(tokens.count + 1)
            if decoded.noSpeechProbability > 0.6 && average <= -1 {
                seek += size
                continue
            }
            let singleEnding = tokens.count >= 2 && tokens[tokens.count - 2] < begin && tokens.last! >= begin
            let consecutive = tokens.indices.dropFirst().filter { tokens[$0] >= begin && tokens[$0 - 1] >= begin }
            var windowSegments: [Segment] = []
            func segment(_ slice: ArraySlice<Int>, start: Double, end: Double) {
                windowSegments.append(
                    Segment(
                        start: start, end: end, text: tokenizer.decode(Array(slice)), tokens: Array(slice), seek: seek))
            }
            if !consecutive.isEmpty {
                var slices = consecutive
                if singleEnding { slices.append(tokens.count) }
                var last = 0
                for end in slices {
                    let slice = tokens[last..<end]
                    let startTime = offset + Double(slice.first! - begin) * 0.02
                    let endTime = offset + Double(slice.last! - begin) * 0.02
                    segment(slice, start: startTime, end: endTime)
                    last = end
                }
                if singleEnding {
                    seek += size
                } else {
                    seek += (tokens[last - 1] - begin) * 2
                }
            } else {
                var duration = Double(size) * 0.01
                if let lastTimestamp = tokens.last(where: { $0 >= begin }), lastTimestamp != begin {
                    duration = Double(lastTimestamp - begin) * 0.02
                }
                segment(tokens[...], start: offset, end: offset + duration)
                seek += size
            }
            for s in windowSegments where s.start != s.end && !s.text.trimmingCharacters(in: .whitespaces).isEmpty {
                segments.append(s)
                previous += s.tokens
            }
        }
        return TimedTranscript(segments: segments, prompts: prompts)
    }
}
