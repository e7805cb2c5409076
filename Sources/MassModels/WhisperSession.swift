import CZlib
import Foundation
import MassAudio
import MassTensor
import MassTokenizers

/// How to decode, with faster-whisper's `transcribe()` defaults.
public struct WhisperOptions: Sendable, Equatable {
    /// Beams at temperature 0 (1 is greedy).
    public var beamSize = 5
    /// Hypotheses sampled at a temperature above 0.
    public var bestOf = 5
    public var patience = 1.0
    public var timestamps = true
    /// Tried in order while a window's result fails the thresholds below.
    public var temperatures: [Double] = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    public var compressionRatioThreshold: Double? = 2.4
    public var logProbThreshold: Double? = -1
    public var noSpeechThreshold: Double? = 0.6
    public var conditionOnPreviousText = true
    /// Previous text stops conditioning once a window needed a temperature above this.
    public var promptResetOnTemperature = 0.5
    /// Token ids given as the text before the audio (faster-whisper's `initial_prompt`, BPE-encoded).
    public var initialPrompt: [Int] = []
    /// Word-level timestamps (faster-whisper's `word_timestamps`); they also move where the next window starts.
    public var wordTimestamps = false
    /// The spoken language's code ("de"); nil detects it on the first 30 s (multilingual models; English-only
    /// models are English).
    public var language: String?
    public var task = Task.transcribe

    /// Transcribe in the spoken language, or translate into English (multilingual models).
    public enum Task: String, Sendable {
        case transcribe, translate
    }

    public init() {}

    /// faster-whisper's greedy mode of the fixtures: `beam_size=1, temperature=0, without_timestamps=True`.
    public static var greedy: WhisperOptions {
        var o = WhisperOptions()
        o.beamSize = 1
        o.timestamps = false
        o.temperatures = [0]
        return o
    }
}

/// A clip's log-mel features [80, frames] (row-major), computed before it joins the sessions on the worker.
public struct WhisperFeatures: Sendable {
    public let values: [Float]
    public let frames: Int
    /// Seconds of audio.
    public var seconds: Double { Double(frames - 1) / 100 }
}

/// One clip's transcription as a resumable state machine (faster-whisper's `generate_segments` and
/// `generate_with_fallback`): a window waits for its encoder output, then runs searches, one per temperature
/// until a result passes the thresholds, then yields its segments and moves on. `WhisperTranscriber.advance`
/// drives many sessions at once so that their encoder passes and decoder steps are shared.
public final class WhisperSession {
    public let options: WhisperOptions
    let transcriber: WhisperTranscriber
    let features: [Float]
    let frames: Int
    let content: Int
    var seek = 0
    var allTokens: [Int]
    var promptResetSince = 0
    var lastSpeechTimestamp = 0.0
    var segments: [WhisperTranscriber.Segment] = []
    var windows: [WhisperTranscriber.Window] = []
    // The window being decoded.
    var size = 0
    var prompt: [Int] = []
    var memory: WhisperDecoder.Memory?
    var attempt = 0
    var attempts: [(decoded: WhisperDecoder.Decoded, average: Double, ratio: Double)] = []
    public private(set) var search: WhisperSearch?
    /// The language decoded in: given, "en" for an English-only model, or detected on the first window (nil until
    /// then).
    var language: String?
    var languageProbabilities: [WhisperTranscriber.LanguageProbability] = []
    /// The window's start tokens (`sot_sequence`): set once the language is known.
    var startSequence: [Int] = []

    init(transcriber: WhisperTranscriber, features: WhisperFeatures, options: WhisperOptions) {
        self.transcriber = transcriber
        self.options = options
        (self.features, frames) = (features.values, features.frames)
        content = frames - 1
        allTokens = options.initialPrompt
        language = transcriber.isMultilingual ? options.language : "en"
        if language != nil { startSequence = transcriber.startSequence(language: language, task: options.task) }
        startWindow()
    }

    /// Every window is done.
    public var isFinished: Bool { seek >= content }
    /// The language must be detected before anything is decoded (a multilingual model, no language given).
    public var needsDetection: Bool { startSequence.isEmpty && content > 0 }
    /// The current window waits for the encoder.
    public var needsEncoding: Bool { !isFinished && !needsDetection && memory == nil }

