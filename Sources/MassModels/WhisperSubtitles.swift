import Foundation

/// Subtitle renderings of a transcript, one cue per segment (the CLI's and the OpenAI route's `srt` and `vtt`).
extension WhisperTranscriber.TimedTranscript {
    /// SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`.
    public var srt: String {
        segments.enumerated().map { i, s in
            "\(i + 1)\n\(Self.timestamp(s.start, ",")) --> \(Self.timestamp(s.end, ","))\n\(Self.cue(s))\n\n"
        }.joined()
    }

    /// WebVTT: a header, then cues with `HH:MM:SS.mmm --> HH:MM:SS.mmm`.
    public var vtt: String {
        "WEBVTT\n\n"
            + segments.map { s in
                "\(Self.timestamp(s.start, ".")) --> \(Self.timestamp(s.end, "."))\n\(Self.cue(s))\n\n"
            }.joined()
    }

    static func cue(_ s: WhisperTranscriber.Segment) -> String { s.text.trimmingCharacters(in: .whitespaces) }

    static func timestamp(_ seconds: Double, _ separator: String) -> String {
        let ms = Int((seconds * 1000).rounded())
        return String(
            format: "%02d:%02d:%02d%@%03d", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, separator, ms % 1000)
    }
}
