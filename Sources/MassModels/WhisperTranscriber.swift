public import Foundation
public import MassAudio
public import MassTensor
public import MassTokenizers
import MassWeights

/// A Whisper model folder as faster-whisper ships it (CTranslate2 `model.bin`, `config.json`, `vocabulary.txt`,
/// `tokenizer.json` for prompts), with the long-form loop over 30-second windows (`WhisperSession`).
public final class WhisperTranscriber: TaskModel {
    /// One decoder call: a window at one temperature (the fallback may decode a window several times).
    public struct Window: Sendable {
        public let seek: Int
        public let prompt: [Int]
        public let tokens: [Int]
        public let temperature: Double
        public let averageLogProbability: Double
        public let noSpeechProbability: Double
        public let compressionRatio: Double
    }

    /// A piece of the transcript with its time span and the statistics of the decode it came from (faster-whisper's
    /// segments).
    public struct Segment: Sendable, Equatable {
        public let start: Double
        public let end: Double
        public let text: String
        public let tokens: [Int]
        public let seek: Int
        public let temperature: Double
        public let averageLogProbability: Double
        public let compressionRatio: Double
        public let noSpeechProbability: Double
        /// With word timestamps; empty otherwise.
        public let words: [Word]

        /// Statistics default to 0 for segments read from another implementation's answer (a provider's).
        public init(
            start: Double, end: Double, text: String, tokens: [Int] = [], seek: Int = 0, temperature: Double = 0,
            averageLogProbability: Double = 0, compressionRatio: Double = 0, noSpeechProbability: Double = 0,
            words: [Word] = []
        ) {
            self.start = start
            self.end = end
            self.text = text
            self.tokens = tokens
            self.seek = seek
            self.temperature = temperature
            self.averageLogProbability = averageLogProbability
            self.compressionRatio = compressionRatio
            self.noSpeechProbability = noSpeechProbability
            self.words = words
        }
    }

    public struct TimedTranscript: Sendable {
        public let segments: [Segment]
        /// Every decoder call, in order (for parity checks).
        public let windows: [Window]

        /// `windows` is empty for a transcript read from a provider's answer.
        public init(segments: [Segment], windows: [Window] = []) {
            self.segments = segments
            self.windows = windows
        }

        public var text: String {
            segments.map(\.text).joined().trimmingCharacters(in: .whitespaces)
        }
        /// Text tokens of every segment, concatenated.
        public var tokens: [Int] { segments.flatMap(\.tokens) }
    }

    struct Config: Decodable {
        let suppress_ids: [Int]
        let suppress_ids_begin: [Int]
        let alignment_heads: [[Int]]?
    }

    public let encoder: WhisperEncoder
    public let decoder: WhisperDecoder
    public let tokenizer: WhisperTokenizer
    /// The BPE encoder for prompts (nil when the folder has no tokenizer.json).
    public let promptEncoder: ByteLevelBPE?
    public let frontEnd = LogMelSpectrogram()
    public let rules: WhisperSearch.Rules
    /// The (layer, head) pairs whose cross-attention follows the timing of words (config.json).
    let alignmentHeads: [(layer: Int, head: Int)]
    /// `<|startofprev|>`: the previous text's marker in a prompt (from the vocabulary).
    let startOfPrevious: Int
    static let windowFrames = 3000

    /// `precision`: the encoder's and decoder's linear layers (cross-attention projections included) in float32
    /// or int8.
    public init(directory: URL, precision: Linear.Precision = .float32) throws {
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
        encoder = try WhisperEncoder(model: model, precision: precision)
        decoder = try WhisperDecoder(model: model, precision: precision)
        let vocabulary = try WhisperTokenizer(vocabularyFile: file("vocabulary.txt"))
        tokenizer = vocabulary
        let config = try ConfigLoading.decode(Config.self, at: file("config.json"))
        // The special tokens' ids come from the model's own vocabulary (they differ between English-only and
        // multilingual models).
        func special(_ names: String...) throws -> Int {
            for name in names { if let id = vocabulary.id(of: name) { return id } }
            throw ModelError(
                .badConfig, "\(file("vocabulary.txt").path) has no \(names.joined(separator: " or ")) token")
        }
        var rules = WhisperSearch.Rules()
        rules.endOfText = vocabulary.endOfText
        rules.startOfTranscript = try special("<|startoftranscript|>")
        rules.noSpeech = try special("<|nospeech|>", "<|nocaptions|>")
        rules.noTimestamps = try special("<|notimestamps|>")
        rules.timestampBegin = try special("<|0.00|>")
        startOfPrevious = try special("<|startofprev|>")
        rules.suppress = Set(config.suppress_ids)
        rules.suppressAtBegin = Set(config.suppress_ids_begin)
        rules.maxNewTokens = decoder.maxPositions / 2
        self.rules = rules
        let (layerCount, headCount) = (decoder.layerCount, decoder.heads)
        alignmentHeads = (config.alignment_heads ?? []).compactMap { pair in
            pair.count == 2 && pair[0] < layerCount && pair[1] < headCount ? (pair[0], pair[1]) : nil
        }
        let tokenizerFile = file("tokenizer.json")
        promptEncoder =
            FileManager.default.fileExists(atPath: tokenizerFile.path)
            ? try ByteLevelBPE(contentsOf: tokenizerFile) : nil
    }

