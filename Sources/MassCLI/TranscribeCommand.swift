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
            Decodes each FILE (channels averaged, resampled to 16 kHz), then decodes 30-second windows greedily \
            without timestamps, conditioned on the previous text: faster-whisper's transcript for \
            beam_size=1, temperature=0, without_timestamps=True. Beam search, timestamps and temperature fallback \
            are not implemented yet, so --beam-size takes only 1.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Option(name: .long, help: "Whisper model folder (CTranslate2 files as faster-whisper ships them).")
    var model = "models/whisper-tiny.en/1"

    @Option(name: .long, help: "Output: text (one line per file) or json ({\"file\", \"text\", \"tokens\"} per file).")
    var format: Format = .text

    @Option(name: .long, help: "Beams (only 1, greedy, for now).")
    var beamSize = 1

    @Option(name: .long, help: "Compute threads (default: every core).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Longest audio accepted, in seconds.")
    var maxSeconds = AudioDecoder.defaultMaxSeconds

    @Argument(help: "Audio files.")
    var files: [String]

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one audio file") }
        guard beamSize == 1 else { throw ValidationError("beam search is not implemented yet: use --beam-size 1") }
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
                let transcript = transcriber.transcribeGreedy(clip.samples, pool: pool)
                switch format {
                case .text: print(transcript.text)
                case .json:
                    let object: [String: Any] = ["file": file, "text": transcript.text, "tokens": transcript.tokens]
                    let json = try JSONSerialization.data(
                        withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                    print(String(decoding: json, as: UTF8.self))
                }
            } catch {
                failed = true
                let reason = (error as? CocoaError)?.code == .fileReadNoSuchFile ? "no such file" : "\(error)"
                FileHandle.standardError.write(Data("mass transcribe: \(file): \(reason)\n".utf8))
            }
        }
        if failed { throw ExitCode(1) }
    }
}
