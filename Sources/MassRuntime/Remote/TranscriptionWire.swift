import Foundation
public import MassModels
public import NIOCore

/// OpenAI's transcription API as a provider speaks it: the multipart request, and the `verbose_json` answer read
/// into a transcript with its segments (and words), checked like every other answer.
extension RemoteWire {
    /// The multipart body of `POST /v1/audio/transcriptions` and its content type. Asks for `verbose_json` so the
    /// answer carries segments and the audio's duration (what the provider bills).
    static func transcriptionRequest(
        file: [UInt8], model: String, prompt: String?, language: String?, temperature: Double?, words: Bool
    ) -> (body: ByteBuffer, contentType: String) {
        let boundary = "mass-\(UUID().uuidString)"
        var body = ByteBuffer()
        func field(_ name: String, _ value: String) {
            body.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n")
        }
        field("model", model)
        field("response_format", "verbose_json")
        if let prompt { field("prompt", prompt) }
        if let language { field("language", language) }
        if let temperature { field("temperature", String(temperature)) }
        field("timestamp_granularities[]", "segment")
        if words { field("timestamp_granularities[]", "word") }
        body.writeString(
            "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"audio\"\r\n"
                + "Content-Type: application/octet-stream\r\n\r\n")
        body.writeBytes(file)
        body.writeString("\r\n--\(boundary)--\r\n")
        return (body, "multipart/form-data; boundary=\(boundary)")
    }

    struct VerboseTranscription: Decodable {
        struct Segment: Decodable {
            let start: Double
            let end: Double
            let text: String
            let tokens: [Int]?
            let seek: Int?
            let temperature: Double?
            let avg_logprob: Double?
            let compression_ratio: Double?
            let no_speech_prob: Double?
        }
        struct Word: Decodable {
            let word: String
            let start: Double
            let end: Double
        }
        let text: String
        let language: String?
        let duration: Double?
        let segments: [Segment]?
        let words: [Word]?
    }

    /// The transcript of a `verbose_json` answer; its duration (else the last segment's end) and language (else
    /// "english"). An answer with text but no segments becomes one segment over the whole audio; words are handed
    /// to the segment they start in.
    public static func transcription(_ answer: ByteBuffer) throws -> (
        transcript: WhisperTranscriber.TimedTranscript, seconds: Double, language: String
    ) {
        let decoded = try decode(VerboseTranscription.self, answer, what: "the transcription answer")
        let segments = decoded.segments ?? []
        let times = segments.flatMap { [$0.start, $0.end] } + (decoded.words ?? []).flatMap { [$0.start, $0.end] }
        guard times.allSatisfy({ $0.isFinite && $0 >= 0 }), segments.allSatisfy({ $0.start <= $0.end }),
            (decoded.duration ?? 0).isFinite, (decoded.duration ?? 0) >= 0
        else {
            throw RemoteFailure.malformed(
                reason: "bad_times", message: "the transcription answer has negative, reversed or infinite times")
        }
        let seconds = decoded.duration ?? segments.last?.end ?? 0
        var words = [[WhisperTranscriber.Word]](repeating: [], count: segments.count)
        for w in decoded.words ?? [] where !segments.isEmpty {
            let at = segments.lastIndex { $0.start <= w.start } ?? 0
            words[at].append(WhisperTranscriber.Word(word: w.word, start: w.start, end: w.end))
        }
        var read = segments.enumerated().map { i, s in
            WhisperTranscriber.Segment(
                start: s.start, end: s.end, text: s.text, tokens: s.tokens ?? [], seek: s.seek ?? 0,
                temperature: s.temperature ?? 0, averageLogProbability: s.avg_logprob ?? 0,
                compressionRatio: s.compression_ratio ?? 0, noSpeechProbability: s.no_speech_prob ?? 0,
                words: words[i])
        }
        let text = decoded.text.trimmingCharacters(in: .whitespaces)
        if read.isEmpty && !text.isEmpty {
            read = [WhisperTranscriber.Segment(start: 0, end: seconds, text: " " + text)]
        }
        return (WhisperTranscriber.TimedTranscript(segments: read), seconds, decoded.language ?? "english")
    }

    /// A second of silence as a 16 kHz 16-bit mono WAV file: what a probe sends.
    static let silence: [UInt8] = {
        let samples = 16_000
        var out: [UInt8] = []
        func u32(_ v: Int) { out += withUnsafeBytes(of: UInt32(v).littleEndian, Array.init) }
        func u16(_ v: Int) { out += withUnsafeBytes(of: UInt16(v).littleEndian, Array.init) }
        out += Array("RIFF".utf8)
        u32(36 + samples * 2)
        out += Array("WAVEfmt ".utf8)
        u32(16)
        u16(1)
        u16(1)
        u32(16_000)
        u32(32_000)
        u16(2)
        u16(16)
        out += Array("data".utf8)
        u32(samples * 2)
        out += [UInt8](repeating: 0, count: samples * 2)
        return out
    }()
}
