import Foundation
import MassTesting
import Testing

/// `mass tune`, `mass studies` and `mass worker` on the built binary with real training runs: a study's trials
/// spread over two workers on one PostgreSQL registry, each run once, pruned only at ASHA's rungs; a study whose
/// process is killed is carried on by a worker; bad studies are refused or fail with the reason.
@Suite(.serialized) struct TuneCommandTests {
    let runner = EmbedCommandTests()
    let workers = WorkerCommandTests()

    /// A study on the topics dataset's head task: the learning rate (log scale) and the hidden width, ASHA on
    /// the validation loss at epochs 2 and 6 of 18.
    func writeStudy(_ setup: WorkerCommandTests.Setup, _ name: String, _ fields: [String: Any] = [:]) throws -> String {
        let base = try JSONSerialization.jsonObject(
            with: Data(
                contentsOf: URL(
                    fileURLWithPath: try workers.writeJob(setup, "base.json", ["head": ["epochs": 18, "patience": 18]]))
            ))
        var json: [String: Any] = [
            "name": name, "base": base,
            "space": [
                "head.learning_rate": ["type": "float", "low": 1e-4, "high": 0.5, "log": true],
                "head.hidden": ["type": "categorical", "choices": [0, 16]],
            ],
            "objective": ["metric": "validation_accuracy", "direction": "maximize"],
            "intermediate": ["metric": "validation_loss", "direction": "minimize"],
            "sampler": ["type": "tpe", "seed": 5, "startup_trials": 3],
            "pruner": ["type": "asha", "min_resource": 2, "reduction_factor": 3],
            "budget": ["trials": 8], "parallel": 2,
        ]
        json.merge(fields) { $1 }
        let url = setup.dir.appendingPathComponent("\(name).json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        return url.path
    }

    func show(_ setup: WorkerCommandTests.Setup, _ name: String) throws -> [String: Any] {
        try workers.json(try runner.run(["studies", "show", name, "--json"] + setup.registry))
    }

    @Test func runsAStudyAcrossTwoWorkersOnPostgreSQL() throws {
        let setup = try WorkerCommandTests.Setup(registry: try ExternalTools.freshPostgresDatabase().url)
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        let created = try runner.run(["tune", try writeStudy(setup, "topics"), "--detach"] + setup.registry)
        #expect(created.status == 0, "\(created.stderr)")
        let pool = try ["a", "b"].map {
            try WorkerCommandTests.Background(
                setup.worker(["--name", $0, "--threads", "1", "--until-empty"]),
                log: setup.dir.appendingPathComponent("\($0).log"))
        }
        for worker in pool { #expect(worker.wait(seconds: 300), "\(worker.output)") }
        let detail = try show(setup, "topics")
        let study = try #require(detail["study"] as? [String: Any])
        #expect(study["state"] as? String == "finished", "\(study)")
        let trials = try #require(detail["trials"] as? [[String: Any]])
        #expect(trials.map { $0["number"] as? Int } == Array(0..<8))
        let states = trials.compactMap { $0["state"] as? String }
        #expect(states.allSatisfy { $0 == "complete" || $0 == "pruned" }, "\(states)")
        #expect(states.contains("pruned"), "ASHA stopped no trial: \(trials)")
        for trial in trials {
            let reports = try #require(trial["reports"] as? [String: Double])
            let steps = reports.keys.compactMap(Int.init).sorted()
            // Every epoch reported once, in order; a pruned trial stopped at a rung (2 or 6), a complete one ran all.
            #expect(steps == Array(1...(steps.last ?? 0)))
            if trial["state"] as? String == "pruned" {
                #expect([2, 6].contains(steps.last), "\(trial)")
            } else {
                #expect(steps.last == 18 && (trial["values"] as? [Double])?.count == 1, "\(trial)")
            }
            let params = try #require(trial["params"] as? [String: Any])
            let rate = try #require(params["head.learning_rate"] as? Double)
            #expect((1e-4...0.5).contains(rate) && [0, 16].contains(params["head.hidden"] as? Int))
        }
        // Each trial's job ran once, and both workers ran trials.
        let list = try runner.run(["jobs", "list", "--json"] + setup.registry)
        let jobs = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        #expect(
            jobs.count == 8 && jobs.allSatisfy { $0["attempts"] as? Int == 1 && $0["state"] as? String == "succeeded" })
        #expect(Set(jobs.compactMap { $0["worker"] as? String }) == ["a", "b"])
        // The best trial is the complete one with the highest accuracy.
        let summary = try #require(detail["summary"] as? [String: Any])
        let best = try #require((summary["best"] as? [[String: Any]])?.first)
        let complete = trials.filter { $0["state"] as? String == "complete" }
        let top = complete.compactMap { ($0["values"] as? [Double])?.first }.max()
        #expect((best["values"] as? [Double])?.first == top)
    }

    @Test func aWorkerCarriesOnAStudyWhoseProcessWasKilled() throws {
        let setup = try WorkerCommandTests.Setup()
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        let config = try writeStudy(setup, "killed", ["budget": ["trials": 4], "pruner": ["type": "none"]])
        let tune = try WorkerCommandTests.Background(
            ["tune", config, "--threads", "2", "--work", setup.dir.appendingPathComponent("work").path]
                + setup.registry, log: setup.dir.appendingPathComponent("tune.log"))
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, !tune.output.contains("trial killed#0: complete") {
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(tune.process.processIdentifier, SIGKILL)
        #expect(tune.wait(seconds: 10))
        #expect(try show(setup, "killed")["study"].flatMap { ($0 as? [String: Any])?["state"] as? String } == "running")
        // The killed process's running trial is taken back after its heartbeat goes stale, then the budget finishes.
        Thread.sleep(forTimeInterval: 3.5)
        let worker = try runner.run(setup.worker(["--stale-after", "3", "--heartbeat", "1", "--until-empty"]))
        #expect(worker.status == 0, "\(worker.stderr)")
        let detail = try show(setup, "killed")
        #expect((detail["study"] as? [String: Any])?["state"] as? String == "finished")
        let trials = try #require(detail["trials"] as? [[String: Any]])
        #expect(trials.count == 4 && trials.allSatisfy { $0["state"] as? String == "complete" }, "\(trials)")
        // Nothing prunes this study, so no report waited for a verdict: each was recorded after the fact, all 18.
        let steps = trials.map { (($0["reports"] as? [String: Double]) ?? [:]).keys.compactMap(Int.init).sorted() }
        #expect(steps.allSatisfy { $0 == Array(1...18) }, "\(steps)")
    }

    /// Confirmation: once the four search trials are done, the best two configurations run again with the two
    /// seeds after the base one (unpruned), and the study's best is the configuration with the best mean of the
    /// confirmation's metric (the crossed validation accuracy, which every trial records after its objective).
    @Test func confirmsTheBestConfigurationsWithOtherSeeds() throws {
        let setup = try WorkerCommandTests.Setup()
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        let config = try writeStudy(
            setup, "confirmed",
            [
                "budget": ["trials": 4], "sampler": ["type": "random", "seed": 3],
                "confirm": ["top": 2, "repeats": 2, "seed": "head.seed", "metric": "crossed_validation_accuracy"],
            ])
        let tune = try runner.run(
            ["tune", config, "--threads", "2", "--work", setup.dir.appendingPathComponent("work").path]
                + setup.registry)
        #expect(tune.status == 0, "\(tune.stderr)")
        let detail = try show(setup, "confirmed")
        let study = try #require(detail["study"] as? [String: Any])
        #expect(study["state"] as? String == "finished", "\(study)")
        #expect((study["reason"] as? String)?.hasSuffix("; the best 2 confirmed by 4 re-runs") == true, "\(study)")
        let trials = try #require(detail["trials"] as? [[String: Any]])
        #expect(trials.count == 8, "\(trials)")
        func params(_ t: [String: Any]) -> [String: Double] {
            ((t["params"] as? [String: Any]) ?? [:]).compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
        func value(_ t: [String: Any]) -> Double? { (t["values"] as? [Double])?.first }
        func crossed(_ t: [String: Any]) -> Double? {
            (t["values"] as? [Double]).flatMap { $0.count == 2 ? $0[1] : nil }
        }
        // Every complete trial holds its objective and its crossed accuracy, which the run measured in (0, 1].
        #expect(trials.allSatisfy { crossed($0).map { $0 > 0 && $0 <= 1 } ?? ($0["state"] as? String != "complete") })
        let search = Array(trials.prefix(4))
        let reruns = Array(trials.dropFirst(4))
        // The search's best two (complete ones, by accuracy, ties to the earlier), then their re-runs, each complete
        // (never pruned) with the seeds 43 and 44 after the base configuration's 42.
        let top = search.filter { $0["state"] as? String == "complete" }.sorted {
            (-(value($0) ?? 0), $0["number"] as? Int ?? 0) < (-(value($1) ?? 0), $1["number"] as? Int ?? 0)
        }.prefix(2)
        #expect(search.allSatisfy { params($0)["head.seed"] == nil })
        #expect(reruns.map { params($0)["head.seed"] } == [43, 43, 44, 44], "\(reruns)")
        for (index, rerun) in reruns.enumerated() {
            var own = params(rerun)
            own["head.seed"] = nil
            #expect(own == params(Array(top)[index % 2]), "\(rerun)")
            #expect(rerun["state"] as? String == "complete")
            #expect((rerun["reports"] as? [String: Double])?.count == 18)
        }
        // The best: the configuration with the higher mean crossed accuracy over its three runs; its value is the
        // mean of its objective.
        func mean(_ index: Int, _ of: ([String: Any]) -> Double?) -> Double {
            ([of(Array(top)[index])] + [reruns[index], reruns[index + 2]].map(of)).compactMap { $0 }.reduce(0, +) / 3
        }
        let summary = try #require(detail["summary"] as? [String: Any])
        let best = try #require((summary["best"] as? [[String: Any]])?.first)
        let winner = mean(0, crossed) >= mean(1, crossed) ? 0 : 1
        #expect(best["number"] as? Int == Array(top)[winner]["number"] as? Int, "\(best)")
        #expect(abs((value(best) ?? 0) - mean(winner, value)) < 1e-9 && best["runs"] as? Int == 3, "\(best)")
        let own = (best["confirmed"] as? [String: Double])?["crossed_validation_accuracy"]
        #expect(abs((own ?? 0) - mean(winner, crossed)) < 1e-9, "\(best)")
        let table = try runner.run(["studies", "show", "confirmed"] + setup.registry)
        let text = String(decoding: table.stdout, as: UTF8.self)
        #expect(text.contains("over 3 runs (crossed_validation_accuracy "), "\(text)")
        #expect(text.contains("ranked by crossed_validation_accuracy"), "\(text)")
        #expect(
            try refusal(setup, ["confirm": ["seed": "head.learning_rate"]])
                .contains("'confirm.seed' 'head.learning_rate' is a parameter of the search space"))
        #expect(
            try refusal(setup, ["confirm": ["seed": "head.sead"]])
                .contains("'confirm.seed': 'head.sead' is not a whole-number key mass train reads"))
        #expect(
            try refusal(setup, ["confirm": ["seed": "head.seed", "repeats": 0]])
                .contains("'confirm.repeats' must be from 1 to 20"))
    }

