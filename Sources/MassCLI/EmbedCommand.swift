import ArgumentParser
import Foundation
import MassModels
import MassTokenizers

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed texts with a sentence-embedding model.",
        discussion: """
            Embeds each TEXT argument, or each line of standard input when none is given, and prints one JSON \
            object per input, in input order: {"index": i, "tokens": n, "embedding": [...]}.
            """)

    @Option(name: .long, help: "Model folder as its authors ship it, e.g. models/all-MiniLM-L6-v2/1.")
    var model: String

    @Option(name: .long, help: "Texts per model call, at most (a call also stops at the token budget).")
    var batchSize: Int = 64

    @Option(name: .long, help: "Tokens per model call, at most.")
    var tokenBudget: Int = 1024

    @Option(name: .long, help: "Compute threads (default: every core).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Argument(help: "Texts to embed. Without any, one text per line of standard input.")
    var texts: [String] = []

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard tokenBudget >= 1 else { throw ValidationError("--token-budget must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        try Mass.checkCPU()
        let inputs =
            texts.isEmpty
            ? try TextInput.lines(FileHandle.standardInput.readDataToEndOfFile(), source: "standard input") : texts
        let embedder = try SentenceEmbedder(directory: URL(fileURLWithPath: model))
        let encodings = inputs.map { embedder.tokenize($0).ids }
        // Several texts: one worker per thread, each single-threaded (best throughput). One text: all
        // threads inside the call (best latency).
        let workers = inputs.count > 1 ? threads : 1
        let runner = OfflineEmbedder(model: embedder, workers: workers, threadsPerWorker: workers == 1 ? threads : 1)
        let batches = OfflineEmbedder.plan(
            lengths: encodings.map(\.count), batchSize: batchSize, tokenBudget: tokenBudget)
        let (embeddings, _) = try runner.run(encodings, batches: batches)
        var out = ""
        out.reserveCapacity(inputs.count * 4200)
        for (i, vector) in embeddings.enumerated() {
            out += "{\"index\": \(i), \"tokens\": \(encodings[i].count), \"embedding\": ["
            for (k, v) in vector.enumerated() {
                if k > 0 { out += ", " }
                out += v.description
            }
            out += "]}\n"
            if out.utf8.count > 1 << 20 {
                FileHandle.standardOutput.write(Data(out.utf8))
                out.removeAll(keepingCapacity: true)
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
