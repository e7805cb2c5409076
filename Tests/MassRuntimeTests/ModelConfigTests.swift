import Foundation
import MassAudio
import MassModels
import MassRuntime
import MassTensor
import MassTesting
import Testing

@Suite struct ModelConfigTests {
    func parse(_ json: String) throws -> ModelConfig {
        try ModelConfig.parse(Data(json.utf8), file: "m/mass.json")
    }

    func failure(_ json: String) -> String {
        caught(RuntimeError.self) { _ = try parse(json) }?.message ?? "(no error)"
    }

    @Test func defaultsAndEveryKey() throws {
        let minimal = try parse(#"{"task": "text-embedding"}"#)
        #expect(minimal.task == .textEmbedding)
        #expect(minimal.versionPolicy == .latest(1))
        let full = try parse(
            #"""
            {"task": "text-embedding", "max_queue_size": 10, "instance_count": 2, "request_timeout_ms": 500,
             "max_inputs": 8, "max_input_characters": 1000,
             "batching": {"max_batch_size": 16, "max_queue_delay_ms": 1.5, "max_batch_tokens": 2048,
                          "contended_batch_tokens": 64, "contention_window_ms": 250},
             "batch_request_timeout_ms": 60000, "version_policy": {"specific": [3, 1]}}
            """#)
        #expect(full.maxQueueSize == 10 && full.instanceCount == 2 && full.requestTimeoutMilliseconds == 500)
        #expect(full.maxInputs == 8 && full.maxInputCharacters == 1000)
        #expect(
            full.batching
                == .init(
                    maxBatchSize: 16, maxQueueDelayMilliseconds: 1.5, maxBatchTokens: 2048, contendedBatchTokens: 64,
                    contentionWindowMilliseconds: 250))
        #expect(full.batchRequestTimeoutMilliseconds == 60000)
        #expect(minimal.batching.contendedBatchTokens == 32 && minimal.batching.contentionWindowMilliseconds == 500)
        #expect(full.versionPolicy == .specific([1, 3]))
        #expect(try parse(#"{"task": "text-embedding", "version_policy": {"all": true}}"#).versionPolicy == .all)
        #expect(minimal.precision == .float32)
        #expect(try parse(#"{"task": "text-embedding", "precision": "int8"}"#).precision == .int8)
        #expect(minimal.audioConversion == .swresample)
        #expect(
            try parse(#"{"task": "speech-recognition", "audio_conversion": "float"}"#).audioConversion == .float)
        #expect(
            failure(#"{"task": "speech-recognition", "audio_conversion": "sox"}"#).contains(
                "'audio_conversion' must be swresample or float"))
    }

    /// `precision`: a known value, an architecture that runs it, and never on a service-type model.
    @Test func precisionIsCheckedAtParseAndLoad() throws {
        #expect(
            failure(#"{"task": "text-embedding", "precision": "int4"}"#).contains("'precision' must be float32 or int8")
        )
        #expect(
            failure(
                #"{"task": "text-embedding", "precision": "int8", "remote": {"api": "openai-embeddings", "url": "http://h"}}"#
            ).contains("'remote' excludes 'architecture', 'precision'"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mass-precision-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("{}".utf8).write(to: folder.appendingPathComponent("model.pth"))
        let refused = caught(ModelError.self) {
            _ = try ArchitectureRegistry.standard.load(folder, task: .imageClassification, precision: .int8)
        }
        #expect(
            refused?.description.contains("EfficientNet in int8 needs activation ranges (int8-calibration.json)")
                == true)
    }

    @Test func errorsNameTheKey() {
        #expect(failure(#"{"task": "text-embedding", "max_batch": 3}"#).contains("unknown key 'max_batch'"))
        #expect(failure(#"{"task": "text-embedding", "batching": {"size": 3}}"#).contains("'batching.size'"))
        #expect(
            failure(#"{"task": "text-embedding", "batching": {"max_batch_size": 0}}"#).contains(
                "'batching.max_batch_size'"))
        #expect(failure(#"{"task": "text-embedding", "max_queue_size": "10"}"#).contains("'max_queue_size'"))
        #expect(failure(#"{"task": "text-embedding", "instance_count": 1.5}"#).contains("'instance_count'"))
        #expect(failure(#"{"task": "text-embedding", "max_inputs": true}"#).contains("'max_inputs'"))
        #expect(failure(#"{"task": "translation"}"#).contains("'task'"))
        #expect(
            failure(#"{"task": "text-embedding", "batching": {"contention_window_ms": -1}}"#).contains(
                "'batching.contention_window_ms'"))
        #expect(failure(#"{}"#).contains("missing key 'task'"))
        #expect(
            failure(#"{"task": "text-embedding", "version_policy": {"latest": 1, "all": true}}"#).contains(
                "version_policy"))
        #expect(failure("{oops").contains("not valid JSON"))
        #expect(failure("[]").contains("object"))
        #expect(failure(#"{"task": "text-embedding"}"#) == "(no error)")
    }

    @Test func repositoryVersionsFollowThePolicy() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mass-repo-\(getpid())")
        try? FileManager.default.removeItem(at: root)
        let model = root.appendingPathComponent("emb")
        for v in ["1", "2", "10", "notes"] {
            try FileManager.default.createDirectory(
                at: model.appendingPathComponent(v), withIntermediateDirectories: true)
        }
        try Data(#"{"task": "text-embedding", "version_policy": {"latest": 2}}"#.utf8).write(
            to: model.appendingPathComponent("mass.json"))
        let repository = ModelRepository(root: root)
        #expect(try repository.modelNames() == ["emb"])
        let entry = try repository.entry("emb")
        #expect(entry.availableVersions == [1, 2, 10])
        #expect(entry.servedVersions == [2, 10])
        #expect(caught(RuntimeError.self) { _ = try repository.entry("nope") }?.code == .modelNotFound)
        #expect(caught(RuntimeError.self) { _ = try repository.entry("../etc") }?.code == .modelNotFound)
        try Data(#"{"task": "text-embedding", "version_policy": {"specific": [3]}}"#.utf8).write(
            to: model.appendingPathComponent("mass.json"))
        #expect(caught(RuntimeError.self) { _ = try repository.entry("emb") }?.message.contains("version(s) 3") == true)
    }

    @Test func theDefaultRepositoryParses() throws {
        let entry = try ModelRepository(root: FixturePaths.models).entry("all-MiniLM-L6-v2")
        #expect(entry.config.task == .textEmbedding)
        #expect(entry.servedVersions == [1])
    }
}
