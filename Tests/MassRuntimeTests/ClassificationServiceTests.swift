import Foundation
import MassImage
import MassModels
import MassRuntime
import MassTesting
import Testing

/// The image service with the real model: requests batched together are decoded on the compute threads, and an
/// image that cannot be read fails its own request only.
@Suite(.serialized) struct ClassificationServiceTests {
    static let model: ImageClassifier? = try? ImageClassifier(directory: EfficientNetFixture.modelDirectory)

    @Test func badImagesFailOnlyTheirOwnRequests() async throws {
        let model = try #require(Self.model, "run 'make models' first")
        let json = #"{"task": "image-classification", "batching": {"max_batch_size": 8, "max_queue_delay_ms": 200}}"#
        let service = ClassificationService(
            classifier: model, config: try ModelConfig.parse(Data(json.utf8), file: "mass.json"))
        defer { service.shutdown() }
        let rocket = Array(try Data(contentsOf: EfficientNetFixture.url("rocket.jpg")))
        let coffee = Array(try Data(contentsOf: EfficientNetFixture.url("coffee.png")))
        let truncated = Array(coffee.prefix(coffee.count / 2))
        let requests: [[[UInt8]]] = [[rocket], [truncated], [coffee, rocket], [rocket, Array("GIF89a".utf8)]]
        // One variable per request: a task group returning (index, result) tuples lost the index at -O with Swift
        // 6.3 (swiftlang/swift#91911: tuple parts written before a suspension).
        @Sendable func outcome(_ files: [[UInt8]]) async -> Result<[[Float]], any Error> {
            do {
                let logits = try await service.classify(encoded: files)
                return .success(logits)
            } catch {
                return .failure(error)
            }
        }
        async let first = outcome(requests[0])
        async let second = outcome(requests[1])
        async let third = outcome(requests[2])
        async let fourth = outcome(requests[3])
        let results = await [first, second, third, fourth]
        #expect(service.batcher.statistics.largestBatch > 1, "four requests within 200 ms should share a batch")
        var expected: [[Float]] = []
        for file in [rocket, coffee] {
            var input = [Float](repeating: 0, count: model.inputSize)
            try input.withUnsafeMutableBufferPointer { try model.prepare(encoded: file, into: $0.baseAddress!) }
            expected.append(try await service.classify(prepared: input)[0])
        }
        let single = try results[0].get()
        #expect(Comparison.maxAbsDiff(single[0], expected[0]) <= 1e-5)
        let pair = try results[2].get()
        #expect(
            Comparison.maxAbsDiff(pair[0], expected[1]) <= 1e-5 && Comparison.maxAbsDiff(pair[1], expected[0]) <= 1e-5)
        func error(_ i: Int) -> ImageError? {
            guard case .failure(let e) = results[i] else { return nil }
            return e as? ImageError
        }
        #expect(error(1)?.code == .corrupt && error(1)!.message.hasPrefix("PNG"), "\(String(describing: error(1)))")
        #expect(error(3)?.code == .unsupportedFormat && error(3)!.message.hasPrefix("image 1:"))
    }
}
