import ArgumentParser
import Foundation
import MassAudio
import MassModels
import MassRuntime
import MassTensor

struct BenchTranscribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcribe",
        abstract: "Speech recognition speed: one clip at a time, and many clips at once through the serving runtime.",
        discussion: """
            Decodes FILE once (not timed). Encoder: one 30-second window, and --concurrency windows in one pass, \
            per window. Single: --runs transcriptions of the clip one after another, median wall time and \
            real-time factor. Concurrent: --concurrency copies submitted at once to the runtime's speech service \
            (continuous batching: shared encoder passes and decoder steps), --runs times, median wall time, \
            throughput and the speed-up over transcribing them one after another. Every transcript must equal the \
            single one.
            """)

    @Option(name: .long, help: "Whisper model folder.")
    var model = "models/whisper-tiny.en/1"

    @Option(name: .long, help: "Compute threads.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Timed repetitions of each measurement.")
    var runs = 3

    @Option(name: .long, help: "Clips submitted at once.")
    var concurrency = 8

    @Option(name: .long, help: "Beams (1 is greedy).")
    var beamSize = 5

    @Flag(name: .long, help: "No timestamps.")
    var withoutTimestamps = false

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    @Argument(help: "Audio file.")
    var file: String

    func validate() throws {
        guard runs >= 1, concurrency >= 1, threads >= 1, (1...16).contains(beamSize) else {
            throw ValidationError("--runs, --concurrency and --threads must be positive, --beam-size 1-16")
        }
    }

    func run() async throws {
        try Mass.checkCPU()
        let transcriber = try WhisperTranscriber(directory: URL(fileURLWithPath: model))
        let clip = try AudioDecoder.decode(Array(try Data(contentsOf: URL(fileURLWithPath: file)))).resampled(
            to: 16000)
        var options = WhisperOptions()
        options.beamSize = beamSize
        options.timestamps = !withoutTimestamps
        let pool = ComputePool(threads: threads)

        let (features, frames) = transcriber.frontEnd(clip.samples)
        let window = transcriber.frontEnd.window(features, frames: frames, start: 0, count: min(3000, frames - 1))
        _ = transcriber.encoder(window, pool: pool)
        let encoderOne = BenchTiming.median(
            (0..<runs).map { _ in BenchTiming.seconds { _ = transcriber.encoder(window, pool: pool) } })
        let windows = [[Float]](repeating: window, count: concurrency)
        let encoderMany =
            BenchTiming.median(
                (0..<runs).map { _ in BenchTiming.seconds { _ = transcriber.encoder.encode(windows, pool: pool) } })
            / Double(concurrency)

        // Decoder passes over hypotheses 100 tokens into a window: the rows of one request (its beams) and of
        // --concurrency requests.
        let decoder = transcriber.decoder
        let memory = decoder.memory(transcriber.encoder(window, pool: pool), pool: pool)
        func stepTime(rows: Int) -> Double {
            let states = (0..<rows).map { _ in decoder.start(memory) }
            _ = decoder.step(
                states.flatMap { s in (0..<100).map { WhisperDecoder.Row(token: 220 + $0, state: s, logits: false) } },
                pool: pool)
            return BenchTiming.median(
                (0..<max(5, runs)).map { _ in
                    BenchTiming.seconds {
                        _ = decoder.step(states.map { WhisperDecoder.Row(token: 1000, state: $0) }, pool: pool)
                    }
                })
        }
        let stepOne = stepTime(rows: beamSize)
        let stepMany = stepTime(rows: beamSize * concurrency)

        var reference = ""
        let single = BenchTiming.median(
            (0..<runs).map { _ in
                BenchTiming.seconds {
                    reference = transcriber.transcribe(clip.samples, options: options, pool: pool).text
                }
            })

        var config = ModelConfig(task: .speechRecognition)
        config.batching.maxBatchSize = max(config.batching.maxBatchSize, concurrency)
        config.maxQueueSize = max(config.maxQueueSize, concurrency)
        let service = TranscriptionService(transcriber: transcriber, config: config, threads: threads)
        var concurrentRuns: [Double] = []
        var identical = true
        let samples = clip.samples
        let chosen = options
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            let texts = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        try await service.transcribe(samples: samples, options: chosen).text
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            concurrentRuns.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            identical = identical && texts.allSatisfy { $0 == reference }
        }
        service.shutdown()
        await service.waitUntilStopped()
        let concurrent = BenchTiming.median(concurrentRuns)
        let figures: [String: Any] = [
            "file": file, "audio_seconds": clip.seconds, "beam_size": beamSize, "timestamps": !withoutTimestamps,
            "threads": threads, "encoder_ms_per_window": encoderOne * 1000,
            "encoder_ms_per_window_batched": encoderMany * 1000, "decoder_step_ms": stepOne * 1000,
            "decoder_step_ms_concurrent": stepMany * 1000, "single_seconds": single,
            "single_realtime_factor": clip.seconds / single, "concurrency": concurrency,
            "concurrent_seconds": concurrent, "concurrent_clips_per_second": Double(concurrency) / concurrent,
            "concurrent_speedup_over_sequential": Double(concurrency) * single / concurrent,
            "identical_transcripts": identical,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(
                String(
                    format: """
                        %@: %.1f s of audio, beam %d, %@, %d threads, medians of %d runs
                        encoder: %.0f ms per window alone, %.0f ms per window in a pass of %d
                        decoder pass: %.1f ms for %d rows, %.1f ms for %d rows
                        single clip: %.2f s (%.1fx real time)
                        %d clips at once: %.2f s (%.2f clips/s, %.2fx transcribing them one after another)
                        transcripts identical to the single one: %@
                        """, file, clip.seconds, beamSize, withoutTimestamps ? "no timestamps" : "timestamps",
                    threads, runs, encoderOne * 1000, encoderMany * 1000, concurrency, stepOne * 1000, beamSize,
                    stepMany * 1000, beamSize * concurrency, single,
                    clip.seconds / single, concurrency, concurrent, Double(concurrency) / concurrent,
                    Double(concurrency) * single / concurrent, identical ? "yes" : "NO"))
        }
        if !identical { throw ExitCode(1) }
    }
}
