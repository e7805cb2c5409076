import Foundation
import MassAudio
public import MassModels
import MassTensor

/// One transcription request: the clip's log-mel features and how to decode them.
public struct TranscriptionJob: Sendable {
    public let features: WhisperFeatures
    public let options: WhisperOptions
}

/// A Whisper model as `BatchingService` runs it, batching continuously: every request is a `WhisperSession`, and
/// each step shares one encoder pass among the windows waiting for it and one decoder pass among the hypotheses of
/// every request. Requests that arrive meanwhile join at the next step (up to `max_batch_size` at once), so a long
/// file never holds a short one back for more than a step. A request's cost is its length in seconds.
public struct SpeechBatch: BatchModel {
    public let transcriber: WhisperTranscriber
    public let maxSessions: Int

    public func makeLane(threads: Int) -> ComputePool { ComputePool(threads: threads) }
    public func rest(_ lane: ComputePool) { lane.rest() }
    public func cost(of item: TranscriptionJob) -> Int {
        max(1, Int(item.features.seconds.rounded(.up)))
    }

    public func run(_ items: [TranscriptionJob], lane: ComputePool) throws -> [WhisperTranscriber.TimedTranscript] {
        let sessions = items.map { transcriber.session($0.features, options: $0.options) }
        transcriber.run(sessions, pool: lane)
        return sessions.map(\.transcript)
    }

    public func serve(_ batch: ServedBatch<SpeechBatch>, lane: ComputePool) {
        var active: [(key: UInt64, session: WhisperSession)] = []
        func start(_ items: [(key: UInt64, item: TranscriptionJob)]) {
            active += items.map { ($0.key, transcriber.session($0.item.features, options: $0.item.options)) }
        }
        start(batch.items)
        while !active.isEmpty {
            transcriber.advance(active.map(\.session), pool: lane)
            active.removeAll { key, session in
                if session.isFinished {
                    batch.finish(key, .success(session.transcript))
                } else if batch.isCancelled(key) {
                    batch.finish(key, .failure(CancellationError()))
                } else {
                    return false
                }
                return true
            }
            start(batch.admit(room: maxSessions - active.count))
        }
    }

    public func usage(of item: TranscriptionJob) -> (kind: String, amount: Double)? {
        ("audio_seconds", item.features.seconds)
    }
    public var unitsMetric: (name: String, help: String) { ("mass_audio_seconds_total", "Audio seconds transcribed.") }
}

/// What a client asks of a transcription, whoever answers it: a local Whisper decodes with `options` and the
/// prompt's tokens; a provider gets the prompt, language and first temperature as its API's fields.
public struct SpeechRequest: Sendable, Equatable {
    /// How a local Whisper decodes (beam, temperatures, word timestamps; faster-whisper's defaults).
    public var options: WhisperOptions
    /// Text before the audio (faster-whisper's `initial_prompt`, OpenAI's `prompt`).
    public var prompt: String?
    /// ISO-639-1 code of the speech (nil: the model's own).
    public var language: String?

    public init(options: WhisperOptions = WhisperOptions(), prompt: String? = nil, language: String? = nil) {
        self.options = options
        self.prompt = prompt
        self.language = language
    }
}

/// A transcript with what the response formats say about the audio.
public struct Transcription: Sendable {
    public let transcript: WhisperTranscriber.TimedTranscript
    /// The audio's length.
    public let seconds: Double
    /// The language's English name ("english"), as OpenAI's verbose_json gives it.
    public let language: String

    public init(transcript: WhisperTranscriber.TimedTranscript, seconds: Double, language: String) {
        self.transcript = transcript
        self.seconds = seconds
        self.language = language
    }
}

/// What the speech routes need of a served model.
public protocol SpeechRecognitionServing: ServedModel {
    /// Transcribes an encoded audio file (WAV, FLAC, OGG, MP3). A language the model cannot transcribe is a
    /// `RuntimeError(.invalidInput)` naming `language`.
    func transcribe(file: [UInt8], request: SpeechRequest) async throws -> Transcription
}

