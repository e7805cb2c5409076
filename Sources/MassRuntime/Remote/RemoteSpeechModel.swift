import Foundation
import MassModels
import MassRegistry

/// A service-type model that records speech pairs on request: each audio file transcribed by the provider
/// (never a fallback) and by a local candidate, both transcripts written to the registry.
public protocol SpeechPairRecording: ServedModel {
    /// Records one pair per file; `candidate` nil: the `remote.record` block's. Answers how many.
    func recordPairs(audio files: [[UInt8]], candidate: String?) async throws -> Int
}

/// Speech recognition from an OpenAI-style `/v1/audio/transcriptions` (OpenAI, Mass, faster-whisper servers):
/// the provider's `verbose_json` becomes the transcript every response format is rendered from, so the model
/// answers `srt`, `vtt` and KServe's infer like a local Whisper. The audio seconds the provider reports are its
/// units (what it bills) and the tenant's charge.
final class RemoteSpeechModel: RemoteServedModel, SpeechRecognitionServing, SpeechPairRecording {
    let backend: RemoteBackend

    init(_ backend: RemoteBackend) { self.backend = backend }

    var task: ModelTask { .speechRecognition }
    var inputs: [TensorSpec] { [TensorSpec("audio", "BYTES", [-1])] }
    var outputs: [TensorSpec] { [TensorSpec("text", "BYTES", [-1])] }

    func probe(deadline: ContinuousClock.Instant) async throws {
        _ = try await call(RemoteWire.silence, SpeechRequest(), deadline: deadline, retries: false)
    }

    func transcribe(file: [UInt8], request: SpeechRequest) async throws -> Transcription {
        guard request.options.task == .transcribe else {
            throw RuntimeError(
                .invalidInput, "model '\(identity.name)' is a provider's transcription service; it does not translate",
                param: "model")
        }
        return try await backend.answer(
            { deadline in
                let started = ContinuousClock.now
                let result = try await self.call(file, request, deadline: deadline, retries: true)
                let seconds = (ContinuousClock.now - started).inSeconds
                self.backend.sample {
                    let (name, candidate) = try self.backend.candidate(nil, as: (any SpeechRecognitionServing).self)
                    try await self.store(
                        [file], [result], seconds, name, candidate, request: request, origin: "traffic")
                }
                return result
            },
            fallback: { (other: any SpeechRecognitionServing) in
                try await other.transcribe(file: file, request: request)
            })
    }

    func recordPairs(audio files: [[UInt8]], candidate: String?) async throws -> Int {
        let (name, local) = try backend.candidate(candidate, as: (any SpeechRecognitionServing).self)
        let (results, seconds) = try await backend.direct { deadline in
            try await withThrowingTaskGroup(of: (Int, Transcription).self) { group in
                for (index, file) in files.enumerated() {
                    group.addTask {
                        // Awaited before the tuple is built (swiftlang/swift#91911).
                        let result = try await self.call(file, SpeechRequest(), deadline: deadline, retries: true)
                        return (index, result)
                    }
                }
                var results = [Transcription?](repeating: nil, count: files.count)
                for try await (index, result) in group { results[index] = result }
                return results.map { $0! }
            }
        }
        try await store(files, results, seconds, name, local, request: SpeechRequest(), origin: "inputs")
        return files.count
    }

    /// Transcribes the files with the candidate (the same request) and writes one "transcript" pair per file;
    /// the input is the file's hash and length (the audio itself is not kept).
    private func store(
        _ files: [[UInt8]], _ service: [Transcription], _ serviceSeconds: Double, _ name: String,
        _ candidate: any SpeechRecognitionServing, request: SpeechRequest, origin: String
    ) async throws {
        let started = ContinuousClock.now
        var local: [String] = []
        for file in files { local.append(try await candidate.transcribe(file: file, request: request).transcript.text) }
        let localSeconds = (ContinuousClock.now - started).inSeconds
        let n = Double(max(1, files.count))
        try await backend.store(
            files.indices.map { i in
                ServicePair(
                    service: identity.name, candidate: name, kind: "transcript",
                    input: String(format: "audio %016llx, %.2f s", Self.fingerprint(files[i]), service[i].seconds),
                    serviceOutput: [], candidateOutput: [], serviceText: service[i].transcript.text,
                    candidateText: local[i], serviceMilliseconds: serviceSeconds * 1000 / n,
                    candidateMilliseconds: localSeconds * 1000 / n, origin: origin)
            })
    }

    /// FNV-1a over the file: names a recording without keeping it.
    static func fingerprint(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    private func call(
        _ file: [UInt8], _ request: SpeechRequest, deadline: ContinuousClock.Instant, retries: Bool
    ) async throws -> Transcription {
        // faster-whisper's ladder is the provider's own default (temperature 0 with fallback); another start is sent.
        let ladder = request.options.temperatures
        let temperature = ladder == WhisperOptions().temperatures ? nil : ladder.first
        let (body, type) = RemoteWire.transcriptionRequest(
            file: file, model: providerModel, prompt: request.prompt, language: request.language,
            temperature: temperature, words: request.options.wordTimestamps)
        let answer = try await backend.client.post(
            "/v1/audio/transcriptions", body: body, contentType: type, deadline: deadline, retries: retries)
        let (transcript, seconds, language) = try RemoteWire.transcription(answer.body)
        if seconds > 0 {
            backend.counters.units("audio_seconds", seconds)
            try RequestRouting.current?.charge("audio_seconds", seconds)
        }
        return Transcription(transcript: transcript, seconds: seconds, language: language)
    }
}
