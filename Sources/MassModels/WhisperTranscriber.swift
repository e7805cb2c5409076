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

    /// A language and its probability (language detection).
    public struct LanguageProbability: Sendable, Equatable {
        public let code: String
        public let probability: Double
    }

    public struct TimedTranscript: Sendable {
        public let segments: [Segment]
        /// Every decoder call, in order (for parity checks).
        public let windows: [Window]
        /// The language the text is in (given, detected, or "en" for an English-only model); nil when unknown.
        public let language: String?
        /// Every language's probability on the first window, most probable first (detected only).
        public let languageProbabilities: [LanguageProbability]

        /// `windows` is empty for a transcript read from a provider's answer.
        public init(
            segments: [Segment], windows: [Window] = [], language: String? = nil,
            languageProbabilities: [LanguageProbability] = []
        ) {
            self.segments = segments
            self.windows = windows
            self.language = language
            self.languageProbabilities = languageProbabilities
        }

        /// The detected language's probability (nil when the language was given).
        public var languageProbability: Double? { languageProbabilities.first?.probability }

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
        let lang_ids: [Int]?
    }

    public let encoder: WhisperEncoder
    public let decoder: WhisperDecoder
    public let tokenizer: WhisperTokenizer
    /// The BPE encoder for prompts (nil when the folder has no tokenizer.json).
    public let promptEncoder: Tokenizer?
    public let frontEnd = LogMelSpectrogram()
    public let rules: WhisperSearch.Rules
    /// The (layer, head) pairs whose cross-attention follows the timing of words (config.json).
    let alignmentHeads: [(layer: Int, head: Int)]
    /// `<|startofprev|>`: the previous text's marker in a prompt (from the vocabulary).
    let startOfPrevious: Int
    /// A multilingual model's languages in the model's order (config.json `lang_ids`): code ("de") and token id;
    /// empty for an English-only model.
    public let languages: [(code: String, id: Int)]
    /// `<|transcribe|>` and `<|translate|>` (multilingual models).
    let taskTokens: (transcribe: Int, translate: Int)?
    static let windowFrames = 3000

    public var isMultilingual: Bool { !languages.isEmpty }

    /// `precision`: the encoder's and decoder's linear layers (cross-attention projections included) in float32
    /// or int8.
    public init(directory: URL, precision: Linear.Precision = .float32) throws {
        let file = { (name: String) in directory.appendingPathComponent(name) }
        // The vocabulary is vocabulary.txt (one token per line) or vocabulary.json (a list), as CTranslate2 writes.
        let vocabularyName =
            FileManager.default.fileExists(atPath: file("vocabulary.json").path)
                && !FileManager.default.fileExists(atPath: file("vocabulary.txt").path)
            ? "vocabulary.json" : "vocabulary.txt"
        for required in ["model.bin", "config.json", vocabularyName]
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
        let vocabulary = try WhisperTokenizer(vocabularyFile: file(vocabularyName))
        tokenizer = vocabulary
        let config = try ConfigLoading.decode(Config.self, at: file("config.json"))
        // The special tokens' ids come from the model's own vocabulary (they differ between English-only and
        // multilingual models).
        func special(_ names: String...) throws -> Int {
            for name in names { if let id = vocabulary.id(of: name) { return id } }
            throw ModelError(
                .badConfig, "\(file(vocabularyName).path) has no \(names.joined(separator: " or ")) token")
        }
        var rules = WhisperSearch.Rules()
        rules.endOfText = vocabulary.endOfText
        rules.startOfTranscript = try special("<|startoftranscript|>")
        rules.noSpeech = try special("<|nospeech|>", "<|nocaptions|>")
        rules.noTimestamps = try special("<|notimestamps|>")
        rules.timestampBegin = try special("<|0.00|>")
        startOfPrevious = try special("<|startofprev|>")
        // Multilingual as CTranslate2 decides it: by the vocabulary's size (English-only models list lang_ids too).
        let multilingual = vocabulary.tokens.count >= 51865
        languages = try (multilingual ? config.lang_ids ?? [] : []).map { id in
            guard id >= 0, id < vocabulary.tokens.count, vocabulary.tokens[id].hasPrefix("<|"),
                vocabulary.tokens[id].hasSuffix("|>")
            else {
                throw ModelError(.badConfig, "\(file("config.json").path): lang_ids holds \(id), not a language token")
            }
            return (String(vocabulary.tokens[id].dropFirst(2).dropLast(2)), id)
        }
        taskTokens = languages.isEmpty ? nil : (try special("<|transcribe|>"), try special("<|translate|>"))
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
            ? try Tokenizer(contentsOf: tokenizerFile) : nil
    }

    /// The tokens that start a window's decoding: `<|startoftranscript|>`, and for a multilingual model the
    /// language and the task (faster-whisper's `sot_sequence`).
    func startSequence(language: String?, task: WhisperOptions.Task) -> [Int] {
        guard let taskTokens, let language, let id = languages.first(where: { $0.code == language })?.id else {
            return [rules.startOfTranscript]
        }
        return [rules.startOfTranscript, id, task == .translate ? taskTokens.translate : taskTokens.transcribe]
    }

    /// Refuses options this model cannot honour: a language it does not know, or another language than English
    /// (or translation) on an English-only model.
    public func check(_ options: WhisperOptions) throws {
        if isMultilingual {
            if let language = options.language, !languages.contains(where: { $0.code == language }) {
                throw ModelError(
                    .invalidInput,
                    "language '\(language)' is not one of this model's \(languages.count) (e.g. \(languages.prefix(8).map(\.code).joined(separator: ", ")))"
                )
            }
        } else {
            if let language = options.language, language != "en" {
                throw ModelError(.invalidInput, "this model is English-only; language '\(language)' is not available")
            }
            if options.task == .translate {
                throw ModelError(.invalidInput, "this model is English-only; it cannot translate")
            }
        }
    }

    /// Language detection on one window's encoder output, as CTranslate2's `detect_language`: the decoder's
    /// logits after `<|startoftranscript|>`, softmax over the language tokens alone, most probable first.
    func detectLanguage(_ memory: WhisperDecoder.Memory, pool: ComputePool) -> [LanguageProbability] {
        let logits = decoder.step(rules.startOfTranscript, state: decoder.start(memory), pool: pool)
        let values = languages.map { Double(logits[$0.id]) }
        let peak = values.max() ?? 0
        let exps = values.map { Foundation.exp($0 - peak) }
        let total = exps.reduce(0, +)
        return zip(languages, exps).map { LanguageProbability(code: $0.code, probability: $1 / total) }
            .sorted { $0.probability > $1.probability }
    }

    /// The token ids of an initial prompt, as faster-whisper encodes `initial_prompt` (" " + the trimmed text).
    public func promptTokens(_ text: String) throws -> [Int] {
        guard let promptEncoder else {
            throw ModelError(.missingFile, "this Whisper folder has no tokenizer.json, so it cannot take a prompt")
        }
        let prompt = " " + text.trimmingCharacters(in: .whitespacesAndNewlines)
        return promptEncoder.encode(prompt, addSpecialTokens: false).ids.map(Int.init)
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
        // Sessions that must detect their language first: the first 30 s encoded on their own (faster-whisper
        // encodes them separately too: the detection window holds one frame more than the first window).
        let detecting = Array(sessions.filter(\.needsDetection).prefix(maxWindows))
        if !detecting.isEmpty {
            let outputs = encoder.encode(detecting.map { $0.detectionFeatures() }, pool: pool)
            for (session, output) in zip(detecting, outputs) {
                session.detected(detectLanguage(decoder.memory(output, pool: pool), pool: pool))
            }
        }
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
