import Foundation
public import MassImage
public import MassModels
import MassTensor

/// An image classifier as `BatchingService` runs it: a request is its prepared inputs (NCHW, one image after
/// another), its cost its image count, and a batch runs all images of its requests in one call.
public struct ImageClassificationBatch: BatchModel {
    public let classifier: ImageClassifier

    public final class Lane {
        let workspace = EfficientNetWorkspace()
        let pool: ComputePool
        init(threads: Int) { pool = ComputePool(threads: threads) }
    }

    public func makeLane(threads: Int) -> Lane { Lane(threads: threads) }
    public func cost(of item: [Float]) -> Int { item.count / classifier.inputSize }

    public func run(_ items: [[Float]], lane: Lane) throws -> [[[Float]]] {
        let all = items.flatMap { $0 }
        let logits = all.withUnsafeBufferPointer {
            classifier.logits(
                $0.baseAddress!, batch: all.count / classifier.inputSize, workspace: lane.workspace, pool: lane.pool)
        }
        var offset = 0
        return items.map { item in
            let n = cost(of: item)
            defer { offset += n }
            return Array(logits[offset..<(offset + n)])
        }
    }

    public var unitsMetric: (name: String, help: String) { ("mass_images_total", "Images processed.") }
}

/// Serves one loaded image classifier: encoded images are decoded and prepared off the cooperative pool, then
/// queued and batched by a `BatchingService`.
public final class ClassificationService: Sendable {
    public let batcher: BatchingService<ImageClassificationBatch>
    public var classifier: ImageClassifier { batcher.model.classifier }
    public var config: ModelConfig { batcher.config }

    public init(
        classifier: ImageClassifier, config: ModelConfig, name: String = "model", metrics: MetricsRegistry? = nil,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        batcher = BatchingService(
            model: ImageClassificationBatch(classifier: classifier), config: config, name: name, metrics: metrics,
            threads: threads)
    }

    /// Logits per image, for encoded image files (JPEG or PNG). Throws `ImageError` for a file that cannot be
    /// read, naming its position.
    public func classify(encoded files: [[UInt8]]) async throws -> [[Float]] {
        let classifier = self.classifier
        let maxPixels = config.maxImagePixels
        let inputs = try await OffPool.run(name: "mass-decode") { () throws -> [Float] in
            let size = classifier.inputSize
            var inputs = [Float](repeating: 0, count: files.count * size)
            try inputs.withUnsafeMutableBufferPointer { buffer in
                for (i, file) in files.enumerated() {
                    do {
                        try classifier.prepare(
                            encoded: file, maxPixels: maxPixels, into: buffer.baseAddress! + i * size)
                    } catch let error as ImageError {
                        throw ImageError(error.code, files.count > 1 ? "image \(i): \(error.message)" : error.message)
                    }
                }
            }
            return inputs
        }
        return try await batcher.submit(inputs)
    }

    /// Logits per image for prepared inputs (NCHW float32, `count` × 3 × 224 × 224).
    public func classify(prepared inputs: [Float]) async throws -> [[Float]] {
        try await batcher.submit(inputs)
    }

    public func shutdown() { batcher.shutdown() }
    public func waitUntilStopped() async { await batcher.waitUntilStopped() }
}
