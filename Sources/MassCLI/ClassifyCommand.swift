import ArgumentParser
import Foundation
import MassModels
import MassRuntime
import MassTensor

struct ClassifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify images (JPEG or PNG) with an image classification model.",
        discussion: """
            Decodes each IMAGE (EXIF orientation applied), resizes its shorter side to 256, crops the centre \
            224x224 and prints the --top-k classes with their probabilities. Images are classified in batches \
            of --batch-size. A file that cannot be read is reported on standard error and the exit status is 1.
            """)

    @Option(name: .long, help: "Model folder: a PyTorch checkpoint and labels.txt.")
    var model = "models/efficientnet-lite0/1"

    @Option(name: .long, help: "Classes to print per image.")
    var topK = 5

    @Option(name: .long, help: "Images per model call.")
    var batchSize = 16

    @Option(name: .long, help: "Compute threads (default: every core).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Flag(
        name: .long, help: "Print one JSON object per image: {\"file\", \"data\": [{\"label\", \"index\", \"score\"}]}."
    )
    var json = false

    @Argument(help: "Image files.")
    var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image file") }
        guard topK >= 1, batchSize >= 1, threads >= 1 else {
            throw ValidationError("--top-k, --batch-size and --threads must be at least 1")
        }
    }

    func run() async throws {
        try Mass.checkCPU()
        // The server's image service and batching policy, in process: each file is one request (an unreadable
        // one fails alone), coalesced into calls of up to --batch-size images whose files are decoded on the
        // compute threads that run them. Files are read a few batches ahead, not all at once.
        let service = try OfflineServing.serve(
            model, task: .imageClassification, as: (any ImageClassificationServing).self, threads: threads,
            maxBatchSize: batchSize, maxBatchTokens: batchSize)
        defer { service.shutdown() }
        let classifier = service.classifier
        var failed = false
        var start = 0
        while start < images.count {
            let files = Array(images[start..<min(images.count, start + 4 * batchSize)])
            start += files.count
            let results = await withTaskGroup(of: (Int, Result<[Float], any Error>).self) { group in
                for (i, file) in files.enumerated() {
                    group.addTask {
                        do {
                            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
                            // Awaited before the tuple is built (swiftlang/swift#91911).
                            let logits = try await service.classify(encoded: [bytes])[0]
                            return (i, .success(logits))
                        } catch {
                            return (i, .failure(error))
                        }
                    }
                }
                var results = [Result<[Float], any Error>?](repeating: nil, count: files.count)
                for await (i, result) in group { results[i] = result }
                return results
            }
            for (file, result) in zip(files, results) {
                switch result {
                case .success(let logits)?: print(file, classifier.top(logits, k: topK))
                case .failure(let error)?:
                    failed = true
                    FileHandle.standardError.write(Data("mass classify: \(file): \(describe(error))\n".utf8))
                case nil:
                    failed = true
                }
            }
        }
        if failed { throw ExitCode(1) }
    }

    private func describe(_ error: any Error) -> String {
        if let e = error as? CocoaError, e.code == .fileReadNoSuchFile { return "no such file" }
        if error is CocoaError { return "cannot be read" }
        return "\(error)"
    }

    private func print(_ file: String, _ predictions: [ImageClassifier.Prediction]) {
        if json {
            let object: [String: Any] = [
                "file": file,
                "data": predictions.map { ["label": $0.label, "index": $0.index, "score": Double($0.score)] },
            ]
            Swift.print(OfflineServing.json(object))
        } else {
            Swift.print(file)
            for p in predictions { Swift.print(String(format: "  %.4f  %@ (%d)", p.score, p.label, p.index)) }
        }
    }
}
