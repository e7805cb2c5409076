import Foundation
import MassAudio
import MassModels
import MassRuntime
import MassTesting
import Testing

/// Continuous batching of speech: a request that arrives while a long one runs joins it at the next step and
/// finishes first; a running request whose caller leaves is dropped between steps.
@Suite(.serialized) struct TranscriptionServiceTests {
    static let transcriber: WhisperTranscriber? = try? WhisperTranscriber(directory: WhisperFixture.modelDirectory)

    static func samples(_ file: String) throws -> [Float] {
        try AudioDecoder.decode(Array(Data(contentsOf: WhisperFixture.audio.appendingPathComponent(file))))
            .resampled(to: 16000).samples
    }

    func service() throws -> TranscriptionService {
        let transcriber = try #require(Self.transcriber, "run 'make models' first")
        return TranscriptionService(transcriber: transcriber, config: ModelConfig(task: .speechRecognition))
    }

    @Test func shortRequestOvertakesALongOne() async throws {
        let service = try service()
        defer { service.shutdown() }
        let long = try Self.samples("clip5_long_us.wav")
        let short = try Self.samples("clip4_lancaster_tiny.wav")
        let finished = FinishOrder()
        async let longText = {
            let t = try await service.transcribe(samples: long, options: WhisperOptions()).text
            await finished.note("long")
            return t
        }()
        try await Task.sleep(for: .milliseconds(300))
        let shortText = try await service.transcribe(samples: short, options: WhisperOptions()).text
        await finished.note("short")
        #expect(shortText == "Yes, turn left at the next junction, then stop.")
        #expect(try await longText.hasPrefix("Welcome to the quarterly project update."))
        #expect(await finished.order == ["short", "long"])
        #expect(service.batcher.statistics.requests == 2 && service.batcher.statistics.batches == 2)
    }

    @Test func abandonedRequestIsDroppedBetweenSteps() async throws {
        let service = try service()
        defer { service.shutdown() }
        // Four and a half minutes of speech: about ten seconds of work alone, far more than a few steps.
        let clip = try Self.samples("clip5_long_us.wav")
        let long = (0..<5).flatMap { _ in clip }
        let task = Task { try await service.transcribe(samples: long, options: WhisperOptions()) }
        try await Task.sleep(for: .milliseconds(500))
        let cancelled = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        #expect(ContinuousClock.now - cancelled < .seconds(3), "the session should stop within a step or two")
        let after = try await service.transcribe(samples: try Self.samples("clip4_lancaster_tiny.wav")).text
        #expect(after == "Yes, turn left at the next junction, then stop.")
    }
}

actor FinishOrder {
    var order: [String] = []
    func note(_ what: String) { order.append(what) }
}
