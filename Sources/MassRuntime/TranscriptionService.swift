import Foundation
public import MassAudio
public import MassModels
import MassTensor

/// One transcription request: 16 kHz mono samples and how to decode them.
public struct TranscriptionJob: Sendable {
    public let samples: [Float]
    public let beams: Int
    public let timestamps: Bool
}

/// A Whisper model as `BatchingService` runs it. Requests of a batch are transcribed one after another on the
/// worker (cross-request batching of encoder and decoder work is not implemented yet); a request's cost is its
/// length in seconds.
public struct SpeechBatch: BatchModel {
    public let transcriber: WhisperTranscriber

    public func makeLane(threads: Int) -> ComputePool { ComputePool(threads: threads) }
    public func cost(of item: TranscriptionJob) -> Int {
        max(1, Int((Double(item.samples.count) / 16000).rounded(.up)))
    }

    public func run(_ items: [TranscriptionJob], lane: ComputePool) throws -> [WhisperTranscriber.TimedTranscript] {
        items.map { job in
            if job.timestamps { return transcriber.transcribe(job.samples, beams: job.beams, pool: lane) }
            return transcriber.transcribeGreedy(job.samples, pool: lane).timed(
                duration: Double(job.samples.count) / 16000)
        }
    }

    public var unitsMetric: (name: String, help: String) { ("mass_audio_seconds_total", "Audio seconds transcribed.") }
}

/// Serves one Whisper model: audio files are decoded and resampled off the cooperative pool, then queued.
public final class TranscriptionService: Sendable {
    public let batcher: BatchingService<SpeechBatch>
    public var transcriber: WhisperTranscriber { batcher.model.transcriber }
    public var config: ModelConfig { batcher.config }

    public init(
        transcriber: WhisperTranscriber, config: ModelConfig, name: String = "model", metrics: MetricsRegistry? = nil,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        batcher = BatchingService(
            model: SpeechBatch(transcriber: transcriber), config: config, name: name, metrics: metrics, threads: threads
        )
    }

    /// Transcribes an encoded audio file (WAV, FLAC, OGG, MP3). Throws `AudioError` for a file that cannot be read
    /// or is longer than `max_audio_seconds`.
    public func transcribe(file: [UInt8], beams: Int = 5, timestamps: Bool = true) async throws -> (
        WhisperTranscriber.TimedTranscript, seconds: Double
    ) {
        let maxSeconds = config.maxAudioSeconds
        let clip = try await OffPool.run(name: "mass-audio") {
            try AudioDecoder.decode(file, maxSeconds: maxSeconds).resampled(to: 16000)
        }
        let transcript = try await batcher.submit(
            TranscriptionJob(samples: clip.samples, beams: beams, timestamps: timestamps))
        return (transcript, clip.seconds)
    }

    /// Transcribes samples already at 16 kHz (the warm-up).
    public func transcribe(samples: [Float]) async throws -> WhisperTranscriber.TimedTranscript {
        try await batcher.submit(TranscriptionJob(samples: samples, beams: 1, timestamps: false))
    }

    public func shutdown() { batcher.shutdown() }
    public func waitUntilStopped() async { await batcher.waitUntilStopped() }
}