/// Serves one Whisper model: audio files are decoded and resampled off the cooperative pool, then queued.
public final class TranscriptionService: BatchedServedModel, SpeechRecognitionServing {
    public static let taskEntry = TaskRegistry.Entry(task: .speechRecognition) { model, context in
        guard let transcriber = model as? WhisperTranscriber else {
            throw TaskRegistry.mismatch(model, .speechRecognition)
        }
        return TranscriptionService(
            transcriber: transcriber, config: context.config, name: context.identity.name,
            version: context.identity.version, metrics: context.metrics, threads: context.threads)
    }

    public let batcher: BatchingService<SpeechBatch>
    public var transcriber: WhisperTranscriber { batcher.model.transcriber }
    public var task: ModelTask { .speechRecognition }
    public var inputs: [TensorSpec] { [TensorSpec("audio", "BYTES", [-1])] }
    public var outputs: [TensorSpec] { [TensorSpec("text", "BYTES", [-1])] }

    public init(
        transcriber: WhisperTranscriber, config: ModelConfig, name: String = "model", version: Int = 1,
        metrics: MetricsRegistry? = nil, threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        batcher = BatchingService(
            model: SpeechBatch(transcriber: transcriber, maxSessions: config.batching.maxBatchSize), config: config,
            name: name, version: version, metrics: metrics, threads: threads
        )
    }

    public func warmUp() async throws { _ = try await transcribe(samples: [Float](repeating: 0, count: 16000)) }

    /// Transcribes (or translates) an encoded audio file (WAV, FLAC, OGG, MP3). Throws `AudioError` for a file
    /// that cannot be read or is longer than `max_audio_seconds`, and `invalidInput` for a language the model does
    /// not know (any but English for the `.en` models), translation on an English-only model, or a prompt without
    /// the folder's tokenizer.
    public func transcribe(file: [UInt8], request: SpeechRequest = SpeechRequest()) async throws -> Transcription {
        var options = request.options
        if let language = request.language {
            guard let code = WhisperLanguages.code(language) else {
                throw RuntimeError(
                    .invalidInput,
                    "'language' \"\(language)\" is not a language Whisper knows (ISO-639-1, e.g. \"de\")",
                    param: "language")
            }
            options.language = code
        }
        do {
            try transcriber.check(options)
        } catch let error as ModelError {
            throw RuntimeError(
                .invalidInput, "model '\(identity.name)': \(error.message)",
                param: options.task == .translate && !transcriber.isMultilingual ? "model" : "language")
        }
        if let prompt = request.prompt { options.initialPrompt = try transcriber.promptTokens(prompt) }
        let maxSeconds = config.maxAudioSeconds
        let conversion = config.audioConversion
        let transcriber = self.transcriber
        // Decoding, resampling and the log-mel front end run here, not on the model's worker, where they would
        // hold up every request in flight (about a second per hour of audio).
        let (features, seconds) = try await OffPool.run {
            let clip = try AudioDecoder.decode(file, rate: 16000, conversion: conversion, maxSeconds: maxSeconds)
            return (transcriber.features(clip.samples), clip.seconds)
        }
        let transcript = try await batcher.submit(TranscriptionJob(features: features, options: options))
        return Transcription(
            transcript: transcript, seconds: seconds, language: WhisperLanguages.name(transcript.language ?? "en"))
    }

    /// Transcribes samples already at 16 kHz (the warm-up, benchmarks).
    public func transcribe(samples: [Float], options: WhisperOptions = .greedy) async throws
        -> WhisperTranscriber.TimedTranscript
    {
        let transcriber = self.transcriber
        let features = try await OffPool.run { transcriber.features(samples) }
        return try await batcher.submit(TranscriptionJob(features: features, options: options))
    }
}
