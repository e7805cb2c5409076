import ArgumentParser
import Foundation
import MassAutograd
import MassTensor
import MassTokenizers
import MassTraining

/// `mass bench train`: fine-tuning throughput of a sentence encoder with a classification head, every text
/// exactly `--length` tokens, as `benchmarks/peers/train_finetune_torch.py` measures PyTorch on the same ids.
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tuning throughput: examples/s of forward, backward and AdamW steps, and peak memory.",
        discussion: """
            Builds texts of exactly --length tokens from the corpus (consecutive lines joined until the tokenizer \
            gives at least that many, then truncated), labels them alternately 0 and 1, and trains the encoder \
            with a linear head on its mean-pooled states (dropout 0.1, AdamW lr 5e-5, weight decay 0.01): \
            --warmup untimed steps, then --steps timed ones. Reports examples/s, seconds per step and the \
            process's peak resident memory.
            """)

    @Option(name: .long, help: "A sentence-transformers folder (BERT), e.g. models/all-MiniLM-L6-v2/1.")
    var model: String

    @Option(name: .long, help: "Corpus file, one text per line.")
    var corpus: String

    @Option(name: .long, help: "Examples per step.")
    var batchSize = 32

    @Option(name: .long, help: "Tokens per example, special tokens included.")
    var length = 64

    @OptionGroup var timing: TrainingBenchOptions

    func run() throws {
        try Mass.checkCPU()
        guard batchSize > 0, length >= 4 else {
            throw ValidationError("--batch-size must be positive, --length at least 4")
        }
        let (steps, warmup, threads, json) = (timing.steps, timing.warmup, timing.threads, timing.json)
        try BLAS.setThreads(threads)
        let model = try SentenceEncoderClassifier(
            directory: URL(fileURLWithPath: model), classes: 2, seed: 42, dropout: 0.1)
        let lines = try String(contentsOfFile: corpus, encoding: .utf8).split(separator: "\n").map(String.init)
        // Consecutive lines joined until the tokenizer gives `length` tokens or more.
        var texts: [String] = []
        var current = ""
        for line in lines where !line.isEmpty {
            current = current.isEmpty ? line : current + " " + line
            if model.tokenizer.encode(current, maxLength: 100_000).ids.count >= length {
                texts.append(current)
                current = ""
            }
        }
        guard texts.count >= batchSize else {
            throw ValidationError(
                "\(corpus) makes \(texts.count) texts of \(length) tokens; a batch needs \(batchSize)")
        }
        let labels = texts.indices.map { $0 % 2 }
        var settings = FineTuning.Settings()
        settings.maxLength = length
        let tuning = FineTuning(settings)
        var optimizer = AdamW(model.parameters, learningRate: 5e-5, weightDecay: 0.01)
        var generator = SeededGenerator(seed: 1)
        var next = 0
        // A step as FineTuning takes it: forward and backward (the graph freed), then AdamW.
        func step() throws -> Double {
            let batch = (0..<batchSize).map { (next + $0) % texts.count }
            next += batchSize
            let loss = try tuning.accumulateGradients(
                model, group: [batch], texts: texts, labels: labels, generator: &generator, step: 0)
            optimizer.step()
            return loss
        }
        for _ in 0..<warmup { _ = try step() }
        let started = Date()
        var last = 0.0
        for _ in 0..<steps { last = try step() }
        let seconds = Date().timeIntervalSince(started)
        try Self.report(
            examples: steps * batchSize, seconds: seconds, steps: steps, loss: last, json: json,
            fields: ["batch_size": batchSize, "length": length, "threads": threads, "steps": steps])
    }

    /// Examples/s, seconds per step and the process's peak resident memory, as text or one JSON object.
    static func report(
        examples: Int, seconds: Double, steps: Int, loss: Double, json: Bool, fields: [String: Int]
    ) throws {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peak = Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
        var result: [String: Any] = [
            "examples_per_second": Double(examples) / seconds, "seconds_per_step": seconds / Double(steps),
            "peak_rss_mb": peak, "last_loss": loss,
        ]
        for (key, value) in fields { result[key] = value }
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(
                String(
                    format: "%.1f examples/s  %.3f s/step  peak RSS %.0f MB  %@", Double(examples) / seconds,
                    seconds / Double(steps), peak,
                    fields.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
        }
    }
}

/// `mass bench train-cnn`: training throughput of the Fashion-MNIST ConvNet from scratch, as
/// `benchmarks/peers/train_cnn_torch.py` measures the same network in PyTorch.
struct BenchTrainCNNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-cnn",
        abstract: "ConvNet training throughput on MNIST-style images: examples/s and peak memory.",
        discussion: """
            Trains the two-convolution network of mass train's image-classification-cnn task (AdamW, dropout \
            0.25) on the folder's train-images-idx3-ubyte.gz / train-labels-idx1-ubyte.gz, in order: --warmup \
            untimed steps, then --steps timed ones.
            """)

    @Option(name: .long, help: "Folder with train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz.")
    var data = "/usr/share/datasets/fashion-mnist"

    @Option(name: .long, help: "Examples per step.")
    var batchSize = 64

    @Option(name: .long, help: "The convolutions' code: onednn (oneDNN's direct convolutions) or im2col.")
    var convolution = "onednn"

    @OptionGroup var timing: TrainingBenchOptions

    func run() throws {
        try Mass.checkCPU()
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        switch convolution {
        case "onednn": ConvolutionBackend.selected = .oneDNN
        case "im2col": ConvolutionBackend.selected = .im2col
        default: throw ValidationError("--convolution must be onednn or im2col")
        }
        let (steps, warmup, threads, json) = (timing.steps, timing.warmup, timing.threads, timing.json)
        try ImageTraining.setThreads(threads)
        let folder = URL(fileURLWithPath: data)
        let dataset = try ImageDataset(
            idxImages: folder.appendingPathComponent("train-images-idx3-ubyte.gz"),
            labels: folder.appendingPathComponent("train-labels-idx1-ubyte.gz"))
        let model = ConvNet(side: dataset.height, channels: dataset.channels, classes: dataset.classCount, seed: 42)
        var optimizer = AdamW(model.parameters, learningRate: 1e-3, weightDecay: 1e-4)
        var generator = SeededGenerator(seed: 1)
        var next = 0
        func step() -> Float {
            let batch = (0..<batchSize).map { (next + $0) % dataset.count }
            next += batchSize
            let (pixels, labels) = dataset.batch(batch)
            for p in model.parameters { p.zeroGrad() }
            let value: Float
            do {
                let loss = Loss.crossEntropy(
                    model.logits(pixels, count: batch.count, training: true, generator: &generator), labels: labels)
                value = loss.scalar
                loss.backward()
            }
            optimizer.step()
            return value
        }
        for _ in 0..<warmup { _ = step() }
        let started = Date()
        var last: Float = 0
        for _ in 0..<steps { last = step() }
        let seconds = Date().timeIntervalSince(started)
        try BenchTrainCommand.report(
            examples: steps * batchSize, seconds: seconds, steps: steps, loss: Double(last), json: json,
            fields: ["batch_size": batchSize, "threads": threads, "steps": steps])
    }
}

/// The timing options both training benchmarks share.
struct TrainingBenchOptions: ParsableArguments {
    @Option(name: .long, help: "Timed steps.")
    var steps = 20

    @Option(name: .long, help: "Untimed steps first.")
    var warmup = 3

    @Option(name: .long, help: "Compute threads.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard steps > 0, warmup >= 0, threads > 0 else {
            throw ValidationError("--steps and --threads must be positive, --warmup not negative")
        }
    }
}
