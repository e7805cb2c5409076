import ArgumentParser
import Foundation
import MassModels
import MassRuntime
import MassTensor

/// Builds a served model from a model folder for an offline command: the same architecture registry, task
/// service and batching policy as `mass serve`, in process.
enum OfflineServing {
    static func serve<Serving>(
        _ directory: String, task: ModelTask, as _: Serving.Type, threads: Int, instances: Int = 1,
        maxBatchSize: Int = 32, maxBatchTokens: Int = 4096, precision: Linear.Precision = .float32,
        configure: (inout ModelConfig) -> Void = { _ in }
    ) throws -> Serving {
        let model = try ArchitectureRegistry.standard.load(
            URL(fileURLWithPath: directory), task: task, precision: precision)
        var config = ModelConfig(task: task)
        config.precision = precision
        config.batching.maxBatchSize = maxBatchSize
        config.batching.maxBatchTokens = maxBatchTokens
        config.instanceCount = instances
        config.maxInputs = 100_000
        config.maxQueueSize = 1_000_000
        config.requestTimeoutMilliseconds = 3_600_000
        configure(&config)
        let name = URL(fileURLWithPath: directory).standardizedFileURL.deletingLastPathComponent().lastPathComponent
        let served = try TaskRegistry.standard.serve(
            model, task: task,
            context: ServingContext(
                identity: ServedIdentity(name: name, version: 1), config: config, metrics: nil,
                threads: max(1, threads / max(1, instances))))
        guard let typed = served as? Serving else { throw CLIError("\(directory) does not serve \(task.rawValue)") }
        return typed
    }

    /// The texts of the arguments, or one per line of standard input.
    static func texts(_ arguments: [String]) throws -> [String] {
        arguments.isEmpty
            ? try TextInput.lines(FileHandle.standardInput.readDataToEndOfFile(), source: "standard input") : arguments
    }

    static func json(_ object: Any) -> String {
        let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return data.map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

struct ClassifyTextCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify-text",
        abstract: "Classify texts (or text pairs) with a sequence-classification model.",
        discussion: """
            Prints one JSON object per input, in input order: {"index", "labels": [{"label", "score"}]} with the \
            --top-k labels by score (softmax, or a sigmoid per label for multi-label models; --raw-scores: \
            logits). With --pair, each input is two texts separated by a tab.
            """)

    @Option(
        name: .long,
        help: "Model folder: config.json (BertForSequenceClassification), model.safetensors, tokenizer.json.")
    var model: String

    @Option(name: .long, help: "Labels to print per input (default: all).")
    var topK: Int?

    @Flag(name: .long, help: "Print logits instead of probabilities.")
    var rawScores = false

    @Flag(name: .long, help: "Each input is a pair: two texts separated by a tab.")
    var pair = false

    @Flag(name: .long, help: "Refuse inputs longer than the model takes instead of truncating them.")
    var noTruncate = false

    @Option(name: .long, help: "Compute threads (default: every core).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Argument(help: "Texts. Without any, one per line of standard input.")
    var texts: [String] = []

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1") }
    }

    func run() async throws {
        try Mass.checkCPU()
        let service = try OfflineServing.serve(
            model, task: .textClassification, as: (any TextClassificationServing).self, threads: threads)
        defer { service.shutdown() }
        let lines = try OfflineServing.texts(texts)
        let inputs: [TextClassificationInput] = try lines.enumerated().map { i, line in
            guard pair else { return .text(line) }
            let parts = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw CLIError("input \(i): --pair needs two texts separated by a tab") }
            return .pair(String(parts[0]), String(parts[1]))
        }
        let logits = try await service.classify(inputs, truncate: !noTruncate)
        for (i, row) in logits.enumerated() {
            let values = rawScores ? row : service.scores(row)
            let ranked = values.enumerated().sorted { $0.element > $1.element }.prefix(topK ?? values.count)
            let labels = ranked.map { ["label": service.labels[$0.offset], "score": Double($0.element)] }
            print(OfflineServing.json(["index": i, "labels": labels]))
        }
    }
}

struct RerankCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rerank",
        abstract: "Rank texts by relevance to a query with a cross-encoder.",
        discussion: """
            Scores every TEXT (or line of standard input) against --query and prints one JSON object per text, \
            most relevant first: {"index", "score"} (sigmoid of the logit; --raw-scores: the logit), with "text" \
            when --return-text is given.
            """)

    @Option(name: .long, help: "Model folder: a BertForSequenceClassification checkpoint with one label.")
    var model: String

    @Option(name: .long, help: "The query.")
    var query: String

    @Flag(name: .long, help: "Print logits instead of sigmoid scores.")
    var rawScores = false

    @Flag(name: .long, help: "Include each text in its line.")
    var returnText = false

    @Flag(name: .long, help: "Refuse pairs longer than the model takes instead of truncating them.")
    var noTruncate = false

    @Option(name: .long, help: "Compute threads (default: every core).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Argument(help: "Texts to rank. Without any, one per line of standard input.")
    var texts: [String] = []

    func run() async throws {
        try Mass.checkCPU()
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        let service = try OfflineServing.serve(model, task: .rerank, as: (any RerankServing).self, threads: threads)
        defer { service.shutdown() }
        let candidates = try OfflineServing.texts(texts)
        guard !candidates.isEmpty else { throw CLIError("no texts to rank") }
        let logits = try await service.rerank(query: query, texts: candidates, truncate: !noTruncate)
        for (index, logit) in logits.enumerated().sorted(by: { $0.element > $1.element }) {
            var entry: [String: Any] = [
                "index": index, "score": Double(rawScores ? logit : SequenceClassifier.sigmoid(logit)),
            ]
            if returnText { entry["text"] = candidates[index] }
            print(OfflineServing.json(entry))
        }
    }
}
