import Foundation
import MassModels
import MassRuntime
import Synchronization

/// A model of the fast tests: no weights, no download. A folder is a fake model when it holds `fake.json`,
/// `{"dimension": N, "load_delay_ms": M, "fail_load": "message", "fail_on": "text"}` (all optional). It "embeds"
/// a text as N copies of its UTF-8 length, and fails a batch holding the text `fail_on`.
public final class FakeEmbedder: TaskModel {
    public struct Spec: Decodable, Sendable {
        public var dimension: Int?
        public var load_delay_ms: Int?
        public var fail_load: String?
        public var fail_on: String?
    }

    public let dimension: Int
    public let failOn: String?
    /// Batches run, for tests of batching.
    public let batches = Atomic<Int>(0)

    public init(directory: URL) throws {
        let url = directory.appendingPathComponent("fake.json")
        let spec = try JSONDecoder().decode(Spec.self, from: Data(contentsOf: url))
        if let delay = spec.load_delay_ms { Thread.sleep(forTimeInterval: Double(delay) / 1000) }
        if let message = spec.fail_load { throw ModelError(.badConfig, "\(url.path): \(message)") }
        dimension = spec.dimension ?? 4
        failOn = spec.fail_on
    }

    public static let architecture = ArchitectureRegistry.Entry(
        name: "fake", tasks: [.textEmbedding], matches: { $0.files.contains("fake.json") },
        load: { folder, _, _ in try FakeEmbedder(directory: folder.directory) })

    /// The registries of the fast tests: only the fake architecture, and the fake embedding task.
    public static let architectures = ArchitectureRegistry([architecture])
    public static let tasks = TaskRegistry([FakeEmbeddingService.taskEntry])
}

/// The fake's batches: every text of every request in one call, on the worker's thread.
public struct FakeEmbeddingBatch: BatchModel {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let model: FakeEmbedder
    public func makeLane(threads: Int) -> Int { threads }
    public func rest(_ lane: Int) {}
    public func cost(of item: [String]) -> Int { item.count }
    /// Its "tokens" are UTF-8 bytes, as its token counts say.
    public func usage(of item: [String]) -> (kind: String, amount: Double)? {
        ("tokens", Double(item.reduce(0) { $0 + $1.utf8.count }))
    }
    public var unitsMetric: (name: String, help: String) { ("mass_tokens_total", "Tokens processed.") }

    public func run(_ items: [[String]], lane: Int) throws -> [[[Float]]] {
        model.batches.add(1, ordering: .relaxed)
        if let bad = model.failOn, items.contains(where: { $0.contains(bad) }) {
            throw Failure(description: "fake model failed on '\(bad)'")
        }
        return items.map { texts in
            texts.map { [Float](repeating: Float($0.utf8.count), count: model.dimension) }
        }
    }
}

/// The fake embedding model as a served model: the same shell and serving protocol as the real one.
public final class FakeEmbeddingService: BatchedServedModel, TextEmbeddingServing {
    public static let taskEntry = TaskRegistry.Entry(task: .textEmbedding) { model, context in
        guard let fake = model as? FakeEmbedder else { throw TaskRegistry.mismatch(model, .textEmbedding) }
        return FakeEmbeddingService(model: fake, context: context)
    }

    public let batcher: BatchingService<FakeEmbeddingBatch>
    public let threads: Int
    public var task: ModelTask { .textEmbedding }
    public var dimension: Int { batcher.model.model.dimension }
    public var inputs: [TensorSpec] { [TensorSpec("text", "BYTES", [-1])] }
    public var outputs: [TensorSpec] { [TensorSpec("embedding", "FP32", [-1, dimension])] }

    public init(model: FakeEmbedder, context: ServingContext) {
        threads = context.threads
        batcher = BatchingService(
            model: FakeEmbeddingBatch(model: model), config: context.config, name: context.identity.name,
            version: context.identity.version, metrics: context.metrics, threads: context.threads)
    }

    public func warmUp() async throws { _ = try await embed(["warm-up"]) }

    public func embed(_ texts: [String]) async throws -> EmbeddingResult {
        let vectors = try await batcher.submit(texts)
        return EmbeddingResult(embeddings: vectors, tokenCounts: texts.map(\.utf8.count))
    }
}

/// A model repository in a temporary folder, for the fast tests.
public struct TemporaryRepository: Sendable {
    public let root: URL

    public init(_ name: String = "repo") throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mass-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    /// Adds a fake model: `mass.json` (task text-embedding unless given) and versions with their `fake.json`.
    @discardableResult
    public func add(
        _ name: String, massJSON: String = #"{"task": "text-embedding"}"#, versions: [Int: String] = [1: "{}"]
    ) throws -> URL {
        let dir = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(massJSON.utf8).write(to: dir.appendingPathComponent("mass.json"))
        for (version, fake) in versions {
            let v = dir.appendingPathComponent(String(version))
            try FileManager.default.createDirectory(at: v, withIntermediateDirectories: true)
            try Data(fake.utf8).write(to: v.appendingPathComponent("fake.json"))
        }
        return dir
    }

    public func remove() { try? FileManager.default.removeItem(at: root) }
}
