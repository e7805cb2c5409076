import Foundation
import MassTuning
import Testing

@Suite struct PrunerTests {
    static func trial(_ number: Int, _ state: TrialRecord.State, _ reports: [Int: Double]) -> TrialRecord {
        TrialRecord(
            number: number, params: [:], state: state, values: state == .complete ? [reports.values.max()!] : nil,
            reports: reports)
    }

    @Test func successiveHalvingKeepsTheTopThirdAtEachRung() {
        let asha = SuccessiveHalvingPruner(minResource: 1, reductionFactor: 3)
        #expect((0..<4).map(asha.rungStep) == [1, 3, 9, 27])
        var others: [TrialRecord] = []
        // Accuracies at step 1 arriving one trial at a time (maximised). With fewer than three at a rung only the
        // best so far continues; from three on, the best ⌊n/3⌋.
        let arrivals: [(Double, Bool)] = [
            (0.50, false),  // alone: continues
            (0.40, true),  // [0.5, 0.4]: only the best continues
            (0.60, false),  // best of three
            (0.55, true),  // 4 values, keep 1: 0.60
            (0.58, true),  // 5 values, keep 1
            (0.59, false),  // 6 values, keep 2: 0.60, 0.59
            (0.57, true),  // 7 values, keep 2
        ]
        for (number, (value, pruned)) in arrivals.enumerated() {
            let t = Self.trial(number, .running, [1: value])
            #expect(asha.shouldPrune(t, step: 1, direction: .maximize, others: others) == pruned, "trial \(number)")
            others.append(
                TrialRecord(number: number, params: [:], state: pruned ? .pruned : .running, reports: t.reports))
        }
        // Step 2 is no rung: nothing is decided there.
        let between = Self.trial(2, .running, [1: 0.60, 2: 0.1])
        #expect(!asha.shouldPrune(between, step: 2, direction: .maximize, others: others))
        // Step 3 is rung 1: trial 2 reaches it first and continues; trial 5 then trails it and with two values only
        // the best continues.
        let atRung1 = Self.trial(2, .running, [1: 0.60, 2: 0.62, 3: 0.70])
        #expect(!asha.shouldPrune(atRung1, step: 3, direction: .maximize, others: others))
        others[2] = atRung1
        let later = Self.trial(5, .running, [1: 0.59, 2: 0.6, 3: 0.65])
        #expect(asha.shouldPrune(later, step: 3, direction: .maximize, others: others))
        // Minimising flips it; a report that skips a rung is judged there by its first value past it.
        let losses = [Self.trial(0, .complete, [1: 0.3, 3: 0.2]), Self.trial(1, .complete, [1: 0.5, 4: 0.1])]
        #expect(asha.rungValue(losses[1], 1) == 0.1)
        #expect(!asha.shouldPrune(Self.trial(2, .running, [1: 0.2]), step: 1, direction: .minimize, others: losses))
        #expect(asha.shouldPrune(Self.trial(2, .running, [1: 0.4]), step: 1, direction: .minimize, others: losses))
        // η = 2 keeps half.
        let halves = SuccessiveHalvingPruner(minResource: 2, reductionFactor: 2)
        let four = (0..<3).map { Self.trial($0, .complete, [2: Double($0)]) }
        #expect(!halves.shouldPrune(Self.trial(3, .running, [2: 2.5]), step: 2, direction: .maximize, others: four))
        #expect(!halves.shouldPrune(Self.trial(3, .running, [2: 1.5]), step: 2, direction: .maximize, others: four))
        #expect(halves.shouldPrune(Self.trial(3, .running, [2: 0.5]), step: 2, direction: .maximize, others: four))
        #expect(!halves.shouldPrune(Self.trial(3, .running, [1: 0]), step: 1, direction: .maximize, others: four))
    }