    func refusal(_ setup: WorkerCommandTests.Setup, _ fields: [String: Any]) throws -> String {
        let result = try runner.run(["tune", try writeStudy(setup, "bad", fields), "--detach"] + setup.registry)
        #expect(result.status != 0)
        return result.stderr
    }

    @Test func refusesBadStudiesAndFailsOneWhoseTrialsAllFail() throws {
        let setup = try WorkerCommandTests.Setup()
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        func refusal(_ fields: [String: Any]) throws -> String { try self.refusal(setup, fields) }
        #expect(try refusal(["space": [:] as [String: Any]]).contains("the search space is empty"))
        #expect(
            try refusal(["space": ["head.learnin_rate": ["type": "float", "low": 0.001, "high": 0.1]]])
                .contains("'head.learnin_rate' is not a key mass train reads"))
        #expect(
            try refusal(["space": ["head.learning_rate": ["type": "float", "low": 0, "high": 0.1, "log": true]]])
                .contains("'head.learning_rate' is on a log scale: 'low' must be positive"))
        #expect(
            try refusal(["space": ["head.epochs": ["type": "int", "low": -3, "high": 2]]])
                .contains("'head.epochs' = -3 makes a configuration mass train refuses"))
        #expect(try refusal(["budget": [:] as [String: Any]]).contains("'budget' needs 'trials' or 'seconds'"))
        #expect(
            try refusal(["pruner": ["type": "bohb"]]).contains("'pruner.type' must be asha, hyperband, median or none"))
        #expect(
            try refusal(["intermediate": ["metric": "validation_f1", "direction": "maximize"]])
                .contains("the pruner watches 'validation_f1', which the runs do not report after each epoch"))
        #expect(
            try refusal(["objectives": [["metric": "validation_accuracy", "direction": "maximize"]]])
                .contains("give 'objective' or 'objectives', not both"))
        // A metric the runs never report: every trial fails, naming it, and the study fails after two.
        let config = try writeStudy(
            setup, "unreported",
            ["objective": ["metric": "validation_f1", "direction": "maximize"], "max_failures": 2, "parallel": 1])
        let tune = try runner.run(
            ["tune", config, "--work", setup.dir.appendingPathComponent("work").path] + setup.registry)
        #expect(tune.status != 0)
        let detail = try show(setup, "unreported")
        let study = try #require(detail["study"] as? [String: Any])
        #expect(study["state"] as? String == "failed")
        #expect((study["reason"] as? String)?.hasPrefix("2 trials failed and none completed") == true, "\(study)")
        #expect(
            (study["reason"] as? String)?.contains("the objective's metric 'validation_f1' is not in the run's summary")
                == true)
        // Names: a second study of the same name, an unknown one.
        let again = try runner.run(["tune", config, "--detach"] + setup.registry)
        #expect(again.status != 0 && again.stderr.contains("a study named 'unreported' exists"), "\(again.stderr)")
        let unknown = try runner.run(["studies", "show", "nothing"] + setup.registry)
        #expect(unknown.status != 0 && unknown.stderr.contains("no study named 'nothing'"))
    }
}