    public var transcript: WhisperTranscriber.TimedTranscript {
        WhisperTranscriber.TimedTranscript(
            segments: segments, windows: windows, language: language, languageProbabilities: languageProbabilities)
    }

    /// The features faster-whisper's `detect_language` encodes: the first 30 s of every frame (one more than
    /// the first window holds, for a shorter clip), padded.
    func detectionFeatures() -> [Float] {
        transcriber.frontEnd.window(
            features, frames: frames, start: 0, count: min(WhisperTranscriber.windowFrames, frames))
    }

    /// The first window's language probabilities: decode in the most probable language.
    func detected(_ probabilities: [WhisperTranscriber.LanguageProbability]) {
        languageProbabilities = probabilities
        language = probabilities.first?.code
        startSequence = transcriber.startSequence(language: language, task: options.task)
    }

    func startWindow() {
        size = min(WhisperTranscriber.windowFrames, content - seek)
        memory = nil
        search = nil
    }

    /// The current window's log-mel features [80, 3000] (padded).
    func windowFeatures() -> [Float] {
        transcriber.frontEnd.window(features, frames: frames, start: seek, count: size)
    }

    /// The current window's encoder output is ready: decode it at the first temperature.
    func encoded(_ memory: WhisperDecoder.Memory) {
        self.memory = memory
        let previous = allTokens[promptResetSince...]
        let decoder = transcriber.decoder
        prompt =
            (previous.isEmpty
                ? [] : [transcriber.startOfPrevious] + previous.suffix(decoder.maxPositions / 2 - 1))
            + startSequence + (options.timestamps ? [] : [transcriber.rules.noTimestamps])
        attempt = 0
        attempts = []
        startSearch()
    }

    func startSearch() {
        let temperature = options.temperatures[attempt]
        let root = transcriber.decoder.start(memory!)
        let maxPositions = transcriber.decoder.maxPositions
        if temperature > 0 {
            search = WhisperSamplingSearch(
                prompt: prompt, root: root, maxPositions: maxPositions, count: options.bestOf,
                temperature: temperature, seed: UInt64(seek) << 8 | UInt64(attempt), rules: transcriber.rules)
        } else {
            search = WhisperBeamSearch(
                prompt: prompt, root: root, maxPositions: maxPositions, beams: options.beamSize,
                patience: options.patience, rules: transcriber.rules)
        }
    }

    /// The search has its result: fall back to the next temperature, or finish the window.
    func searched(pool: ComputePool) {
        guard let decoded = search?.result else { return }
        let temperature = options.temperatures[attempt]
        let average = decoded.logProbability / Double(decoded.tokens.count + 1)
        let text = transcriber.tokenizer.decode(decoded.tokens).trimmingCharacters(in: .whitespaces)
        let ratio = Self.compressionRatio(text)
        windows.append(
            .init(
                seek: seek, prompt: prompt, tokens: decoded.tokens, temperature: temperature,
                averageLogProbability: average, noSpeechProbability: decoded.noSpeechProbability,
                compressionRatio: ratio))
        attempts.append((decoded, average, ratio))
        var fallback = false
        if let threshold = options.compressionRatioThreshold, ratio > threshold { fallback = true }
        if let threshold = options.logProbThreshold, average < threshold { fallback = true }
        if let silence = options.noSpeechThreshold, decoded.noSpeechProbability > silence,
            let threshold = options.logProbThreshold, average < threshold
        {
            fallback = false
        }
        if fallback && attempt + 1 < options.temperatures.count {
            attempt += 1
            startSearch()
            return
        }
        var chosen = attempts.count - 1
        if fallback {
            // Every temperature failed: the most probable result among those not too repetitive (or all).
            let passing = attempts.indices.filter {
                attempts[$0].ratio <= options.compressionRatioThreshold ?? .infinity
            }
            chosen = (passing.isEmpty ? Array(attempts.indices) : passing).max {
                attempts[$0].average < attempts[$1].average
            }!
        }
        finishWindow(
            attempts[chosen].decoded, average: attempts[chosen].average, ratio: attempts[chosen].ratio,
            temperature: temperature, pool: pool)
    }