    /// The token ids of an initial prompt, as faster-whisper encodes `initial_prompt` (" " + the trimmed text).
    public func promptTokens(_ text: String) throws -> [Int] {
        guard let promptEncoder else {
            throw ModelError(.missingFile, "this Whisper folder has no tokenizer.json, so it cannot take a prompt")
        }
        return promptEncoder.encode(" " + text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// A transcription of 16 kHz mono samples, to be driven by `advance`.
    public func session(_ samples: [Float], options: WhisperOptions = WhisperOptions()) -> WhisperSession {
        session(features(samples), options: options)
    }

    /// A transcription of features already computed (by `features(_:)`), to be driven by `advance`.
    public func session(_ features: WhisperFeatures, options: WhisperOptions = WhisperOptions()) -> WhisperSession {
        WhisperSession(transcriber: self, features: features, options: options)
    }

    /// The log-mel features of 16 kHz mono samples (the front end; a server computes them off the model's worker).
    public func features(_ samples: [Float]) -> WhisperFeatures {
        let (values, frames) = frontEnd(samples)
        return WhisperFeatures(values: values, frames: frames)
    }

    /// Transcribes 16 kHz mono samples on its own.
    public func transcribe(_ samples: [Float], options: WhisperOptions = WhisperOptions(), pool: ComputePool)
        -> TimedTranscript
    {
        let session = session(samples, options: options)
        run([session], pool: pool)
        return session.transcript
    }

    /// Advances `sessions` together until every one is finished.
    public func run(_ sessions: [WhisperSession], pool: ComputePool) {
        var running = sessions.filter { !$0.isFinished }
        while !running.isEmpty {
            advance(running, pool: pool)
            running.removeAll(where: \.isFinished)
        }
    }

    /// Advances every unfinished session by one unit of work, sharing it: the windows waiting for the encoder are
    /// encoded in one pass (at most `maxWindows`), then every decoding session's rows (beams, samples, prompts) go
    /// through one decoder pass.
    public func advance(_ sessions: [WhisperSession], pool: ComputePool, maxWindows: Int = 8) {
        let waiting = Array(sessions.filter(\.needsEncoding).prefix(maxWindows))
        if !waiting.isEmpty {
            let outputs = encoder.encode(waiting.map { $0.windowFeatures() }, pool: pool)
            for (session, output) in zip(waiting, outputs) { session.encoded(decoder.memory(output, pool: pool)) }
        }
        var rows: [WhisperDecoder.Row] = []
        var owners: [(session: WhisperSession, logits: Int)] = []
        for session in sessions {
            while let search = session.search {
                let next = search.rows()
                if !next.isEmpty {
                    rows += next
                    owners.append((session, next.filter(\.logits).count))
                    break
                }
                session.searched(pool: pool)
            }
        }
        guard !rows.isEmpty else { return }
        let logits = decoder.step(rows, pool: pool)
        var k = 0
        for (session, count) in owners {
            let search = session.search!
            search.take(Array(logits[k..<(k + count)]))
            k += count
            if search.result != nil { session.searched(pool: pool) }
        }
    }
}

extension WhisperTranscriber {
    /// Whisper as faster-whisper ships it: CTranslate2's `model.bin` with `config.json` (alignment heads,
    /// suppressed ids) and `tokenizer.json`.
    public static let architecture = ArchitectureRegistry.Entry(
        name: "whisper-ctranslate2", tasks: [.speechRecognition], precisions: [.float32, .int8],
        matches: { $0.files.contains("model.bin") },
        load: { folder, _, precision in try WhisperTranscriber(directory: folder.directory, precision: precision) })
}
