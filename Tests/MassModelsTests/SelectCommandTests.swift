import Foundation
import MassTesting
import Testing

/// `mass select` on the built binary with small real models: a topics head on MiniLM and its int8 copy, both
/// registered, and a three-label classifier that cannot answer the dataset's labels. The rule picks, the alias or
/// canary moves, the report lands in the registry; a floor no candidate meets promotes nothing.
@Suite(.serialized) struct SelectCommandTests {
    let runner = EmbedCommandTests()
    let workers = WorkerCommandTests()

    struct Models {
        let setup: WorkerCommandTests.Setup
        let data: String
    }

    /// Trains the head, compresses it, registers both as `topics` versions 1 (alias production) and 2.
    func models() throws -> Models {
        let setup = try WorkerCommandTests.Setup()
        let job = try workers.writeJob(
            setup, "head.json", ["output": setup.dir.appendingPathComponent("head").path])
        let trained = try runner.run(["train", job])
        #expect(trained.status == 0, "\(trained.stderr)")
        let model = setup.dir.appendingPathComponent("head/model").path
        let int8 = setup.dir.appendingPathComponent("head-int8").path
        let compressed = try runner.run(["compress", "--model", model, "--int8", "--out", int8])
        #expect(compressed.status == 0, "\(compressed.stderr)")
        for (folder, extra) in [(model, ["--alias", "production"]), (int8, [])] {
            let registered = try runner.run(
                ["models", "register", folder, "--name", "topics"] + extra + setup.registry)
            #expect(registered.status == 0, "\(registered.stderr)")
        }
        return Models(setup: setup, data: setup.dir.appendingPathComponent("topics.jsonl").path)
    }

