import Foundation
import MassTesting
import Testing

/// `mass jobs` and `mass worker` on the built binary, on real data: a job runs through a worker and its model is
/// registered with lineage and serves; a worker killed mid-job loses it to another worker that resumes from the
/// checkpoint; a running job cancels; a bad dataset fails without retries; workers on one PostgreSQL queue
/// share it.
@Suite(.serialized) struct WorkerCommandTests {
    let runner = EmbedCommandTests()
    let topics = TrainCommandTests()

    /// A mass process in the background, its output in files (a pipe nobody reads would stall it).
    final class Background {
        let process = Process()
        let log: URL

        init(_ arguments: [String], log: URL) throws {
            self.log = log
            FileManager.default.createFile(atPath: log.path, contents: nil)
            process.executableURL = EmbedCommandTests.binary
            process.arguments = arguments
            let handle = try FileHandle(forWritingTo: log)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }

        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        func wait(seconds: Double = 300) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            return !process.isRunning
        }
    }

    struct Setup {
        let dir: URL
        let registry: [String]

        init(registry url: String? = nil) throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("mass-worker-\(UUID())")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            registry = [
                "--registry", url ?? dir.appendingPathComponent("registry.sqlite").path, "--store",
                dir.appendingPathComponent("store").path,
            ]
        }

        func worker(_ extra: [String] = []) -> [String] {
            ["worker"] + registry + ["--work", dir.appendingPathComponent("work").path, "--threads", "2"] + extra
        }
    }

    func writeJob(_ setup: Setup, _ name: String, _ fields: [String: Any]) throws -> String {
        let data = setup.dir.appendingPathComponent("topics.jsonl")
        if !FileManager.default.fileExists(atPath: data.path) { try Data(topics.topics().utf8).write(to: data) }
        var json: [String: Any] = [
            "task": "text-classification-head", "encoder": MiniLMFixture.modelDirectory.path,
            "dataset": ["path": data.path], "split": ["validation": 0.1, "test": 0.2, "seed": 7],
            "head": ["epochs": 60, "learning_rate": 0.05],
        ]
        json.merge(fields) { $1 }
        let url = setup.dir.appendingPathComponent(name)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        return url.path
    }

    func json(_ output: EmbedCommandTests.Output) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: output.stdout) as? [String: Any], "\(output.stderr)")
    }

    func show(_ setup: Setup, _ id: Int) throws -> [String: Any] {
        try json(try runner.run(["jobs", "show", String(id)] + setup.registry))
    }

    @Test func runsAJobAndRegistersItsModel() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        let config = try writeJob(setup, "head.json", ["register": ["model": "topics", "alias": "production"]])
        let submitted = try json(try runner.run(["jobs", "submit", config] + setup.registry))
        #expect(submitted["state"] as? String == "queued" && submitted["id"] as? Int == 1)
        let worker = try runner.run(setup.worker(["--until-empty"]))
        #expect(worker.status == 0, "\(worker.stderr)")
        let job = try show(setup, 1)
        #expect(job["state"] as? String == "succeeded", "\(job)")
        #expect(job["attempts"] as? Int == 1)
        let result = try #require(job["result"] as? [String: Any])
        #expect(result["test_accuracy"] as? Double == 1.0)
        #expect((result["registered"] as? [String: Any])?["version"] as? Int == 1)
        let logs = String(decoding: try runner.run(["jobs", "logs", "1"] + setup.registry).stdout, as: UTF8.self)
        #expect(
            logs.contains("dataset: 80 examples") && logs.contains("epoch 60/60")
                && logs.contains("finished: succeeded"))

        // The registered version: lineage, metrics, the curves beside the model, and it classifies.
        let model = try json(try runner.run(["models", "show", "topics"] + setup.registry))
        #expect((model["aliases"] as? [String: Int]) == ["production": 1])
        let version = try #require((model["versions"] as? [[String: Any]])?.first)
        #expect(version["training_run"] as? String == "job-1")
        #expect(
            version["dataset"] as? String == "sha256:"
                + (try ExternalTools.sha256sum(
                    setup.dir.appendingPathComponent("topics.jsonl"))))
        let tags = try #require(version["tags"] as? [String: String])
        #expect(tags["training.parent"] == MiniLMFixture.modelDirectory.path && tags["training.job"] == "1")
        #expect(tags["training.settings"]?.contains(#""epochs":60"#) == true)
        #expect((version["metrics"] as? [String: Double])?["test_accuracy"] == 1.0)
        let files = Set(((version["files"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String })
        #expect(
            files.isSuperset(of: [
                "head.safetensors", "model.safetensors", "training/loss.svg", "training/loss.png",
                "training/accuracy.png", "training/metrics.json",
                "training/config.json",
            ]))
        let folder = setup.dir.appendingPathComponent("store/trees/topics/1")
        let classified = try runner.run([
            "classify-text", "--model", folder.path, "--top-k", "1", "Thunderstorms are coming to Oslo.",
        ])
        #expect(
            String(decoding: classified.stdout, as: UTF8.self).contains(#""label":"weather""#), "\(classified.stderr)")
    }

    /// The new tasks register what they make: a head on EfficientNet's features as an image classifier (it
    /// classifies a photo with its own labels), a distilled student as an embedding model, each with its metric.
    @Test func registersAnImageHeadAndADistilledEncoder() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        let bars = setup.dir.appendingPathComponent("bars")
        try FileManager.default.createDirectory(at: bars, withIntermediateDirectories: true)
        try TrainCommandTests.writeBars(bars, train: 80, test: 20)
        let image = try writeJob(
            setup, "image.json",
            [
                "task": "image-classification-head", "encoder": EfficientNetFixture.modelDirectory.path,
                "dataset": ["path": bars.path, "labels": ["horizontal", "vertical"]],
                "head": ["epochs": 100, "learning_rate": 0.01, "batch_size": 16],
                "register": ["model": "bars", "alias": "production"],
            ])
        // The topics' texts, their labels unused.
        let distill = try writeJob(
            setup, "distill.json",
            [
                "task": "text-embedding-distill",
                "distill": ["layers": [0, 4, 5], "epochs": 1, "batch_size": 8],
                "register": ["model": "small-minilm", "alias": "candidate"],
            ])
        for config in [image, distill] {
            #expect(try runner.run(["jobs", "submit", config] + setup.registry).status == 0)
        }
        let worker = try runner.run(setup.worker(["--until-empty"]))
        #expect(worker.status == 0, "\(worker.stderr)")
        for id in [1, 2] { #expect(try show(setup, id)["state"] as? String == "succeeded", "\(worker.stderr)") }

        let bar = try json(try runner.run(["models", "show", "bars"] + setup.registry))
        let barVersion = try #require((bar["versions"] as? [[String: Any]])?.first)
        #expect(barVersion["task"] as? String == "image-classification", "\(barVersion)")
        #expect((barVersion["metrics"] as? [String: Double])?["test_accuracy"] == 1.0)
        let classified = try runner.run([
            "classify", "--model", setup.dir.appendingPathComponent("store/trees/bars/1").path, "--top-k", "2",
            EfficientNetFixture.url("coffee.png").path,
        ])
        let text = String(decoding: classified.stdout, as: UTF8.self)
        #expect(text.contains("horizontal") && text.contains("vertical"), "\(text) \(classified.stderr)")

        let student = try json(try runner.run(["models", "show", "small-minilm"] + setup.registry))
        let version = try #require((student["versions"] as? [[String: Any]])?.first)
        #expect(version["task"] as? String == "text-embedding", "\(version)")
        let metrics = try #require(version["metrics"] as? [String: Double])
        #expect((metrics["test_cosine"] ?? 0) > 0.5 && metrics["best_epoch"] == 1, "\(metrics)")
        let files = Set(((version["files"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String })
        #expect(files.isSuperset(of: ["model.safetensors", "config.json", "training/cosine.svg"]), "\(files)")
        let embedded = try runner.run([
            "embed", "--model", setup.dir.appendingPathComponent("store/trees/small-minilm/1").path, "Hello world",
        ])
        #expect(embedded.status == 0, "\(embedded.stderr)")
    }

    /// Worker A is killed (SIGKILL) in the middle of a fine-tuning job; its training child stops with it; worker
    /// B takes the job back once A's heartbeat is stale and resumes from A's last checkpoint.
    @Test func resumesAJobWhoseWorkerWasKilled() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        let config = try writeJob(
            setup, "tune.json",
            [
                "task": "text-classification-finetune",
                "finetune": ["epochs": 2, "batch_size": 8, "learning_rate": 1e-4, "checkpoint_every": 1],
            ])
        _ = try runner.run(["jobs", "submit", config] + setup.registry)
        let a = try Background(
            setup.worker(["--name", "a", "--heartbeat", "1"]), log: setup.dir.appendingPathComponent("a.log"))
        let latest = setup.dir.appendingPathComponent("work/job-1/run/checkpoints/latest")
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, (try? String(contentsOf: latest, encoding: .utf8))?.hasPrefix("step-3-") != true {
            Thread.sleep(forTimeInterval: 0.01)
        }
        kill(a.process.processIdentifier, SIGKILL)
        #expect(a.wait(seconds: 10))
        // The child reads the worker's end of a pipe: it is gone too (no training runs unowned).
        Thread.sleep(forTimeInterval: 1)
        #expect(
            !(try Self.processes()).contains { $0.contains("job-1/config.json") },
            "a training child outlived its worker")
        #expect(try show(setup, 1)["state"] as? String == "running")
        // Worker B waits out A's heartbeat (stale after 3 s), then resumes the job.
        Thread.sleep(forTimeInterval: 3.5)
        let b = try runner.run(
            setup.worker(["--name", "b", "--heartbeat", "1", "--stale-after", "3", "--until-empty"]))
        #expect(b.status == 0, "\(b.stderr)")
        let job = try show(setup, 1)
        #expect(
            job["state"] as? String == "succeeded" && job["attempts"] as? Int == 2 && job["worker"] as? String == "b")
        let logs = String(decoding: try runner.run(["jobs", "logs", "1"] + setup.registry).stdout, as: UTF8.self)
        #expect(logs.contains("worker a sent no heartbeat for 3 s: queued again"), "\(logs)")
        #expect(logs.contains("resumed at step 3 of 14"), "\(logs)")
    }

    @Test func cancelsARunningJobAndFailsABadOneOnce() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        let long = try writeJob(
            setup, "long.json",
            ["task": "text-classification-finetune", "finetune": ["epochs": 50, "batch_size": 8, "patience": 50]])
        _ = try runner.run(["jobs", "submit", long] + setup.registry)
        let broken = setup.dir.appendingPathComponent("broken.jsonl")
        try Data((topics.topics() + #"{"text": "", "label": "cooking"}"# + "\n").utf8).write(to: broken)
        let bad = try writeJob(setup, "bad.json", ["dataset": ["path": broken.path]])
        _ = try runner.run(["jobs", "submit", bad] + setup.registry)
        let worker = try Background(
            setup.worker(["--heartbeat", "1", "--until-empty"]), log: setup.dir.appendingPathComponent("w.log"))
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !worker.output.contains("job 1: epoch 1  step") { Thread.sleep(forTimeInterval: 0.05) }
        let cancel = try runner.run(["jobs", "cancel", "1"] + setup.registry)
        #expect(cancel.status == 0, "\(cancel.stderr)")
        #expect(worker.wait(seconds: 120), "\(worker.output)")
        let cancelled = try show(setup, 1)
        #expect(cancelled["state"] as? String == "cancelled", "\(cancelled)")
        let failed = try show(setup, 2)
        #expect(failed["state"] as? String == "failed" && failed["attempts"] as? Int == 1)
        #expect((failed["error"] as? String)?.contains("broken.jsonl:81: 'text' is empty") == true, "\(failed)")
        // Cancelling a finished job is refused.
        #expect(try runner.run(["jobs", "cancel", "2"] + setup.registry).status != 0)
        // A configuration that cannot train is refused when submitted.
        let wrong = try writeJob(setup, "wrong.json", ["head": ["learning_rate": -1]])
        let refused = try runner.run(["jobs", "submit", wrong] + setup.registry)
        #expect(refused.status != 0 && refused.stderr.contains("'learning_rate' must be positive"))
    }

    /// Two workers on one PostgreSQL queue: every job runs exactly once.
    @Test func workersShareAPostgreSQLQueue() throws {
        let setup = try Setup(registry: try ExternalTools.freshPostgresDatabase().url)
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        for i in 1...4 {
            _ = try runner.run(
                ["jobs", "submit", try writeJob(setup, "job\(i).json", ["head": ["epochs": 5]])] + setup.registry)
        }
        let workers = try ["a", "b"].map {
            try Background(
                setup.worker(["--name", $0, "--threads", "1", "--until-empty"]),
                log: setup.dir.appendingPathComponent("\($0).log"))
        }
        for worker in workers { #expect(worker.wait(seconds: 300), "\(worker.output)") }
        let list = try runner.run(["jobs", "list", "--json"] + setup.registry)
        let jobs = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        #expect(jobs.count == 4)
        #expect(jobs.allSatisfy { $0["state"] as? String == "succeeded" && $0["attempts"] as? Int == 1 }, "\(jobs)")
    }

    /// The command lines of the running processes.
    static func processes() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { Int($0) != nil }.compactMap {
            (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\($0)/cmdline"))).map {
                String(decoding: $0.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            }
        }
    }
}
