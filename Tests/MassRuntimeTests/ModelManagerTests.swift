import Foundation
import Logging
import MassModels
import MassRuntime
import MassTesting
import ServiceLifecycle
import Testing

/// The model manager with fake models (fast tier: no download, no binary): loading through the registries,
/// versions, lookups and their errors, reload, unload, conflicting changes, paths kept out of messages, the CPU
/// budget, and a graceful shutdown through a service group.
@Suite struct ModelManagerTests {
    func manager(_ repo: TemporaryRepository, cores: Int = 2) -> ModelManager {
        ModelManager(
            repository: ModelRepository(root: repo.root), architectures: FakeEmbedder.architectures,
            tasks: FakeEmbedder.tasks, cores: cores)
    }

    @Test func loadsServesAndLooksUpVersions() async throws {
        let repo = try TemporaryRepository()
        defer { repo.remove() }
        try repo.add(
            "fake", massJSON: #"{"task": "text-embedding", "version_policy": {"all": true}}"#,
            versions: [1: #"{"dimension": 3}"#, 2: #"{"dimension": 5}"#])
        let m = manager(repo)
        try await m.loadAll()
        #expect(m.readyNames == ["fake"])
        #expect(m.isReady)
        #expect(try m.versions("fake").map(\.identity.version) == [1, 2])
        let latest = try m.model("fake", as: (any TextEmbeddingServing).self, serving: .textEmbedding)
        #expect(latest.identity.version == 2)
        #expect(try await latest.embed(["abc", ""]).embeddings == [[3, 3, 3, 3, 3], [0, 0, 0, 0, 0]])
        let first = try m.model("fake", version: "1", as: (any TextEmbeddingServing).self, serving: .textEmbedding)
        #expect(first.dimension == 3)
        #expect(first.outputs == [TensorSpec("embedding", "FP32", [-1, 3])])

        #expect(caught(RuntimeError.self) { _ = try m.model("nope") }?.code == .modelNotFound)
        #expect(caught(RuntimeError.self) { _ = try m.model("fake", version: "7") }?.code == .versionNotFound)
        let wrong = caught(RuntimeError.self) {
            _ = try m.model("fake", as: (any RerankServing).self, serving: .rerank)
        }
        #expect(wrong?.code == .wrongTask)
        #expect(wrong?.message == "model 'fake' serves task 'text-embedding'; this route serves rerank models")
        await m.stopAll()
    }

    /// Every worker gets cores / instance_count threads, at least one.
    @Test func splitsTheCPUBudgetAmongInstances() async throws {
        let repo = try TemporaryRepository()
        defer { repo.remove() }
        try repo.add("one")
        try repo.add("two", massJSON: #"{"task": "text-embedding", "instance_count": 2}"#)
        try repo.add("four", massJSON: #"{"task": "text-embedding", "instance_count": 4}"#)
        let m = manager(repo, cores: 2)
        try await m.loadAll()
        func threads(_ name: String) throws -> Int { try #require(try m.model(name) as? FakeEmbeddingService).threads }
        #expect(try threads("one") == 2)
        #expect(try threads("two") == 1)
        #expect(try threads("four") == 1)
        await m.stopAll()
    }

    /// A model that fails to load names its file relative to the repository; the absolute path stays in the
    /// detail (the log). The server keeps serving the old version of a model whose reload fails.
    @Test func loadErrorsNeverRevealServerPaths() async throws {
        let repo = try TemporaryRepository()
        defer { repo.remove() }
        let dir = try repo.add("fake")
        let m = manager(repo)
        try await m.loadAll()
        try Data(#"{"fail_load": "weights are damaged"}"#.utf8).write(to: dir.appendingPathComponent("1/fake.json"))
        var failure: RuntimeError?
        do { try await m.load("fake") } catch let e as RuntimeError { failure = e }
        let error = try #require(failure)
        #expect(error.code == .loadFailed)
        #expect(error.message == "failed to load 'fake': fake/1/fake.json: weights are damaged")
        #expect(!error.message.contains(repo.root.path))
        #expect(error.detail?.contains(repo.root.path) == true)
        // The old version still answers.
        let old = try m.model("fake", as: (any TextEmbeddingServing).self, serving: .textEmbedding)
        #expect(try await old.embed(["ab"]).embeddings == [[2, 2, 2, 2]])

        var unknown: RuntimeError?
        do { try await m.load("missing") } catch let e as RuntimeError { unknown = e }
        #expect(unknown?.code == .modelNotFound)
        #expect(unknown?.message == "no model 'missing' in the repository")
        await m.stopAll()
    }

    @Test func badConfigNamesTheKeyNotThePath() async throws {
        let repo = try TemporaryRepository()
        defer { repo.remove() }
        try repo.add("fake", massJSON: #"{"task": "text-embedding", "max_batch": 3}"#)
        let m = manager(repo)
        var failure: RuntimeError?
        do { try await m.loadAll() } catch let e as RuntimeError { failure = e }
        #expect(failure?.message == "fake/mass.json: unknown key 'max_batch' (see docs/configuration.md)")
    }

    /// Two changes to one model at once: the second is refused with .conflict, the first completes.
    @Test func concurrentChangesToOneModelConflict() async throws {
        let repo = try TemporaryRepository()
        defer { repo.remove() }
        let dir = try repo.add("fake")
        let m = manager(repo)
        try await m.loadAll()
        try Data(#"{"load_delay_ms": 400}"#.utf8).write(to: dir.appendingPathComponent("1/fake.json"))
        async let slow: Void = m.load("fake")
        try await Task.sleep(for: .milliseconds(100))
        var second: RuntimeError?
        do { try await m.unload("fake") } catch let e as RuntimeError { second = e }
        #expect(second?.code == .conflict)
        try await slow
        #expect(m.readyNames == ["fake"])
        try await m.unload("fake")
        #expect(caught(RuntimeError.self) { _ = try m.model("fake") }?.code == .modelUnavailable)
        #expect(m.isReady, "an unloaded model does not make the manager unready")
        try await m.load("fake")
        #expect(m.readyNames == ["fake"])
        await m.stopAll()
    }

    /// A model that throws fails the requests of that batch only; the next request is served.
    @Test func aFailingModelFailsItsRequestsOnly() async throws {
        let repo = try TemporaryRepository()
        defer { repo.remove() }
        try repo.add("fake", versions: [1: #"{"fail_on": "boom"}"#])
        let m = manager(repo)
        try await m.loadAll()
        let model = try m.model("fake", as: (any TextEmbeddingServing).self, serving: .textEmbedding)
        await #expect(throws: FakeEmbeddingBatch.Failure.self) { _ = try await model.embed(["boom"]) }
        #expect(try await model.embed(["fine"]).embeddings == [[4, 4, 4, 4]])
        await m.stopAll()
    }

    /// In a service group, the manager stops its models on graceful shutdown and returns once they drained;
    /// a model stopped that way refuses new requests.
    @Test func stopsModelsOnGracefulShutdown() async throws {
        let repo = try TemporaryRepository()
        defer { repo.remove() }
        try repo.add("fake")
        let m = manager(repo)
        try await m.loadAll()
        let model = try m.model("fake", as: (any TextEmbeddingServing).self, serving: .textEmbedding)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: m)], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(50))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await #expect(throws: RuntimeError.self) { _ = try await model.embed(["late"]) }
    }
}
