import Foundation
import MassImage
public import MassModels
import MassTensor

/// An image classifier as `BatchingService` runs it: a request is its images (encoded files or prepared
/// tensors), its cost its image count, and a batch runs all images of its requests in one call, each decoded by
/// the compute thread that then runs it through the network. A request with an image that cannot be read fails
/// alone, with that image's error.
public struct ImageClassificationBatch: BatchModel {
    public let classifier: ImageClassifier
    public let maxPixels: Int

    public final class Lane {
        let workspace = EfficientNetWorkspace()
        let pool: ComputePool
        init(threads: Int) { pool = ComputePool(threads: threads) }
    }

    public func makeLane(threads: Int) -> Lane { Lane(threads: threads) }
    public func rest(_ lane: Lane) { lane.pool.rest() }
    public func cost(of item: [ImageClassifier.Image]) -> Int { item.count }

    public func run(_ items: [[ImageClassifier.Image]], lane: Lane) throws -> [[[Float]]] {
        try results(items, lane: lane).map { try $0.get() }
    }

    public func serve(_ batch: ServedBatch<Self>, lane: Lane) {
        for ((key, _), result) in zip(batch.items, results(batch.items.map(\.item), lane: lane)) {
            batch.finish(key, result.mapError { $0 })
        }
    }

    /// Per request: the logits of its images, or the first of its images' errors (naming the image when the
    /// request has several).
    private func results(_ items: [[ImageClassifier.Image]], lane: Lane) -> [Result<[[Float]], ImageError>] {
        let all = classifier.logits(
            items.flatMap { $0 }, maxPixels: maxPixels, workspace: lane.workspace, pool: lane.pool)
        var offset = 0
        return items.map { item in
            defer { offset += item.count }
            var logits: [[Float]] = []
            for (i, result) in all[offset..<(offset + item.count)].enumerated() {
                switch result {
                case .success(let out): logits.append(out)
                case .failure(let error):
                    return .failure(
                        item.count > 1 ? ImageError(error.code, "image \(i): \(error.message)") : error)
                }
            }
            return .success(logits)
        }
    }

    public func usage(of item: [ImageClassifier.Image]) -> (kind: String, amount: Double)? {
        ("images", Double(item.count))
    }
    public var unitsMetric: (name: String, help: String) { ("mass_images_total", "Images processed.") }
}

/// What the image routes need of a served model.
public protocol ImageClassificationServing: ServedModel {
    var classifier: ImageClassifier { get }
    /// Logits per image, for encoded image files (JPEG or PNG).
    func classify(encoded files: [[UInt8]]) async throws -> [[Float]]
    /// Logits per image for prepared inputs (NCHW float32, `count` × 3 × side × side).
    func classify(prepared inputs: [Float]) async throws -> [[Float]]
}

/// Serves one loaded image classifier: requests are queued and batched by a `BatchingService`; the images are
/// decoded on its compute threads.
public final class ClassificationService: BatchedServedModel, ImageClassificationServing {
    public static let taskEntry = TaskRegistry.Entry(task: .imageClassification) { model, context in
        guard let classifier = model as? ImageClassifier else {
            throw TaskRegistry.mismatch(model, .imageClassification)
        }
        return ClassificationService(
            classifier: classifier, config: context.config, name: context.identity.name,
            version: context.identity.version, metrics: context.metrics, threads: context.threads)
    }

    public let batcher: BatchingService<ImageClassificationBatch>
    public var classifier: ImageClassifier { batcher.model.classifier }
    public var task: ModelTask { .imageClassification }
    public var inputs: [TensorSpec] {
        [
            TensorSpec("image", "BYTES", [-1]),
            TensorSpec("input", "FP32", [-1, 3, classifier.inputSide, classifier.inputSide]),
        ]
    }
    public var outputs: [TensorSpec] {
        [
            TensorSpec("logits", "FP32", [-1, classifier.labels.count]),
            TensorSpec("probabilities", "FP32", [-1, classifier.labels.count]),
        ]
    }

    public init(
        classifier: ImageClassifier, config: ModelConfig, name: String = "model", version: Int = 1,
        metrics: MetricsRegistry? = nil, threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        batcher = BatchingService(
            model: ImageClassificationBatch(classifier: classifier, maxPixels: config.maxImagePixels), config: config,
            name: name, version: version, metrics: metrics, threads: threads)
    }

    /// Two images: the chain for one image and the per-thread chains for batches are both built.
    public func warmUp() async throws {
        _ = try await classify(prepared: [Float](repeating: 0, count: 2 * classifier.inputSize))
    }

    /// Logits per image, for encoded image files (JPEG or PNG). Throws `ImageError` for a file that cannot be
    /// read, naming its position.
    public func classify(encoded files: [[UInt8]]) async throws -> [[Float]] {
        try await batcher.submit(files.map(ImageClassifier.Image.encoded))
    }

    /// Logits per image for prepared inputs (NCHW float32, `count` × 3 × side × side).
    public func classify(prepared inputs: [Float]) async throws -> [[Float]] {
        let size = classifier.inputSize
        return try await batcher.submit(
            stride(from: 0, to: inputs.count, by: size).map {
                ImageClassifier.Image.prepared(Array(inputs[$0..<min(inputs.count, $0 + size)]))
            })
    }
}
