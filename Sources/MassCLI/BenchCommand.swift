import ArgumentParser
import Foundation
import MassModels
import MassRuntime
import MassTensor
import MassTokenizers

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure the engine's speed.",
        subcommands: [
            BenchEmbedCommand.self, BenchGemmCommand.self, BenchHTTPCommand.self, BenchClassifyCommand.self,
            BenchTranscribeCommand.self, BenchTrainCommand.self, BenchTrainCNNCommand.self,
        ])
}

struct BenchEmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embedding throughput and latency on a corpus (one text per line).",
        discussion: """
            Tokenizes the corpus, warms up, then embeds it --runs times and reports the median run: sentences/s, \
            tokens/s, per-call latency percentiles (all runs) and the GFLOP/s of useful work (dense layers and \
            attention, no padding). --batch-size 1 runs one text per call with every thread inside the call \
            (latency); a larger batch size runs ragged batches on one single-threaded worker per thread (throughput).
            """)

    @Option(name: .long, help: "Model folder, e.g. models/all-MiniLM-L6-v2/1.")
    var model: String

    @Option(name: .long, help: "Corpus file, one text per line.")
    var corpus: String

    @Option(name: .long, help: "Texts per call.")
    var batchSize: Int = 64

    @Option(name: .long, help: "Tokens per call, at most (batch sizes above 1).")
    var tokenBudget: Int = 1024

    @Option(name: .long, help: "Compute threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Timed runs over the corpus.")
    var runs: Int = 3

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    @Option(
        name: .long,
        help:
            "Milliseconds of rest before each call (batch 1): the model's compute at a light load, its weights out of cache as in a server that waits for requests."
    )
    var pauseMs: Double = 0

    @Option(
        name: .long,
        help:
            "float32 or int8 (linear layers quantised at load). int8 also embeds the corpus in float32 and reports the cosine of each text's two embeddings."
    )
    var precision: String = "float32"

    func validate() throws {
        guard Linear.Precision(rawValue: precision) != nil else {
            throw ValidationError("--precision must be float32 or int8")
        }
        guard pauseMs >= 0, pauseMs == 0 || batchSize == 1 else {
            throw ValidationError("--pause-ms must be >= 0 and needs --batch-size 1")
        }
        guard batchSize >= 1, tokenBudget >= 1, threads >= 1, runs >= 1 else {
            throw ValidationError("--batch-size, --token-budget, --threads and --runs must be at least 1")
        }
    }

    func run() throws {
        try Mass.checkCPU()
        let lines = try TextInput.lines(
            try Data(contentsOf: URL(fileURLWithPath: corpus)), source: corpus)
        guard !lines.isEmpty else { throw CLIError("\(corpus) has no lines") }
        let loadStart = Date()
        let chosen = Linear.Precision(rawValue: precision) ?? .float32
        let embedder = try SentenceEmbedder.load(URL(fileURLWithPath: model), precision: chosen)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let tokenizeStart = Date()
        let sequences = lines.map { embedder.tokenize($0).ids }
        let tokenizeSeconds = Date().timeIntervalSince(tokenizeStart)

        let latencyMode = batchSize == 1
        let runner = OfflineEmbedder(
            model: embedder, workers: latencyMode ? 1 : threads, threadsPerWorker: latencyMode ? threads : 1)
        let batches = OfflineEmbedder.plan(
            lengths: sequences.map(\.count), batchSize: batchSize, tokenBudget: latencyMode ? Int.max : tokenBudget)
        _ = try runner.run(
            Array(sequences.prefix(64)),
            batches: OfflineEmbedder.plan(
                lengths: sequences.prefix(64).map(\.count), batchSize: batchSize, tokenBudget: tokenBudget))

        var wall: [Double] = []
        var embeddings: [[Float]] = []  // the last timed pass's (not kept with --pause-ms)
        var calls: [Double] = []
        for _ in 0..<runs {
            let start = Date()
            if pauseMs > 0 {
                var paused = 0.0
                for batch in batches {
                    Thread.sleep(forTimeInterval: pauseMs / 1000)
                    paused += pauseMs / 1000
                    calls += try runner.run(sequences, batches: [batch]).callSeconds
                }
                wall.append(Date().timeIntervalSince(start) - paused)
                continue
            }
            let (embedded, seconds) = try runner.run(sequences, batches: batches)
            embeddings = embedded
            wall.append(Date().timeIntervalSince(start))
            calls += seconds
        }
        var agreement: [(String, String)] = []
        if chosen != .float32 {
            // The same texts in float32: how far the quantised model moved each embedding.
            let reference = try SentenceEmbedder.load(URL(fileURLWithPath: model))
            let mine = embeddings.isEmpty ? try runner.run(sequences, batches: batches).embeddings : embeddings
            let theirs = try OfflineEmbedder(model: reference, workers: threads, threadsPerWorker: 1).run(
                sequences, batches: batches
            ).embeddings
            let cosines = Agreement.cosines(mine, theirs)
            agreement = [
                (
                    "cosine_to_fp32",
                    String(
                        format: "min %.5f  mean %.5f  (%d texts)", cosines.min() ?? 0,
                        cosines.reduce(0, +) / Double(max(1, cosines.count)), cosines.count)
                )
            ]
        }
        let median = wall.sorted()[wall.count / 2]
        let tokens = sequences.reduce(0) { $0 + $1.count }
        let gflops = embedder.encoder.forwardFlops(lengths: sequences.map(\.count)) / median / 1e9
        calls.sort()
        func pct(_ p: Double) -> Double { calls[min(calls.count - 1, Int(p * Double(calls.count)))] * 1000 }
        let report: [(String, String)] =
            [
                ("model", model), ("corpus", "\(corpus) (\(lines.count) texts, \(tokens) tokens)"),
                (
                    "mode",
                    latencyMode
                        ? "batch 1, \(threads) threads per call"
                        : "batches of ≤\(batchSize) texts / ≤\(tokenBudget) tokens, \(threads) workers"
                ),
                ("blas", "\(BLAS.coreName), 1 thread per worker"),
                ("load_s", String(format: "%.3f", loadSeconds)),
                ("tokenize_s", String(format: "%.3f", tokenizeSeconds)),
                (
                    "runs",
                    "\(runs), median \(String(format: "%.3f", median)) s (range \(String(format: "%.3f", wall.min()!))–\(String(format: "%.3f", wall.max()!)))"
                ),
                ("sentences_per_s", String(format: "%.1f", Double(lines.count) / median)),
                ("tokens_per_s", String(format: "%.0f", Double(tokens) / median)),
                ("calls", "\(batches.count) per run"),
                (
                    "latency_ms",
                    String(
                        format: "p50 %.2f  p90 %.2f  p99 %.2f  max %.2f", pct(0.5), pct(0.9), pct(0.99),
                        calls.last! * 1000)
                ),
                ("precision", chosen.rawValue),
                ("gflops", String(format: "%.1f", gflops)),
            ] + agreement
        if json {
            let object = Dictionary(uniqueKeysWithValues: report)
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for (k, v) in report { print("\(k.padding(toLength: 16, withPad: " ", startingAt: 0)) \(v)") }
        }
    }
}
