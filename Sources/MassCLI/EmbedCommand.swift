import ArgumentParser
import Foundation
import MassModels
import MassRuntime
import MassTensor

struct EmbedCommand: AsyncParsableCommand {
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

    @Option(name: .long, help: "float32, or int8: the linear layers quantised at load (docs/compression.md).")
    var precision: String = "float32"

    @Argument(help: "Texts to embed. Without any, one text per line of standard input.")
    var texts: [String] = []

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard tokenBudget >= 1 else { throw ValidationError("--token-budget must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard Linear.Precision(rawValue: precision) != nil else {
            throw ValidationError("--precision must be float32 or int8")
        }
    }

    func run() async throws {
        try Mass.checkCPU()
        let inputs =
            texts.isEmpty
            ? try TextInput.lines(FileHandle.standardInput.readDataToEndOfFile(), source: "standard input") : texts
        // The server's embedding service and batching policy, in process: each text is one request and the
        // batcher coalesces them (up to --batch-size texts and --token-budget tokens per call). Several texts: one
        // single-threaded worker per thread, each taking batches from the queue (best throughput); one text: one
        // worker with every thread inside the call (best latency).
        let workers = inputs.count > 1 ? threads : 1
        let service = try OfflineServing.serve(
            model, task: .textEmbedding, as: (any TextEmbeddingServing).self, threads: threads, instances: workers,
            maxBatchSize: batchSize, maxBatchTokens: tokenBudget, precision: Linear.Precision(rawValue: precision)!)
        defer { service.shutdown() }
        let results = try await withThrowingTaskGroup(of: (Int, EmbeddingResult).self) { group in
            // Queued shortest first (bytes, close to tokens), so that a batch holds texts of similar length.
            for i in inputs.indices.sorted(by: { inputs[$0].utf8.count < inputs[$1].utf8.count }) {
                let text = inputs[i]
                group.addTask {
                    // Awaited before the tuple is built (swiftlang/swift#91911).
                    let result = try await service.embed([text])
                    return (i, result)
                }
            }
            var results = [EmbeddingResult?](repeating: nil, count: inputs.count)
            for try await (i, result) in group { results[i] = result }
            return results.compactMap { $0 }
        }
        let embeddings = results.map { $0.embeddings[0] }
        let counts = results.map { $0.tokenCounts[0] }
        var out = ""
        out.reserveCapacity(inputs.count * 4200)
        for (i, vector) in embeddings.enumerated() {
            out += "{\"index\": \(i), \"tokens\": \(counts[i]), \"embedding\": ["
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