    /// Optuna's Hyperband with min 6, max 54, η 3: three brackets allotted 9, 5 and 3 shares (⌈3·9/3⌉, ⌈3·3/2⌉,
    /// ⌈3·1/1⌉); bracket s first judges at epoch 6·3^s, against its own trials only.
    @Test func hyperbandJudgesEachTrialInItsBracket() throws {
        let hyperband = HyperbandPruner(minResource: 6, maxResource: 54, reductionFactor: 3, studyName: "rt")
        #expect(hyperband.brackets == 3 && hyperband.allotments == [9, 5, 3])
        #expect(
            HyperbandPruner(minResource: 1, maxResource: 9, reductionFactor: 3, studyName: "").allotments == [9, 5, 3])
        #expect(HyperbandPruner(minResource: 1, maxResource: 1, reductionFactor: 3, studyName: "").allotments == [1])
        // Trials spread over the brackets about as allotted (2,000 numbers: 9/17, 5/17, 3/17).
        var counts = [0, 0, 0]
        for n in 0..<2000 { counts[hyperband.bracket(n)] += 1 }
        #expect(counts.enumerated().allSatisfy { abs(Double($1) / 2000 - [9.0, 5, 3][$0] / 17) < 0.03 }, "\(counts)")
        let byBracket = Dictionary(grouping: 0..<60) { hyperband.bracket($0) }
        let first = try #require(byBracket[0]), second = try #require(byBracket[1])
        // Bracket 0 judges at 6: a poor value among its bracket's good ones stops there.
        let good = first.prefix(3).map { Self.trial($0, .complete, [6: 0.8, 18: 0.85, 54: 0.9]) }
        let poor = Self.trial(first[3], .running, [6: 0.5])
        #expect(hyperband.shouldPrune(poor, step: 6, direction: .maximize, others: good))
        // Bracket 1 does not judge at 6, and the other bracket's trials are not its competitors at 18.
        let late = Self.trial(second[0], .running, [6: 0.5])
        #expect(!hyperband.shouldPrune(late, step: 6, direction: .maximize, others: good))
        let lateAt18 = Self.trial(second[0], .running, [6: 0.5, 18: 0.6])
        #expect(!hyperband.shouldPrune(lateAt18, step: 18, direction: .maximize, others: good))
        let rival = Self.trial(second[1], .complete, [18: 0.9, 54: 0.9])
        #expect(hyperband.shouldPrune(lateAt18, step: 18, direction: .maximize, others: good + [rival]))
    }

    /// The steps a pruner can stop a trial at, so the runner answers the others at once: ASHA's rungs (a report
    /// that skips one judges it), a Hyperband bracket's own rungs, median stopping after its warm-up, none for no
    /// pruner; and a step that is not judged never prunes, whatever the values.
    @Test func prunersNameTheStepsTheyJudge() throws {
        let asha = SuccessiveHalvingPruner(minResource: 1, reductionFactor: 3)
        #expect((1...30).filter { asha.judges(trial: 0, step: $0, after: $0 - 1) } == [1, 3, 9, 27])
        #expect(asha.judges(trial: 0, step: 4, after: 2) && !asha.judges(trial: 0, step: 8, after: 4))
        let hyperband = HyperbandPruner(minResource: 6, maxResource: 54, reductionFactor: 3, studyName: "rt")
        let byBracket = Dictionary(grouping: 0..<60) { hyperband.bracket($0) }
        for (bracket, rungs) in [(0, [6, 18, 54]), (1, [18, 54]), (2, [54])] {
            let number = try #require(byBracket[bracket]?.first)
            #expect((1...54).filter { hyperband.judges(trial: number, step: $0, after: $0 - 1) } == rungs)
        }
        let median = MedianPruner(startupTrials: 3, warmupSteps: 2)
        #expect((1...5).filter { median.judges(trial: 0, step: $0, after: $0 - 1) } == [3, 4, 5])
        #expect(!NoPruner().judges(trial: 0, step: 1, after: 0))
        // Consistency: with random values for seven trials over 30 steps, an unjudged step never prunes.
        var generator = SystemRandomNumberGenerator()
        func values(_ last: Int) -> [Int: Double] {
            Dictionary(uniqueKeysWithValues: (1...last).map { ($0, Double.random(in: 0..<1, using: &generator)) })
        }
        for _ in 0..<200 {
            let others = (1..<7).map { Self.trial($0, .complete, values(30)) }
            let step = Int.random(in: 1...30, using: &generator)
            let trial = Self.trial(0, .running, values(step))
            for pruner in [asha as any Pruner, median] where !pruner.judges(trial: 0, step: step, after: step - 1) {
                #expect(!pruner.shouldPrune(trial, step: step, direction: .maximize, others: others))
            }
        }
    }

    @Test func medianStoppingComparesTheBestSoFarWithTheCompleteTrialsMedian() {
        let median = MedianPruner(startupTrials: 3, warmupSteps: 1)
        let complete = [
            Self.trial(0, .complete, [1: 0.5, 2: 0.60, 3: 0.7]),
            Self.trial(1, .complete, [1: 0.4, 2: 0.70, 3: 0.8]),
            Self.trial(2, .complete, [1: 0.6, 2: 0.80, 3: 0.9]),
            // Running and pruned trials are not in the median.
            Self.trial(3, .pruned, [1: 0.1, 2: 0.1]),
        ]
        // Median at step 2: 0.70.
        #expect(
            median.shouldPrune(
                Self.trial(4, .running, [1: 0.3, 2: 0.65]), step: 2, direction: .maximize, others: complete))
        #expect(
            !median.shouldPrune(
                Self.trial(4, .running, [1: 0.3, 2: 0.70]), step: 2, direction: .maximize, others: complete))
        // The best so far counts: 0.75 at step 1 beats step 2's median though step 2 reports 0.5.
        #expect(
            !median.shouldPrune(
                Self.trial(4, .running, [1: 0.75, 2: 0.5]), step: 2, direction: .maximize, others: complete))
        // Warm-up steps and too few complete trials never prune.
        #expect(!median.shouldPrune(Self.trial(4, .running, [1: 0.0]), step: 1, direction: .maximize, others: complete))
        #expect(
            !median.shouldPrune(
                Self.trial(4, .running, [1: 0, 2: 0]), step: 2, direction: .maximize, others: Array(complete.prefix(2)))
        )
        // Minimising: an even count takes the mean of the middle two (0.5 and 0.6 at step 1 less warm-up: 0 steps).
        let lossMedian = MedianPruner(startupTrials: 2, warmupSteps: 0)
        let two = [Self.trial(0, .complete, [1: 0.5]), Self.trial(1, .complete, [1: 0.6])]
        #expect(lossMedian.shouldPrune(Self.trial(2, .running, [1: 0.56]), step: 1, direction: .minimize, others: two))
        #expect(!lossMedian.shouldPrune(Self.trial(2, .running, [1: 0.54]), step: 1, direction: .minimize, others: two))
    }

    @Test func settingsRefuseWhatCannotRun() {
        func refusal(_ settings: StudySettings) -> String? {
            do {
                try settings.validate()
                return nil
            } catch { return error.message }
        }
        let lr = SearchSpace.Parameter(type: .float, low: 1e-4, high: 1e-1, log: true)
        let one = [StudySettings.Objective(metric: "validation_accuracy", direction: .maximize)]
        let good = StudySettings(
            space: SearchSpace(["head.learning_rate": lr]), objectives: one, budget: .init(trials: 4))
        #expect(refusal(good) == nil)
        #expect(
            refusal(StudySettings(space: SearchSpace([:]), objectives: one, budget: .init(trials: 4)))
                == "the search space is empty")
        var s = good
        s.space.parameters["head.learning_rate"]?.low = 0
        #expect(refusal(s) == "search space: 'head.learning_rate' is on a log scale: 'low' must be positive")
        s = good
        s.space.parameters["head.learning_rate"]?.high = 1e-5
        #expect(refusal(s)?.contains("not below 'high'") == true)
        s = good
        s.space.parameters["a"] = .init(type: .categorical, choices: [.int(1)], when: ["b": [.int(1)]])
        s.space.parameters["b"] = .init(type: .categorical, choices: [.int(1)], when: ["a": [.int(1)]])
        #expect(refusal(s) == "search space: 'a' and 'b' depend on each other")
        s = good
        s.space.parameters["d"] = .init(type: .float, low: 0, high: 1, when: ["missing": [.int(1)]])
        #expect(refusal(s) == "search space: 'd' depends on 'missing', not in the space")
        s = good
        s.space.parameters["c"] = .init(type: .categorical, choices: [])
        #expect(refusal(s) == "search space: 'c' needs at least one choice")
        s = good
        s.objectives = []
        #expect(refusal(s)?.hasPrefix("'objective' is missing") == true)
        s = good
        s.budget = .init()
        #expect(refusal(s) == "'budget' needs 'trials' or 'seconds' (or both)")
        s = good
        s.objectives = one + [.init(metric: "seconds", direction: .minimize)]
        s.pruner = .init(type: "asha")
        #expect(refusal(s) == "a pruner needs one objective, or 'intermediate' naming what it watches")
        s = good
        s.pruner = .init(type: "hyperband", minResource: 6)
        #expect(refusal(s)?.hasPrefix("'pruner.max_resource'") == true)
        s.pruner = .init(type: "hyperband", minResource: 6, maxResource: 54, reductionFactor: 3)
        #expect(refusal(s) == nil)
        // The document's keys reach every setting.
        let decoded = try? JSONDecoder().decode(
            StudySettings.PrunerSettings.self,
            from: Data(#"{"type": "hyperband", "min_resource": 6, "max_resource": 54, "reduction_factor": 3}"#.utf8))
        #expect(decoded == s.pruner)
        let median = try? JSONDecoder().decode(
            StudySettings.PrunerSettings.self,
            from: Data(#"{"type": "median", "startup_trials": 2, "warmup_steps": 4}"#.utf8))
        #expect(median == .init(type: "median", startupTrials: 2, warmupSteps: 4))
        s = good
        s.pruner = .init(type: "bohb")
        #expect(refusal(s) == "'pruner.type' must be asha, hyperband, median or none, not 'bohb'")
    }
}
