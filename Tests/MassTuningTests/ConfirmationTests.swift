import Foundation
import MassRegistry
import MassStudies
import MassTuning
import Testing

/// A study's confirmation: once its search is over, the best configurations run again with the seeds after the
/// base one, and the best is the configuration with the best mean.
@Suite struct ConfirmationTests {
    static func plan(
        _ confirm: String = #"{"top": 2, "repeats": 2, "seed": "head.seed"}"#, objective: String? = nil,
        budget: String = #"{"trials": 4}"#, parallel: Int = 2
    ) throws -> StudyPlan {
        let text = #"""
            {"name": "c", "budget": \#(budget), "parallel": \#(parallel), "confirm": \#(confirm),
             "base": {"task": "text-classification-head", "encoder": "e", "dataset": {"path": "d.csv"}, "output": "o",
                      "head": {"seed": 7}},
             "space": {"head.learning_rate": {"type": "float", "low": 0.001, "high": 0.1, "log": true}},
             \#(objective ?? #""objective": {"metric": "validation_accuracy", "direction": "maximize"}"#)}
            """#
        return try StudyPlan(document: try JSONValue.parse(text))
    }

    static func trial(_ number: Int, rate: Double, seed: Int? = nil, _ state: TrialRecord.State, _ value: Double?)
        -> TrialRecord
    {
        var params: [String: TuningValue] = ["head.learning_rate": .float(rate)]
        if let seed { params["head.seed"] = .int(seed) }
        return TrialRecord(number: number, params: params, state: state, values: value.map { [$0] })
    }

    @Test func rerunsTheBestConfigurationsThenJudgesByTheirMeans() throws {
        let plan = try Self.plan()
        #expect(plan.baseSeed == 7)
        var trials = [
            Self.trial(0, rate: 0.01, .complete, 0.70), Self.trial(1, rate: 0.02, .complete, 0.75),
            Self.trial(2, rate: 0.03, .pruned, nil), Self.trial(3, rate: 0.04, .running, nil),
        ]
        // A search trial in flight: its value may change the best, so no re-run yet.
        #expect(plan.nextRerun(trials) == .some(nil))
        trials[3] = Self.trial(3, rate: 0.04, .complete, 0.75)
        // The best two by value, the tie to the earlier trial: 1 then 3, each with seed 8, then each with seed 9.
        var expected: [(Double, Int)] = [(0.02, 8), (0.04, 8), (0.02, 9), (0.04, 9)]
        while let next = plan.nextRerun(trials) {
            let params = try #require(next)
            let (rate, seed) = expected.removeFirst()
            #expect(params == ["head.learning_rate": .float(rate), "head.seed": .int(seed)])
            trials.append(Self.trial(trials.count, rate: rate, seed: seed, .running, nil))
        }
        #expect(expected.isEmpty)
        // Until a re-run completes, the best is the search's.
        #expect(plan.settings.best(trials).map(\.number) == [1])
        for (index, value) in [0.70, 0.74, 0.71, 0.76].enumerated() {
            trials[4 + index].state = .complete
            trials[4 + index].values = [value]
        }
        // Trial 1's configuration: (0.75 + 0.70 + 0.71) / 3 = 0.72; trial 3's: (0.75 + 0.74 + 0.76) / 3 = 0.75.
        let best = try #require(plan.settings.best(trials).first)
        #expect(best.number == 3 && abs(best.values![0] - 0.75) < 1e-12)
        let confirmed = plan.settings.confirmed(trials)
        #expect(confirmed.map(\.trial.number) == [1, 3] && confirmed.map(\.runs) == [3, 3])
        #expect(abs(confirmed[0].trial.values![0] - 0.72) < 1e-12)
        // A failed re-run is left out of its mean; re-runs never count as the search's trials.
        trials[5].state = .failed
        trials[5].values = nil
        #expect(abs(plan.settings.confirmed(trials)[1].trial.values![0] - 0.755) < 1e-12)
        #expect(plan.settings.ranked(trials).map(\.number) == [1, 3, 0])
    }

    /// With a time budget no slot waits for the search's last trials: the current best re-run at once, and a
    /// re-run starts only when its configuration's own time ends within the budget.
    @Test func rerunsWithinTheTimeBudget() throws {
        let plan = try Self.plan(budget: #"{"seconds": 30}"#)
        var trials = [
            Self.trial(0, rate: 0.01, .complete, 0.75), Self.trial(1, rate: 0.02, .complete, 0.74),
            Self.trial(2, rate: 0.03, .complete, 0.70), Self.trial(3, rate: 0.04, .running, nil),
        ]
        let times = [0: 8.0, 1: 2.0, 2: 1.0]
        // Trial 3 still runs; trial 0's configuration (8 s) fits at 20 s, not at 23 s, where trial 1's (2 s) does.
        #expect(
            plan.nextRerun(trials, elapsed: 20, seconds: times)
                == .some(["head.learning_rate": .float(0.01), "head.seed": .int(8)]))
        #expect(
            plan.nextRerun(trials, elapsed: 23, seconds: times)
                == .some(["head.learning_rate": .float(0.02), "head.seed": .int(8)]))
        // Nothing fits: wait while the search runs, end once it is over.
        #expect(plan.nextRerun(trials, elapsed: 29, seconds: times) == .some(nil))
        trials[3] = Self.trial(3, rate: 0.04, .pruned, nil)
        #expect(plan.nextRerun(trials, elapsed: 29, seconds: times) == nil)
        // Without a time budget the re-runs wait for the search's trials in flight, whatever the time.
        trials[3] = Self.trial(3, rate: 0.04, .running, nil)
        #expect(try Self.plan().nextRerun(trials, elapsed: 0, seconds: times) == .some(nil))
    }

    /// With `confirm.metric`, every trial records that metric after its objective, and the confirmed
    /// configurations are ranked by its mean; the objective's mean stays their value.
    @Test func ranksTheConfirmedConfigurationsByTheirOwnMetric() throws {
        let plan = try Self.plan(
            #"{"top": 2, "repeats": 1, "seed": "head.seed", "metric": "crossed_validation_accuracy"}"#)
        #expect(plan.settings.recordedMetrics == ["validation_accuracy", "crossed_validation_accuracy"])
        // The registry keeps both values; the sampler and pruner see the objective's, the confirmation its own.
        func stored(_ number: Int, rate: Double, seed: Int?, _ values: [Double]) throws -> StudyTrial {
            let params = #"{"head.learning_rate": \#(rate)"# + (seed.map { #", "head.seed": \#($0)"# } ?? "") + "}"
            let text = #"""
                {"id": \#(number), "number": \#(number), "params": \#(params), "state": "complete",
                 "values": \#(values), "reports": {}, "createdAt": 0, "finishedAt": 1}
                """#
            return try JSONDecoder().decode(StudyTrial.self, from: Data(text.utf8))
        }
        let trials = try [
            stored(0, rate: 0.01, seed: nil, [0.76, 0.70]), stored(1, rate: 0.02, seed: nil, [0.75, 0.74]),
            stored(2, rate: 0.03, seed: nil, [0.60, 0.60]), stored(3, rate: 0.01, seed: 8, [0.76, 0.69]),
            stored(4, rate: 0.02, seed: 8, [0.73, 0.73]),
        ].map(plan.record)
        #expect(trials[0].values == [0.76] && trials[0].confirmValue == 0.70)
        // By the objective trial 0's configuration leads (0.76 against 0.74); by the crossed accuracy trial 1's
        // (0.735 against 0.695), and its value is its objective's mean.
        let best = try #require(plan.settings.best(trials).first)
        #expect(best.number == 1 && abs(best.values![0] - 0.74) < 1e-12 && abs(best.confirmValue! - 0.735) < 1e-12)
        // A run without the metric is refused, naming it.
        let missing = #expect(throws: TuningError.self) {
            try plan.objectiveValues(summary: .object(["validation_accuracy": .double(0.7)]), seconds: 1)
        }
        #expect(
            missing.map { "\($0)" }?.contains(
                "the confirmation's metric 'crossed_validation_accuracy' is not in the run's summary") == true)
        let values = try plan.objectiveValues(
            summary: .object(["validation_accuracy": .double(0.7), "crossed_validation_accuracy": .double(0.65)]),
            seconds: 1)
        #expect(values == [0.7, 0.65])
        // Without the metric, the objective ranks: trial 0's configuration.
        let plain = try Self.plan(#"{"top": 2, "repeats": 1, "seed": "head.seed"}"#)
        let unranked = trials.map { t -> TrialRecord in
            var t = t
            t.confirmValue = nil
            return t
        }
        #expect(plain.settings.best(unranked).first?.number == 0)
    }

    @Test func keepsTimeInTheBudgetForTheReruns() throws {
        // 60 s; the best two re-run twice each, two at a time.
        let plan = try Self.plan(budget: #"{"seconds": 60}"#)
        #expect(plan.parallel == 2)
        // Nothing finished: trials start until the budget is spent.
        #expect(!plan.searchOutOfTime(elapsed: 59.9, finished: [], leaders: []))
        #expect(plan.searchOutOfTime(elapsed: 60, finished: [], leaders: []))
        // Finished trials of 2, 4, 6 and 8 s (mean 5); the leaders took 6 and 8 s: 2 × (6 + 8) / 2 = 14 s for
        // their re-runs, 5 + 14 = 19 s kept.
        let finished = [2.0, 4, 6, 8]
        let leaders = [6.0, 8]
        #expect(!plan.searchOutOfTime(elapsed: 40.9, finished: finished, leaders: leaders))
        #expect(plan.searchOutOfTime(elapsed: 41, finished: finished, leaders: leaders))
        // Without confirmation only the next trial's expected time; without `seconds`, never out of time.
        let unconfirmed = try StudyPlan(
            document: try JSONValue.parse(
                #"""
                {"name": "c", "budget": {"seconds": 60, "trials": 9}, "parallel": 3,
                 "base": {"task": "text-classification-head", "encoder": "e", "dataset": {"path": "d.csv"},
                          "output": "o"},
                 "space": {"head.learning_rate": {"type": "float", "low": 0.001, "high": 0.1, "log": true}},
                 "objective": {"metric": "validation_accuracy", "direction": "maximize"}}
                """#))
        #expect(!unconfirmed.searchOutOfTime(elapsed: 54.9, finished: finished, leaders: leaders))
        #expect(unconfirmed.searchOutOfTime(elapsed: 55, finished: finished, leaders: leaders))
        #expect(!(try Self.plan()).searchOutOfTime(elapsed: 1e9, finished: finished, leaders: leaders))
        // One re-run each of three leaders, three at a time: (2 + 4 + 9) / 3 = 5 s, 5 + 5 = 10 s kept.
        let wide = try Self.plan(
            #"{"top": 3, "repeats": 1, "seed": "head.seed"}"#, budget: #"{"seconds": 60}"#, parallel: 3)
        #expect(!wide.searchOutOfTime(elapsed: 49.9, finished: finished, leaders: [2, 4, 9]))
        #expect(wide.searchOutOfTime(elapsed: 50, finished: finished, leaders: [2, 4, 9]))
        // The reserve is never more than the time the search has had. Leaders of 9 and 11 s: 2 × (9 + 11) / 2 =
        // 20 s of re-runs, all of it kept once the search has had 20 s (35 + 5 + 20 = 60).
        #expect(!plan.searchOutOfTime(elapsed: 34.9, finished: finished, leaders: [9, 11]))
        #expect(plan.searchOutOfTime(elapsed: 35, finished: finished, leaders: [9, 11]))
        // Leaders of 30 s each would keep 60 s, the whole budget: the search runs on while 2 × elapsed + 5 < 60.
        #expect(!plan.searchOutOfTime(elapsed: 27.4, finished: finished, leaders: [30, 30]))
        #expect(plan.searchOutOfTime(elapsed: 27.5, finished: finished, leaders: [30, 30]))
    }

    @Test func refusesConfirmationsItCannotRun() {
        func refusal(_ confirm: String, objective: String? = nil) -> String {
            do {
                _ = try Self.plan(confirm, objective: objective)
                return "accepted"
            } catch { return "\(error)" }
        }
        #expect(refusal(#"{"seed": "head.learning_rate"}"#).contains("is a parameter of the search space"))
        #expect(refusal(#"{"seed": "head.monitor"}"#).contains("'head.monitor' is not a whole-number key"))
        #expect(refusal(#"{"seed": "", "top": 2}"#).contains("'confirm.seed' is empty"))
        #expect(refusal(#"{"seed": "head.seed", "metric": ""}"#).contains("'confirm.metric' is empty"))
        #expect(refusal(#"{"seed": "head.seed", "top": 0}"#).contains("'confirm.top' must be from 1 to 100"))
        #expect(
            refusal(
                #"{"seed": "head.seed"}"#,
                objective:
                    #""objectives": [{"metric": "validation_accuracy", "direction": "maximize"}, {"metric": "seconds", "direction": "minimize"}]"#
            ).contains("'confirm' needs one objective"))
    }
}