    func finishWindow(
        _ decoded: WhisperDecoder.Decoded, average: Double, ratio: Double, temperature: Double, pool: ComputePool
    ) {
        defer {
            if !isFinished { startWindow() } else { memory = nil; search = nil }
        }
        if let silence = options.noSpeechThreshold, decoded.noSpeechProbability > silence,
            !(options.logProbThreshold.map { average > $0 } ?? false)
        {
            seek += size
            return
        }
        let windowSeek = seek
        let begin = transcriber.rules.timestampBegin
        let tokens = decoded.tokens
        let offset = Double(seek) * 0.01
        var pieces: [(tokens: ArraySlice<Int>, start: Double, end: Double)] = []
        let singleEnding = tokens.count >= 2 && tokens[tokens.count - 2] < begin && tokens.last! >= begin
        let consecutive = tokens.indices.dropFirst().filter { tokens[$0] >= begin && tokens[$0 - 1] >= begin }
        if !consecutive.isEmpty {
            var slices = consecutive
            if singleEnding { slices.append(tokens.count) }
            var last = 0
            for end in slices {
                let slice = tokens[last..<end]
                pieces.append(
                    (slice, offset + Double(slice.first! - begin) * 0.02, offset + Double(slice.last! - begin) * 0.02))
                last = end
            }
            seek += singleEnding ? size : (tokens[last - 1] - begin) * 2
        } else {
            var duration = Double(size) * 0.01
            if let lastTimestamp = tokens.last(where: { $0 >= begin }), lastTimestamp != begin {
                duration = Double(lastTimestamp - begin) * 0.02
            }
            pieces.append((tokens[...], offset, offset + duration))
            seek += size
        }
        var words = [[WhisperTranscriber.Word]](repeating: [], count: pieces.count)
        if options.wordTimestamps, let memory {
            words = addWordTimestamps(&pieces, memory: memory, offset: offset, pool: pool)
            let lastWordEnd = words.last(where: { !$0.isEmpty })?.last?.end ?? pieces.last?.end
            if !singleEnding, let lastWordEnd, lastWordEnd > offset { seek = Int((lastWordEnd * 100).rounded()) }
            if let lastWordEnd { lastSpeechTimestamp = lastWordEnd }
        }
        for ((slice, start, end), words) in zip(pieces, words) {
            let text = transcriber.tokenizer.decode(Array(slice))
            guard start != end, !text.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            segments.append(
                .init(
                    start: start, end: end, text: text, tokens: Array(slice), seek: windowSeek,
                    temperature: temperature, averageLogProbability: average, compressionRatio: ratio,
                    noSpeechProbability: decoded.noSpeechProbability, words: words))
            allTokens += slice
        }
        if !options.conditionOnPreviousText || temperature > options.promptResetOnTemperature {
            promptResetSince = allTokens.count
        }
    }

