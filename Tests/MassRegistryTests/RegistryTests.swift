import Foundation
import MassRegistry
import MassTesting
import SQLKit
import Testing

/// The registry on both backends: a fresh SQLite file, and a fresh database on the PostgreSQL server that
/// `make test` starts (scripts/with-postgres.sh sets MASS_TEST_POSTGRES_URL; without it the PostgreSQL cases
/// fail rather than pass unseen).
@Suite(.serialized) struct RegistryTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgresql
        var testDescription: String { rawValue }
    }

    /// A registry on a new, empty database and store.
    struct Fixture {
        let registry: ModelRegistry
        let root: URL
        let url: String

        static func make(_ backend: Backend) async throws -> Fixture {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("mass-registry-\(UUID())")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let url: String
            switch backend {
            case .sqlite: url = root.appendingPathComponent("registry.sqlite").path
            case .postgresql: url = try ExternalTools.freshPostgresDatabase().url
            }
            let registry = try await ModelRegistry.open(
                database: RegistryDatabases.open(url), store: ArtifactStore(root: root.appendingPathComponent("store")))
            return Fixture(registry: registry, root: root, url: url)
        }

        func close() async {
            await registry.close()
            try? FileManager.default.removeItem(at: root)
        }
    }

    static let folder = TextHeadFixture.classifierDirectory
    static let draft = VersionDraft(
        task: "text-classification", architecture: "bert", format: "safetensors",
        source: VersionSource(kind: "folder", uri: "Goldens/text-classifier"))

    @Test(arguments: Backend.allCases) func registersVersionsWithFilesAndLineage(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        defer { Task { await f.close() } }
        let v1 = try await f.registry.register(folder: Self.folder, name: "intent", draft: Self.draft, actor: "ana")
        #expect(v1.version == 1)
        #expect(v1.files.map(\.path) == ["config.json", "model.safetensors", "tokenizer.json"])
        for file in v1.files {
            let original = Self.folder.appendingPathComponent(file.path)
            #expect(file.sha256 == (try ExternalTools.sha256sum(original)))
            let size = try FileManager.default.attributesOfItem(atPath: original.path)[.size] as? Int
            #expect(file.size == size)
        }
        var second = Self.draft
        second.parent = 1
        second.dataset = "intents-2026-11"
        second.trainingRun = "run-17"
        second.tags = ["owner": "search"]
        let v2 = try await f.registry.register(
            folder: Self.folder, name: "intent", draft: second, alias: "staging", actor: "ben")
        #expect(v2.version == 2 && v2.parent == 1 && v2.dataset == "intents-2026-11" && v2.trainingRun == "run-17")
        #expect(v2.tags == ["owner": "search"])
        try await f.registry.recordMetric("intent", version: 2, key: "accuracy", value: 0.75, actor: "ci")
        try await f.registry.recordMetric("intent", version: 2, key: "accuracy", value: 0.8125, actor: "ci")
        let model = try await f.registry.model("intent")
        #expect(model.task == "text-classification")
        #expect(model.versions.map(\.version) == [1, 2])
        #expect(model.aliases == ["staging": 2])
        #expect(model.version(2)?.metrics == ["accuracy": 0.8125])
        #expect(model.version(2)?.createdBy == "ben")
        #expect(try await f.registry.version("intent", selector: "staging").version == 2)
        // Identical files are stored once.
        let blobs = try FileManager.default.subpathsOfDirectory(
            atPath: f.root.appendingPathComponent("store/blobs/sha256").path
        ).filter { $0.count > 3 }
        #expect(blobs.count == 3)
        // The materialised folder is the original, byte for byte.
        let tree = try await f.registry.folder("intent", 2)
        for file in v1.files {
            #expect(
                try Data(contentsOf: tree.appendingPathComponent(file.path))
                    == Data(contentsOf: Self.folder.appendingPathComponent(file.path)))
        }
        let kinds = try await f.registry.history("intent").map(\.kind)
        #expect(kinds == ["registered", "registered", "alias_set", "metric", "metric"])
    }

    @Test(arguments: Backend.allCases) func promotesAndRollsBackThroughTheHistory(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        defer { Task { await f.close() } }
        for _ in 0..<3 {
            _ = try await f.registry.register(folder: Self.folder, name: "m", draft: Self.draft, actor: "ana")
        }
        try await f.registry.promote("m", version: 1, actor: "ana")
        try await f.registry.promote("m", version: 2, actor: "ana", reason: "better recall")
        let third = try await f.registry.promote("m", version: 3, actor: "ben")
        #expect(third.fromVersion == 2 && third.version == 3 && third.alias == "production")
        let back = try await f.registry.rollback("m", actor: "ben", reason: "p99 regression")
        #expect(back.version == 2 && back.fromVersion == 3 && back.kind == "rolled_back")
        let again = try await f.registry.rollback("m", actor: "ben")
        #expect(again.version == 1)
        let none = await #expect(throws: RegistryError.self) { try await f.registry.rollback("m", actor: "ben") }
        #expect(none?.code == .conflict)
        #expect(try await f.registry.model("m").aliases["production"] == 1)
        let history = try await f.registry.history("m").filter { $0.alias == "production" }
        #expect(history.map(\.kind) == ["promoted", "promoted", "promoted", "rolled_back", "rolled_back"])
        #expect(history.map(\.version) == [1, 2, 3, 2, 1])
        #expect(history.map(\.fromVersion) == [nil, 1, 2, 3, 2])
        #expect(history[1].reason == "better recall" && history[3].actor == "ben")
    }

    @Test(arguments: Backend.allCases) func refusesToDeleteWhatServesAndNeverReusesNumbers(_ backend: Backend)
        async throws
    {
        let f = try await Fixture.make(backend)
        defer { Task { await f.close() } }
        for _ in 0..<2 {
            _ = try await f.registry.register(folder: Self.folder, name: "m", draft: Self.draft, actor: "ana")
        }
        try await f.registry.setAlias("m", "production", to: 2, actor: "ana")
        let refused = await #expect(throws: RegistryError.self) {
            try await f.registry.deleteVersion("m", 2, actor: "ana")
        }
        #expect(refused?.code == .conflict && refused?.message.contains("alias 'production'") == true)
        try await f.registry.deleteAlias("m", "production", actor: "ana")
        try await f.registry.deleteVersion("m", 2, actor: "ana")
        let next = try await f.registry.register(folder: Self.folder, name: "m", draft: Self.draft, actor: "ana")
        #expect(next.version == 3)
        #expect(try await f.registry.model("m").versions.map(\.version) == [1, 3])
        // Blobs are collected only when no version holds them: version 1 and 3 share version 2's files.
        #expect(try await f.registry.collectGarbage(minimumAge: 0) == 0)
        // A blob no version names (a registration that died before its commit) goes, once it is old enough.
        let loose = f.root.appendingPathComponent("loose.bin")
        try Data("no version names these 31 bytes".utf8).write(to: loose)
        let orphan = try f.registry.store.ingest(file: loose, as: "loose.bin")
        #expect(try await f.registry.collectGarbage() == 0)  // too recent: it may be about to be committed
        #expect(try await f.registry.collectGarbage(minimumAge: 0) == orphan.size)
        #expect(!FileManager.default.fileExists(atPath: f.registry.store.blob(orphan.sha256).path))
        #expect(try await f.registry.folder("m", 3).lastPathComponent == "3")
    }

    @Test(arguments: Backend.allCases) func refusesAnAlteredOrMissingFile(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        defer { Task { await f.close() } }
        let v = try await f.registry.register(folder: Self.folder, name: "m", draft: Self.draft, actor: "ana")
        let config = try #require(v.files.first { $0.path == "config.json" })
        let blob = f.registry.store.blob(config.sha256)
        var bytes = try Data(contentsOf: blob)
        bytes[bytes.startIndex + 2] ^= 0x20
        try bytes.write(to: blob)
        let altered = await #expect(throws: RegistryError.self) { _ = try await f.registry.folder("m", 1) }
        #expect(altered?.code == .integrity)
        #expect(altered?.message.contains("'config.json' is altered: registered sha256 \(config.sha256)") == true)
        try FileManager.default.removeItem(at: blob)
        let missing = await #expect(throws: RegistryError.self) { _ = try await f.registry.folder("m", 1) }
        #expect(missing?.message.contains("'config.json' (sha256 \(config.sha256)) is missing") == true)
    }

    @Test(arguments: Backend.allCases) func badRequestsGetClearErrors(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        defer { Task { await f.close() } }
        let r = f.registry
        _ = try await r.register(folder: Self.folder, name: "m", draft: Self.draft, actor: "a")
        let cases: [(String, RegistryError.Code, String, @Sendable () async throws -> Void)] = [
            (
                "bad name", .invalid, "model name '../x'",
                { _ = try await r.register(folder: Self.folder, name: "../x", draft: Self.draft, actor: "a") }
            ),
            (
                "numeric alias", .invalid, "alias '7'",
                { _ = try await r.register(folder: Self.folder, name: "m", draft: Self.draft, alias: "7", actor: "a") }
            ),
            (
                "no folder", .invalid, "is not a folder",
                {
                    _ = try await r.register(
                        folder: URL(fileURLWithPath: "/nonexistent"), name: "m", draft: Self.draft, actor: "a")
                }
            ),
            ("unknown model", .notFound, "no model 'nope'", { _ = try await r.model("nope") }),
            ("unknown alias", .notFound, "no alias 'gold'", { _ = try await r.version("m", selector: "gold") }),
            ("history of nothing", .notFound, "no model 'nope'", { _ = try await r.history("nope") }),
        ]
        for (what, code, text, action) in cases {
            let error = await #expect(throws: RegistryError.self, "\(what)") { try await action() }
            #expect(error?.code == code, "\(what): \(error?.message ?? "")")
            #expect(error?.message.contains(text) == true, "\(what): \(error?.message ?? "")")
        }
        var speech = Self.draft
        speech.task = "speech-recognition"
        let wrongTask = await #expect(throws: RegistryError.self) {
            _ = try await r.register(folder: Self.folder, name: "m", draft: speech, actor: "a")
        }
        #expect(wrongTask?.message == "model 'm' is a text-classification model; this version is speech-recognition")
        var orphan = Self.draft
        orphan.parent = 9
        let noParent = await #expect(throws: RegistryError.self) {
            _ = try await r.register(folder: Self.folder, name: "fresh", draft: orphan, actor: "a")
        }
        #expect(noParent?.code == .notFound)
        // The failed registration rolled back whole: not even the model row it had created stays.
        let gone = await #expect(throws: RegistryError.self) { _ = try await r.model("fresh") }
        #expect(gone?.code == .notFound)
        let noVersion = await #expect(throws: RegistryError.self) {
            try await r.setAlias("m", "production", to: 5, actor: "a")
        }
        #expect(noVersion?.message == "model 'm' has no version 5")
    }

    /// Two admins move one alias at once, many times: every move is serialised, so each event's `fromVersion`
    /// is the version the previous event set, and the alias ends where the last event put it.
    @Test(arguments: Backend.allCases) func concurrentAliasMovesNeverInterleave(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        defer { Task { await f.close() } }
        for _ in 0..<3 {
            _ = try await f.registry.register(folder: Self.folder, name: "m", draft: Self.draft, actor: "ana")
        }
        let registry = f.registry
        try await withThrowingTaskGroup(of: Void.self) { group in
            for admin in ["ana", "ben"] {
                group.addTask {
                    for i in 0..<12 {
                        try await registry.setAlias("m", "production", to: 1 + (i % 3), actor: admin)
                    }
                }
            }
            try await group.waitForAll()
        }
        let moves = try await registry.history("m").filter { $0.alias == "production" }
        #expect(moves.count == 24)
        #expect(moves.first?.fromVersion == nil)
        for (before, after) in zip(moves, moves.dropFirst()) {
            #expect(after.fromVersion == before.version, "event \(after.id) after \(before.id)")
        }
        #expect(try await registry.model("m").aliases["production"] == moves.last?.version)
    }

    /// Concurrent registrations of one model get distinct, consecutive numbers.
    @Test(arguments: Backend.allCases) func concurrentRegistrationsGetDistinctNumbers(_ backend: Backend)
        async throws
    {
        let f = try await Fixture.make(backend)
        defer { Task { await f.close() } }
        let registry = f.registry
        let numbers = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let v = try await registry.register(
                        folder: Self.folder, name: "m", draft: Self.draft, actor: "ci")
                    return v.version
                }
            }
            var all: [Int] = []
            for try await n in group { all.append(n) }
            return all
        }
        #expect(numbers.sorted() == [1, 2, 3, 4, 5, 6])
    }

    @Test(arguments: Backend.allCases) func migratesOnceAndRefusesANewerSchema(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        defer { Task { await f.close() } }
        _ = try await f.registry.register(folder: Self.folder, name: "m", draft: Self.draft, actor: "ana")
        // Opening again keeps the data and applies nothing twice.
        let again = try await ModelRegistry.open(database: RegistryDatabases.open(f.url), store: f.registry.store)
        #expect(try await again.model("m").versions.count == 1)
        await again.close()
        try await f.registry.database.transaction { db in
            try await db.raw("INSERT INTO mass_schema (version, summary, applied_at) VALUES (99, 'future', 0)").run()
        }
        let newer = await #expect(throws: RegistryError.self) {
            _ = try await ModelRegistry.open(database: RegistryDatabases.open(f.url), store: f.registry.store)
        }
        #expect(newer?.message.contains("has schema 99") == true)
    }

    @Test func anUnreachableDatabaseIsAClearError() async throws {
        let start = Date()
        let error = await #expect(throws: RegistryError.self) {
            _ = try await ModelRegistry.open(
                database: RegistryDatabases.open("postgres://mass:secret@127.0.0.1:1/registry"),
                store: ArtifactStore(root: FileManager.default.temporaryDirectory))
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message == "the registry (postgresql at 127.0.0.1:1/registry) is unreachable")
        #expect(error?.message.contains("secret") == false)
        #expect(Date().timeIntervalSince(start) < 30)
    }
}
