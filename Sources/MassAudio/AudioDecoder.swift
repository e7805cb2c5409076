import CMassAudio
import Foundation

/// Mono float32 audio at a sample rate.
public struct AudioClip: Sendable, Equatable {
    public var samples: [Float]
    public var sampleRate: Int

    public init(samples: [Float], sampleRate: Int) {
        self.samples = samples
        self.sampleRate = sampleRate
    }

    public var seconds: Double { Double(samples.count) / Double(sampleRate) }

    /// The clip at `rate` Hz (unchanged when it already is).
    public func resampled(to rate: Int) -> AudioClip {
        rate == sampleRate
            ? self : AudioClip(samples: Resampler(from: sampleRate, to: rate).resample(samples), sampleRate: rate)
    }
}

/// Why audio could not be read; the server maps it to 400.
public struct AudioError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable { case empty, unsupported, corrupt, tooLong = "too_long" }

    public let code: Code
    public let message: String
    public var description: String { message }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Decodes WAV (PCM 8/16/24/32-bit, float; any channel count), FLAC, OGG/Vorbis, Opus and MP3 with libsndfile,
/// averaging the channels to mono. Integer samples come out as libsndfile scales them (16-bit: x / 32768).
public enum AudioDecoder {
    /// One hour.
    public static let defaultMaxSeconds = 3600.0

    public static func decode(_ data: [UInt8], maxSeconds: Double = defaultMaxSeconds) throws -> AudioClip {
        try run(data) { cmass_decode_audio($0.baseAddress, $0.count, maxSeconds, &$1) }
    }

    /// How a file becomes mono samples at the model's rate.
    public enum Conversion: String, Sendable, CaseIterable {
        /// As faster-whisper's `decode_audio`: libswresample to 16-bit mono (FFmpeg's rematrix and resampler).
        case swresample
        /// Channels averaged and resampled in float32 (`Resampler`): no 16-bit rounding.
        case float
    }

    /// Decodes and converts to mono at `rate`: `.swresample` gives faster-whisper's samples exactly (within one
    /// 16-bit step for compressed formats, whose decoders differ), `.float` keeps the float path.
    public static func decode(
        _ data: [UInt8], rate: Int, conversion: Conversion, maxSeconds: Double = defaultMaxSeconds
    ) throws -> AudioClip {
        switch conversion {
        case .float:
            return try decode(data, maxSeconds: maxSeconds).resampled(to: rate)
        case .swresample:
            return try run(data) { cmass_decode_audio_swr($0.baseAddress, $0.count, maxSeconds, Int32(rate), &$1) }
        }
    }

    private static func run(
        _ data: [UInt8], _ decode: (UnsafeBufferPointer<UInt8>, inout cmass_audio) -> Int32
    ) throws -> AudioClip {
        guard !data.isEmpty else { throw AudioError(.empty, "the audio file is empty") }
        var audio = cmass_audio()
        let status = data.withUnsafeBufferPointer { decode($0, &audio) }
        defer { cmass_audio_free(&audio) }
        guard status == 0 else {
            let message = withUnsafeBytes(of: audio.error) {
                String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
            }
            let code: AudioError.Code =
                message.contains("over the limit")
                ? .tooLong : message.hasPrefix("not a readable") ? .unsupported : .corrupt
            throw AudioError(code, message)
        }
        guard audio.frames > 0 else { throw AudioError(.empty, "the audio file holds no samples") }
        return AudioClip(
            samples: Array(UnsafeBufferPointer(start: audio.samples, count: Int(audio.frames))),
            sampleRate: Int(audio.sample_rate))
    }
}