    /// faster-whisper's `add_word_timestamps` for one window: aligns the words, bounds words that run long at
    /// sentence ends and after pauses (twice the median word duration, at most 1.4 s), merges punctuation into
    /// its word, hands each piece its words and lets word times correct the piece's start and end.
    func addWordTimestamps(
        _ pieces: inout [(tokens: ArraySlice<Int>, start: Double, end: Double)], memory: WhisperDecoder.Memory,
        offset: Double, pool: ComputePool
    ) -> [[WhisperTranscriber.Word]] {
        let eot = transcriber.tokenizer.endOfText
        let textPerPiece = pieces.map { $0.tokens.filter { $0 < eot } }
        var alignment = transcriber.findAlignment(
            textPerPiece.flatMap { $0 }, start: startSequence, language: language, memory: memory, frames: size,
            pool: pool)
        let durations = alignment.map { $0.end - $0.start }.filter { $0 != 0 }.sorted()
        var median = 0.0
        if !durations.isEmpty {
            let mid = durations.count / 2
            median = durations.count % 2 == 1 ? durations[mid] : (durations[mid - 1] + durations[mid]) / 2
        }
        median = min(0.7, median)
        let longest = median * 2
        if !durations.isEmpty {
            // Python's `word in ".。!！?？"`: a substring test.
            let isSentenceEnd = { (w: String) in w.isEmpty || ".。!！?？".contains(w) }
            for i in alignment.indices.dropFirst() where alignment[i].end - alignment[i].start > longest {
                if isSentenceEnd(alignment[i].word) {
                    alignment[i].end = alignment[i].start + longest
                } else if isSentenceEnd(alignment[i - 1].word) {
                    alignment[i].start = alignment[i].end - longest
                }
            }
        }
        Self.mergePunctuations(&alignment)
        var result: [[WhisperTranscriber.Word]] = []
        var wordIndex = 0
        var lastSpeech = lastSpeechTimestamp
        let round2 = { (x: Double) in (x * 100).rounded() / 100 }
        for p in pieces.indices {
            var words: [WhisperTranscriber.Word] = []
            var saved = 0
            while wordIndex < alignment.count && saved < textPerPiece[p].count {
                let timing = alignment[wordIndex]
                if !timing.word.isEmpty {
                    words.append(
                        .init(
                            word: timing.word, start: round2(offset + timing.start), end: round2(offset + timing.end),
                            probability: timing.probability))
                }
                saved += timing.tokens.count
                wordIndex += 1
            }
            if !words.isEmpty {
                // The first and second word after a pause are at most twice the median duration.
                if words[0].end - lastSpeech > median * 4
                    && (words[0].end - words[0].start > longest
                        || (words.count > 1 && words[1].end - words[0].start > longest * 2))
                {
                    if words.count > 1 && words[1].end - words[1].start > longest {
                        let boundary = max(words[1].end / 2, words[1].end - longest)
                        words[0].end = boundary
                        words[1].start = boundary
                    }
                    words[0].start = max(0, words[0].end - longest)
                }
                // Prefer the piece's start when the first word is too long, else the word's.
                if pieces[p].start < words[0].end && pieces[p].start - 0.5 > words[0].start {
                    words[0].start = max(0, min(words[0].end - median, pieces[p].start))
                } else {
                    pieces[p].start = words[0].start
                }
                if pieces[p].end > words[words.count - 1].start && pieces[p].end + 0.5 < words[words.count - 1].end {
                    words[words.count - 1].end = max(words[words.count - 1].start + median, pieces[p].end)
                } else {
                    pieces[p].end = words[words.count - 1].end
                }
                lastSpeech = pieces[p].end
            }
            result.append(words)
        }
        return result
    }

    /// faster-whisper's `merge_punctuations`: opening marks join the following word, closing marks the previous one
    /// (their own entries left empty).
    static func mergePunctuations(_ words: inout [WhisperTranscriber.AlignedWord]) {
        let prepended = "\"'“¿([{-"
        let appended = "\"'.。,，!！?？:：”)]}、"
        // Python's `x in "..."` is a substring test (the empty string included).
        func within(_ x: String, _ marks: String) -> Bool { x.isEmpty || marks.contains(x) }
        var i = words.count - 2
        var j = words.count - 1
        while i >= 0 {
            let trimmed = words[i].word.trimmingCharacters(in: .whitespaces)
            if words[i].word.hasPrefix(" ") && within(trimmed, prepended) {
                words[j].word = words[i].word + words[j].word
                words[j].tokens = words[i].tokens + words[j].tokens
                words[i].word = ""
                words[i].tokens = []
            } else {
                j = i
            }
            i -= 1
        }
        i = 0
        j = 1
        while j < words.count {
            if !words[i].word.hasSuffix(" ") && within(words[j].word, appended) {
                words[i].word += words[j].word
                words[i].tokens += words[j].tokens
                words[j].word = ""
                words[j].tokens = []
            } else {
                i = j
            }
            j += 1
        }
    }

    /// UTF-8 length over zlib-compressed length (default level), as faster-whisper's `get_compression_ratio`.
    static func compressionRatio(_ text: String) -> Double {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return 0 }
        var length = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(length))
        let status = compress(&out, &length, bytes, uLong(bytes.count))
        guard status == Z_OK, length > 0 else { return 0 }
        return Double(bytes.count) / Double(length)
    }
}