    func document(_ m: Models, _ name: String, _ fields: [String: Any] = [:]) throws -> String {
        var json: [String: Any] = [
            "name": name,
            "dataset": ["path": m.data], "split": ["validation": 0.1, "test": 0.2, "seed": 7],
            "candidates": [
                ["name": "float", "model": "registry:topics@1"], ["name": "int8", "model": "registry:topics@2"],
                ["name": "three-labels", "model": TextHeadFixture.classifierDirectory.path],
            ],
            "reference": "float",
            "measure": ["latency_requests": 20, "batch_sizes": [1, 8]],
            "floor": ["accuracy": 0.9],
            "rule": ["minimize": "size_mb", "where": ["accuracy >= 0.9", "p99_ms < 10000"]],
            "promote": ["model": "topics", "alias": "chosen"],
            "output": m.setup.dir.appendingPathComponent(name).path,
        ]
        json.merge(fields) { $1 }
        let url = m.setup.dir.appendingPathComponent("\(name).json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        return url.path
    }

    func aliases(_ m: Models) throws -> [String: Any] {
        let shown = try workers.json(try runner.run(["models", "show", "topics"] + m.setup.registry))
        return shown["aliases"] as? [String: Any] ?? [:]
    }

    @Test func picksByTheRulePromotesAndStoresTheReport() throws {
        let m = try models()
        defer { try? FileManager.default.removeItem(at: m.setup.dir) }
        let run = try runner.run(["select", try document(m, "pick"), "--json"] + m.setup.registry)
        #expect(run.status == 0, "\(run.stderr)")
        let report = try workers.json(run)
        let rows = try #require(report["candidates"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0["name"] as? String ?? "", $0) })
        #expect(report["examples"] as? Int == 16)
        // The topics are told apart on every held-out text, in float32 and in int8, so they agree everywhere.
        #expect(byName["float"]?["accuracy"] as? Double == 1.0 && byName["int8"]?["accuracy"] as? Double == 1.0)
        #expect(byName["int8"]?["agreement"] as? Double == 1.0 && byName["float"]?["agreement"] as? Double == 1.0)
        #expect(byName["float"]?["version"] as? Int == 1 && byName["int8"]?["version"] as? Int == 2)
        let floatSize = try #require(byName["float"]?["size_mb"] as? Double)
        let int8Size = try #require(byName["int8"]?["size_mb"] as? Double)
        // MiniLM's linear layers in int8 (21.2 → 5.3 MB) and an unread buffer dropped; the word embeddings stay
        // float32 (docs/compression.md: model.safetensors 90.9 → 59.1 MB).
        #expect(floatSize > 85 && floatSize - int8Size > 30, "\(floatSize) \(int8Size)")
        for row in [byName["float"], byName["int8"]] {
            let p50 = row?["p50_ms"] as? Double ?? 0
            let p99 = row?["p99_ms"] as? Double ?? 0
            #expect(p50 > 0 && p99 >= p50 && (row?["memory_mb"] as? Double ?? 0) > 50, "\(row ?? [:])")
            #expect([1, 8].contains(row?["best_batch"] as? Int ?? 0) && (row?["throughput"] as? Double ?? 0) > 0)
        }
        #expect((byName["three-labels"]?["error"] as? String)?.contains("are not the dataset's") == true)
        #expect(report["winner"] as? String == "int8")
        #expect(report["promotion"] as? String == "promoted: topics@2 → alias chosen")
        #expect(try aliases(m)["chosen"] as? Int == 2)
        let out = m.setup.dir.appendingPathComponent("pick")
        let png = try Data(contentsOf: out.appendingPathComponent("pareto.png"))
        #expect(png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        let svg = try String(contentsOf: out.appendingPathComponent("pareto.svg"), encoding: .utf8)
        #expect(svg.contains("int8 (chosen)"))
        // Stored in the registry, whole.
        let stored = try workers.json(try runner.run(["selections", "show", "pick", "--json"] + m.setup.registry))
        #expect(stored["winner"] as? String == "int8" && stored["promoted"] as? String == "topics@2 → alias chosen")
        #expect(((stored["report"] as? [String: Any])?["candidates"] as? [Any])?.count == 3)
        let table = try runner.run(["selections", "show", "pick"] + m.setup.registry)
        #expect(String(decoding: table.stdout, as: UTF8.self).contains("winner: int8: lowest size_mb"))
        // The same name again is refused before anything is measured.
        let again = try runner.run(["select", try document(m, "pick")] + m.setup.registry)
        #expect(again.status != 0 && again.stderr.contains("a selection named 'pick' exists"), "\(again.stderr)")

        // A canary: the winner takes 25 % beside what the model serves (production, version 1).
        let canary = try runner.run(
            ["select", try document(m, "canary", ["promote": ["model": "topics", "canary": 25]])] + m.setup.registry)
        #expect(canary.status == 0, "\(canary.stderr)")
        let deployment = String(
            decoding: try runner.run(["deploy", "show", "topics"] + m.setup.registry).stdout, as: UTF8.self)
        #expect(deployment.contains("route 1 → version 1  weight 75.0"), "\(deployment)")
        #expect(deployment.contains("route 2 → version 2  weight 25.0"), "\(deployment)")
    }

    @Test func promotesNothingBelowTheFloorAndRefusesBadDocuments() throws {
        let m = try models()
        defer { try? FileManager.default.removeItem(at: m.setup.dir) }
        let floor = try runner.run(
            ["select", try document(m, "floor", ["floor": ["accuracy": 1.01]])] + m.setup.registry)
        #expect(floor.status == 1, "\(floor.stderr)")
        let text = String(decoding: floor.stdout, as: UTF8.self)
        #expect(text.contains("below floor: accuracy 1 < 1.01"), "\(text)")
        #expect(text.contains("no candidate meets the rule"), "\(text)")
        #expect(try aliases(m)["chosen"] == nil)
        let stored = try workers.json(try runner.run(["selections", "show", "floor", "--json"] + m.setup.registry))
        #expect(stored["winner"] == nil && stored["promoted"] == nil)

        // A winner that is not a version of the promoted model: reported, not promoted, exit 1.
        let folder = m.setup.dir.appendingPathComponent("head/model").path
        let outside = try runner.run(
            [
                "select",
                try document(
                    m, "outside",
                    [
                        "candidates": [
                            ["name": "folder", "model": folder], ["name": "float", "model": "registry:topics@1"],
                        ], "reference": "folder", "rule": ["maximize": "accuracy"],
                    ]),
            ] + m.setup.registry)
        #expect(outside.status == 1)
        #expect(
            String(decoding: outside.stdout, as: UTF8.self).contains(
                "not promoted: the winner 'folder' is not a version of 'topics'"), "\(outside.stdout)")
        #expect(try aliases(m)["chosen"] == nil)

        let refusals: [([String: Any], String)] = [
            (["candidates": []], "'candidates' is empty"),
            (["rule": ["maximize": "speed"]], "unknown measure 'speed'"),
            (["dataset": ["path": "/nonexistent.jsonl"]], "dataset: /nonexistent.jsonl: cannot read"),
        ]
        for (i, (fields, message)) in refusals.enumerated() {
            let refused = try runner.run(["select", try document(m, "bad\(i)", fields)] + m.setup.registry)
            #expect(refused.status != 0 && refused.stderr.contains(message), "\(refused.stderr)")
        }
        // An unknown registry name is reported for that candidate alone.
        let unknown = try runner.run(
            [
                "select",
                try document(
                    m, "unknown",
                    [
                        "candidates": [
                            ["name": "ghost", "model": "registry:ghost@1"],
                            ["name": "float", "model": "registry:topics@1"],
                        ],
                        "reference": "float", "promote": ["model": "topics", "alias": "chosen"],
                    ]),
            ] + m.setup.registry)
        #expect(unknown.status == 0, "\(unknown.stderr)")
        #expect(String(decoding: unknown.stdout, as: UTF8.self).contains("ghost"))
        #expect(unknown.stderr.contains("ghost: not measured: "), "\(unknown.stderr)")
    }
}
