import Foundation

/// `fixtures/audio/whisper.json`: faster-whisper's results for every clip, greedy (per-window prompts and token
/// ids) and with its defaults (segments).
public struct WhisperFixture: Decodable {
    public struct Window: Decodable {
        public let prompt: [Int]
        public let sequences_ids: [[Int]]
    }

    public struct Segment: Decodable {
        public let start: Double
        public let end: Double
        public let text: String
        public let temperature: Double
        public let avg_logprob: Double
        public let compression_ratio: Double
        public let no_speech_prob: Double
    }

    public struct Result: Decodable {
        public let text: String
        public let segments: [Segment]
        public let decoder_windows: [Window]
        public let token_ids: [Int]?
    }

    public struct Results: Decodable {
        public let greedy_no_timestamps: Result
        public let defaults: Result
    }

    public struct Clip: Decodable {
        public let id: String
        public let file: String
        public let results: Results
    }

    public let clips: [Clip]

    public static var audio: URL { FixturePaths.fixtures.appendingPathComponent("audio") }

    /// The default speech model's version folder (`make models` lays it out).
    public static var modelDirectory: URL { FixturePaths.models.appendingPathComponent("whisper-tiny.en/1") }

    public static let clipIDs = [
        "clip1_us_short", "clip2_gb_female", "clip3_scotland_fast", "clip4_lancaster_tiny", "clip5_long_us",
    ]

    public static func load() throws -> WhisperFixture {
        try JSONDecoder().decode(
            WhisperFixture.self, from: Data(contentsOf: audio.appendingPathComponent("whisper.json")))
    }

    public func clip(_ id: String) throws -> Clip {
        guard let clip = clips.first(where: { $0.id == id }) else {
            throw CocoaError(
                .fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "no clip '\(id)' in whisper.json"])
        }
        return clip
    }
}
