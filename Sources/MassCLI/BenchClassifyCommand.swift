import ArgumentParser
import Foundation
import MassImage
import MassModels
import MassTensor

struct BenchClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Image classification throughput and latency: model only, and end to end from file bytes.",
        discussion: """
            Reads the IMAGE files into memory first. Model only: the prepared 224x224 inputs, --calls timed calls \
            at batch 1 and --calls / 4 at batch 16 (after a warm-up), images/s and per-call latency. End to end: \
            decode + resize + crop + normalise + model from the encoded bytes, one image per call (decoding on one \
            thread) and 16 per call (each thread decoding the image it runs next), --rounds passes over the files. \
            Then the preprocessing alone (preprocess_ms: the crop's part of the file decoded, resized, normalised) \
            and a whole-image decode (decode_ms). Medians over the timed calls.
            """)

    @Option(name: .long, help: "Model folder: a PyTorch checkpoint and labels.txt.")
    var model = "models/efficientnet-lite0/1"

    @Option(name: .long, help: "Compute threads.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Timed model-only calls at batch 1 (a quarter of that at batch 16).")
    var calls = 200

    @Option(name: .long, help: "End-to-end passes over the files.")
    var rounds = 5

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    @Argument(help: "Image files (JPEG or PNG).")
    var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image file") }
        guard threads >= 1, calls >= 4, rounds >= 1 else {
            throw ValidationError("--threads, --calls >= 4, --rounds >= 1")
        }
    }

    func run() throws {
        try Mass.checkCPU()
        let classifier = try ImageClassifier(directory: URL(fileURLWithPath: model))
        let pool = ComputePool(threads: threads)
        let workspace = EfficientNetWorkspace()
        let files = try images.map { Array(try Data(contentsOf: URL(fileURLWithPath: $0))) }
        let size = classifier.inputSize
        func prepare(_ bytes: [UInt8], into: UnsafeMutablePointer<Float>) throws {
            try classifier.prepare(encoded: bytes, into: into)
        }
        var prepared = [Float](repeating: 0, count: 16 * size)
        try prepared.withUnsafeMutableBufferPointer { p in
            for i in 0..<16 { try prepare(files[i % files.count], into: p.baseAddress! + i * size) }
        }
        var report: [(String, Any)] = [("model", model), ("threads", threads), ("files", images.count)]
        try prepared.withUnsafeBufferPointer { p in
            for batch in [1, 16] {
                let n = batch == 1 ? calls : max(2, calls / 4)
                _ = BenchTiming.runs(max(3, n / 10)) {
                    _ = classifier.logits(p.baseAddress!, batch: batch, workspace: workspace, pool: pool)
                }
                let t = BenchTiming.runs(n) {
                    _ = classifier.logits(p.baseAddress!, batch: batch, workspace: workspace, pool: pool)
                }
                report.append(("model_b\(batch)_images_per_s", Double(batch) / BenchTiming.median(t)))
                report.append(
                    (
                        "model_b\(batch)_ms",
                        ["p50": BenchTiming.median(t) * 1000, "p90": BenchTiming.percentile(t, 0.9) * 1000]
                    ))
            }
        }
        // End to end from the encoded bytes.
        var input = [Float](repeating: 0, count: 16 * size)
        try input.withUnsafeMutableBufferPointer { p in
            var perImage: [Double] = []
            for _ in 0..<rounds {
                for bytes in files {
                    perImage += BenchTiming.runs(1) {
                        _ = classifier.logits(encoded: [bytes], workspace: workspace, pool: pool)
                    }
                }
            }
            report.append(("e2e_b1_images_per_s", 1 / BenchTiming.median(perImage)))
            report.append(
                (
                    "e2e_b1_ms",
                    ["p50": BenchTiming.median(perImage) * 1000, "p90": BenchTiming.percentile(perImage, 0.9) * 1000]
                ))
            var perBatch: [Double] = []
            for r in 0..<rounds {
                let chunk = (0..<16).map { files[(r * 16 + $0) % files.count] }
                perBatch += BenchTiming.runs(1) {  // each lane decodes the image it runs next
                    _ = classifier.logits(encoded: chunk, workspace: workspace, pool: pool)
                }
            }
            report.append(("e2e_b16_images_per_s", 16 / BenchTiming.median(perBatch)))
            var decodeOnly: [Double] = []
            for _ in 0..<rounds {
                for bytes in files {
                    decodeOnly += try BenchTiming.runs(1) { try prepare(bytes, into: p.baseAddress!) }
                }
            }
            report.append(
                (
                    "preprocess_ms",
                    [
                        "p50": BenchTiming.median(decodeOnly) * 1000,
                        "p90": BenchTiming.percentile(decodeOnly, 0.9) * 1000,
                    ]
                ))
            var decodeAlone: [Double] = []
            for _ in 0..<rounds {
                for bytes in files { decodeAlone += try BenchTiming.runs(1) { _ = try ImageDecoder.decode(bytes) } }
            }
            report.append(
                (
                    "decode_ms",
                    [
                        "p50": BenchTiming.median(decodeAlone) * 1000,
                        "p90": BenchTiming.percentile(decodeAlone, 0.9) * 1000,
                    ]
                ))
        }
        if json {
            let data = try JSONSerialization.data(
                withJSONObject: Dictionary(uniqueKeysWithValues: report),
                options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for (k, v) in report {
                let value: String
                switch v {
                case let d as Double: value = String(format: "%.1f", d)
                case let m as [String: Double]: value = String(format: "p50 %.2f  p90 %.2f", m["p50"]!, m["p90"]!)
                default: value = "\(v)"
                }
                print("\(k.padding(toLength: 22, withPad: " ", startingAt: 0)) \(value)")
            }
        }
    }
}
