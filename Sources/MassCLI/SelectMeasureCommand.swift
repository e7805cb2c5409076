import ArgumentParser
import Foundation
import MassModels
import MassRuntime

/// `mass select`'s measuring process, one per candidate (hidden): serves the model with the server's text
/// classification service and batching, predicts every text, times one-text requests one after another (p50,
/// p99), then each batch size's throughput over the texts, and reports its own peak resident memory. A process of
/// its own, so each candidate's memory is its own and a candidate that crashes takes only its own measures along.
struct SelectMeasureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "select-measure", abstract: "Measure one selection candidate (used by mass select).",
        shouldDisplay: false)

    @Option(name: .long, help: "The model folder.") var model: String
    @Option(name: .long, help: "A JSON array of the texts.") var texts: String
    @Option(name: .long, help: "One-text requests timed for the latencies.") var requests = 200
    @Option(name: .long, parsing: .upToNextOption, help: "Batch sizes tried for throughput.") var batchSizes = [
        1, 8, 32,
    ]
    @Option(name: .long, help: "Compute threads.") var threads = ProcessInfo.processInfo.activeProcessorCount

    func run() async throws {
        try Mass.checkCPU()
        guard
            let texts = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: texts)))
                as? [String], !texts.isEmpty
        else { throw CLIError("\(self.texts): not a JSON array of texts") }
        let largest = batchSizes.max() ?? 1
        let service = try OfflineServing.serve(
            model, task: .textClassification, as: (any TextClassificationServing).self, threads: threads,
            maxBatchSize: max(largest, 32), maxBatchTokens: max(largest, 32) * 512)
        defer { service.shutdown() }
        func classify(_ batch: ArraySlice<String>) async throws -> [[Float]] {
            try await service.classify(batch.map { .text($0) }, truncate: true)
        }
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

        var predictions: [Int] = []
        for start in stride(from: 0, to: texts.count, by: 32) {
            for logits in try await classify(texts[start..<min(texts.count, start + 32)]) {
                predictions.append(logits.indices.max { logits[$0] < logits[$1] } ?? 0)
            }
        }
        // Warm, then one request at a time.
        for text in texts.prefix(10) { _ = try await classify([text]) }
        var latencies: [Double] = []
        for i in 0..<requests {
            let start = now()
            _ = try await classify([texts[i % texts.count]])
            latencies.append(Double(now() - start) / 1e6)
        }
        latencies.sort()
        func quantile(_ q: Double) -> Double {
            latencies[min(latencies.count - 1, Int((q * Double(latencies.count)).rounded(.up)) - 1)]
        }
        var throughput: [String: Double] = [:]
        for size in batchSizes {
            let start = now()
            for first in stride(from: 0, to: texts.count, by: size) {
                _ = try await classify(texts[first..<min(texts.count, first + size)])
            }
            throughput[String(size)] = Double(texts.count) / (Double(now() - start) / 1e9)
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let result: [String: Any] = [
            "labels": service.labels, "predictions": predictions, "p50_ms": quantile(0.5), "p99_ms": quantile(0.99),
            "throughput": throughput, "peak_rss_mb": Double(usage.ru_maxrss) * 1024 / 1e6,
        ]
        print(OfflineServing.json(result))
    }
}
