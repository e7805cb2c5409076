import ArgumentParser
import Foundation
import MassAudio
import MassModels
import MassRuntime
import MassTensor

struct TranscribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcribe",
        abstract: "Transcribe speech (WAV, FLAC, OGG, MP3) with a Whisper model.",
        discussion: """
            Decodes each FILE (as faster-whisper does: libswresample to 16-bit mono at 16 kHz; --audio-conversion \
            float averages the channels and resamples in float) and transcribes it in 30-second windows \
            conditioned on the previous text, with faster-whisper's defaults: beam search of 5 with timestamps, \
            falling back to sampling (best of 5) at rising temperatures when a window's text is too repetitive \
            (compression ratio over 2.4) or too improbable (average log-probability under -1). \
            --beam-size 1 --without-timestamps --temperature 0 is faster-whisper's greedy mode. Files are \
            transcribed together through the server's batcher, up to --batch at a time, sharing encoder passes \
            and decoder steps; a file joins the batch as soon as another finishes.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, srt, vtt }

    @Option(name: .long, help: "Whisper model folder (CTranslate2 files as faster-whisper ships them).")
    var model = "models/whisper-tiny.en/1"

    @Option(
        name: .long,
        help: "Output: text (one line per file), json ({\"file\", \"text\", \"segments\"} per file), srt or vtt.")
    var format: Format = .text

    @Option(name: .long, help: "Beams at temperature 0 (faster-whisper's default 5; 1 is greedy).")
    var beamSize = 5

    @Option(name: .long, help: "Hypotheses sampled at each fallback temperature.")
    var bestOf = 5

    @Option(
        name: .long,
        help: "Temperatures tried in order, comma-separated (a single 0 turns the fallback off).")
    var temperature = "0,0.2,0.4,0.6,0.8,1.0"

    @Flag(name: .long, help: "No timestamps: one segment per 30-second window.")
    var withoutTimestamps = false

    @Option(
        name: .long, help: "Text the speech continues (names, spelling, style), as faster-whisper's initial_prompt.")
    var prompt: String?

    @Flag(name: .long, help: "Word-level timestamps (in --format json: each segment's words).")
    var wordTimestamps = false

    @Flag(name: .long, help: "Do not condition each window on the text before it.")
    var noConditionOnPreviousText = false

    @Option(name: .long, help: "Files transcribed together (their encoder passes and decoder steps shared).")
    var batch = 8

    @Option(name: .long, help: "Compute threads (default: every core).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Longest audio accepted, in seconds.")
    var maxSeconds = AudioDecoder.defaultMaxSeconds

    @Option(name: .long, help: "float32, or int8: the linear layers quantised at load (docs/compression.md).")
    var precision: String = "float32"

    @Option(
        name: .long,
        help: "Spoken language (ISO-639-1, e.g. de). Default: detected on the first 30 s (multilingual models).")
    var language: String?

    @Option(name: .long, help: "transcribe, or translate (into English; multilingual models).")
    var task: String = "transcribe"

    @Option(
        name: .long,
        help:
            "swresample (16-bit mono through libswresample, as faster-whisper) or float (averaged and resampled in float)."
    )
    var audioConversion: String = "swresample"

    @Argument(help: "Audio files.")
    var files: [String]

    var temperatures: [Double]? {
        let values = temperature.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && (0...2).contains($0!) }) else { return nil }
        return values.map { $0! }
    }

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one audio file") }
        guard WhisperOptions.Task(rawValue: task) != nil else {
            throw ValidationError("--task must be transcribe or translate")
        }
        guard AudioDecoder.Conversion(rawValue: audioConversion) != nil else {
            throw ValidationError("--audio-conversion must be swresample or float")
        }
        guard (1...16).contains(beamSize), (1...16).contains(bestOf) else {
            throw ValidationError("--beam-size and --best-of must be 1-16")
        }
        guard temperatures != nil else {
            throw ValidationError("--temperature must be comma-separated numbers from 0 to 2")
        }
        guard threads >= 1, maxSeconds > 0, batch >= 1 else {
            throw ValidationError("--threads, --batch and --max-seconds must be positive")
        }
        guard Linear.Precision(rawValue: precision) != nil else {
            throw ValidationError("--precision must be float32 or int8")
        }
    }

    func run() async throws {
        try Mass.checkCPU()
        let maxSeconds = maxSeconds
        let service = try OfflineServing.serve(
            model, task: .speechRecognition, as: (any SpeechRecognitionServing).self, threads: threads,
            maxBatchSize: batch, precision: Linear.Precision(rawValue: precision)!
        ) { [audioConversion] in
            $0.maxAudioSeconds = maxSeconds
            $0.audioConversion = AudioDecoder.Conversion(rawValue: audioConversion)!
        }
        defer { service.shutdown() }
        var options = WhisperOptions()
        options.beamSize = beamSize
        options.bestOf = bestOf
        options.temperatures = temperatures!
        options.timestamps = !withoutTimestamps
        options.conditionOnPreviousText = !noConditionOnPreviousText
        options.wordTimestamps = wordTimestamps
        options.task = WhisperOptions.Task(rawValue: task)!
        let failed = try await Self.transcribe(
            files, service: service, request: SpeechRequest(options: options, prompt: prompt, language: language),
            window: 2 * batch,
            format: format)
        if failed { throw ExitCode(1) }
    }

    /// Submits the files to the service, at most `window` at a time (the batcher joins them into its running
    /// batch as sessions finish), and prints each transcript in the files' order. Answers whether any file failed.
    static func transcribe(
        _ files: [String], service: any SpeechRecognitionServing, request: SpeechRequest, window: Int,
        format: Format
    ) async throws -> Bool {
        var failed = false
        try await withThrowingTaskGroup(of: (Int, Result<WhisperTranscriber.TimedTranscript, any Error>).self) {
            group in
            var next = 0
            var printed = 0
            var finished: [Int: Result<WhisperTranscriber.TimedTranscript, any Error>] = [:]
            func submit() {
                let index = next
                let file = files[index]
                next += 1
                group.addTask {
                    do {
                        let data = try Data(contentsOf: URL(fileURLWithPath: file))
                        let transcription = try await service.transcribe(file: Array(data), request: request)
                        return (index, .success(transcription.transcript))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            while next < min(files.count, window) { submit() }
            for try await (index, result) in group {
                finished[index] = result
                while let result = finished.removeValue(forKey: printed) {
                    switch result {
                    case .success(let transcript):
                        print(render(transcript, file: files[printed], format: format), terminator: "")
                    case .failure(let error):
                        failed = true
                        let reason = (error as? CocoaError)?.code == .fileReadNoSuchFile ? "no such file" : "\(error)"
                        FileHandle.standardError.write(Data("mass transcribe: \(files[printed]): \(reason)\n".utf8))
                    }
                    printed += 1
                }
                if next < files.count { submit() }
            }
        }
        return failed
    }

    static func render(_ transcript: WhisperTranscriber.TimedTranscript, file: String, format: Format) -> String {
        let text = transcript.text
        let segments = transcript.segments
        switch format {
        case .text: return text + "\n"
        case .json:
            var object: [String: Any] = [
                "file": file, "text": text,
                "segments": segments.enumerated().map { i, s in
                    var segment: [String: Any] = [
                        "id": i, "start": s.start, "end": s.end, "text": s.text, "tokens": s.tokens,
                    ]
                    if !s.words.isEmpty {
                        segment["words"] = s.words.map {
                            ["word": $0.word, "start": $0.start, "end": $0.end, "probability": $0.probability]
                        }
                    }
                    return segment
                },
            ]
            if let language = transcript.language { object["language"] = language }
            if let probability = transcript.languageProbability { object["language_probability"] = probability }
            return OfflineServing.json(object) + "\n"
        case .srt: return transcript.srt
        case .vtt: return transcript.vtt
        }
    }
}
