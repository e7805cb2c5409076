import ArgumentParser
import Foundation
import MassAudio
import MassModels
import MassTensor

struct TranscribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcribe",
        abstract: "Transcribe speech (WAV, FLAC, OGG, MP3) with a Whisper model.",
        discussion: """
            Decodes each FILE (channels averaged, resampled to 16 kHz) and transcribes it in 30-second windows \
            conditioned on the previous text, with faster-whisper's defaults: beam search of 5 with timestamps at \
            temperature 0. --beam-size 1 --without-timestamps is faster-whisper's greedy mode. Temperature \
            fallback (sampling) is not implemented.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, srt, vtt }

    @Option(name: .long, help: "Whisper model folder (CTranslate2 files as faster-whisper ships them).")
    var model = "models/whisper-tiny.en/1"

    @Option(
        name: .long,
        help: "Output: text (one line per file), json ({\"file\", \"text\", \"segments\"} per file), srt or vtt.")
    var format: Format = .text

    @Option(name: .long, help: "Beams (faster-whisper's default 5; 1 is greedy).")
    var beamSize = 5

    @Flag(name: .long, help: "No timestamps (greedy only: needs --beam-size 1).")
    var withoutTimestamps = false

    @Option(name: .long, help: "Compute threads (default: every core).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Longest audio accepted, in seconds.")
    var maxSeconds = AudioDecoder.defaultMaxSeconds

    @Argument(help: "Audio files.")
    var files: [String]

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one audio file") }
        guard (1...16).contains(beamSize) else { throw ValidationError("--beam-size must be 1-16") }
        guard !withoutTimestamps || beamSize == 1 else {
            throw ValidationError("--without-timestamps is implemented for greedy decoding only: add --beam-size 1")
        }
        guard threads >= 1, maxSeconds > 0 else {
            throw ValidationError("--threads and --max-seconds must be positive")
        }
    }

    func run() throws {
        try Mass.checkCPU()
        let transcriber = try WhisperTranscriber(directory: URL(fileURLWithPath: model))
        let pool = ComputePool(threads: threads)
        var failed = false
        for file in files {
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                let clip = try AudioDecoder.decode(Array(data), maxSeconds: maxSeconds).resampled(to: 16000)
                let segments: [WhisperTranscriber.Segment]
                if withoutTimestamps {
                    segments =
                        transcriber.transcribeGreedy(clip.samples, pool: pool).timed(duration: clip.seconds).segments
                } else {
                    segments = transcriber.transcribe(clip.samples, beams: beamSize, pool: pool).segments
                }
                print(Self.render(segments, file: file, format: format), terminator: "")
            } catch {
                failed = true
                let reason = (error as? CocoaError)?.code == .fileReadNoSuchFile ? "no such file" : "\(error)"
                FileHandle.standardError.write(Data("mass transcribe: \(file): \(reason)\n".utf8))
            }
        }
        if failed { throw ExitCode(1) }
    }

    static func timestamp(_ seconds: Double, separator: String) -> String {
        let ms = Int((seconds * 1000).rounded())
        return String(
            format: "%02d:%02d:%02d%@%03d", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, separator, ms % 1000)
    }

    static func render(_ segments: [WhisperTranscriber.Segment], file: String, format: Format) -> String {
        let text = segments.map(\.text).joined().trimmingCharacters(in: .whitespaces)
        switch format {
        case .text: return text + "\n"
        case .json:
            let object: [String: Any] = [
                "file": file, "text": text,
                "segments": segments.enumerated().map { i, s in
                    ["id": i, "start": s.start, "end": s.end, "text": s.text, "tokens": s.tokens] as [String: Any]
                },
            ]
            let json = try! JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            return String(decoding: json, as: UTF8.self) + "\n"
        case .srt:
            return segments.enumerated().map { i, s in
                "\(i + 1)\n\(timestamp(s.start, separator: ",")) --> \(timestamp(s.end, separator: ","))\n\(s.text.trimmingCharacters(in: .whitespaces))\n\n"
            }.joined()
        case .vtt:
            return "WEBVTT\n\n"
                + segments.map { s in
                    "\(timestamp(s.start, separator: ".")) --> \(timestamp(s.end, separator: "."))\n\(s.text.trimmingCharacters(in: .whitespaces))\n\n"
                }.joined()
        }
    }
}
