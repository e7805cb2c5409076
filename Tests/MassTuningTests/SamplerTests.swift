import Foundation
import MassTuning
import Testing

@Suite struct SamplerTests {
    static let unit = SearchSpace(["x": .init(type: .float, low: 0, high: 1)])

    /// A study run in process: `objective` of the drawn parameters, minimised.
    static func run(
        _ sampler: any Sampler, space: SearchSpace, trials: Int, objective: ([String: TuningValue]) -> Double
    ) -> [TrialRecord] {
        var done: [TrialRecord] = []
        for number in 0..<trials {
            let params = sampler.sample(space, directions: [.minimize], trials: done, number: number)
            done.append(TrialRecord(number: number, params: params, state: .complete, values: [objective(params)]))
        }
        return done
    }

    /// The mixture of `observations` (one row per trial, in `names` order) with Optuna's default weights.
    static func mixture(_ names: [String], _ space: SearchSpace, _ observations: [[TuningValue]]) -> ParzenMixture {
        ParzenMixture(
            names: names, space: space, observations: observations,
            trialWeights: TPESampler.weights(observations.count), priorWeight: 1)
    }

    @Test func parzenDensitiesMatchOptunas() {
        // Expected: Optuna 5.1's _ParzenEstimator.log_pdf on the same observations (scripts/make-parzen-goldens.py).
        func check(_ m: ParzenMixture, _ samples: [[TuningValue]], _ expected: [Double]) {
            for (sample, want) in zip(samples, expected) {
                #expect(abs(m.logDensity(sample) - want) < 1e-9, "\(sample): \(m.logDensity(sample)) vs \(want)")
            }
        }
        let unit = Self.unit
        check(
            Self.mixture(["x"], unit, [[.float(0.2)]]), [[.float(0.2)], [.float(0.9)]],
            [0.0626052913281201, -0.14241463071879112])
        check(
            Self.mixture(["x"], unit, [0.1, 0.15, 0.6, 0.8].map { [.float($0)] }),
            [[.float(0.12)], [.float(0.7)], [.float(0.99)]],
            [0.24968402021376912, 0.003151922478397795, -0.3464715518825363])
        let ints = SearchSpace(["n": .init(type: .int, low: 1, high: 5)])
        check(
            Self.mixture(["n"], ints, [[.int(2)], [.int(4)]]), [[.int(1)], [.int(3)], [.int(5)]],
            [-1.7530987556780993, -1.4778328786638968, -1.7530987556780993])
        let total = (1...5).map { exp(Self.mixture(["n"], ints, [[.int(2)], [.int(4)]]).logDensity([.int($0)])) }
        #expect(abs(total.reduce(0, +) - 1) < 1e-12)
        let rates = SearchSpace(["lr": .init(type: .float, low: 1e-5, high: 1, log: true)])
        check(
            Self.mixture(["lr"], rates, [[.float(1e-3)], [.float(1e-2)]]), [[.float(1e-3)], [.float(0.5)]],
            [-2.161715375083656, -2.9612469659548397])
        let joint = SearchSpace([
            "x": .init(type: .float, low: 0, high: 1),
            "kind": .init(type: .categorical, choices: [.string("a"), .string("b"), .string("c")]),
        ])
        check(
            Self.mixture(
                ["x", "kind"], joint,
                [[.float(0.1), .string("b")], [.float(0.9), .string("b")], [.float(0.4), .string("a")]]),
            [[.float(0.1), .string("b")], [.float(0.1), .string("a")], [.float(0.5), .string("c")]],
            [-0.5694771146595663, -1.0583712225957729, -1.6223567922225235])
    }

    @Test func weightsAndGammaFollowOptunasDefaults() {
        #expect(TPESampler.gamma(1) == 1)
        #expect(TPESampler.gamma(10) == 1)
        #expect(TPESampler.gamma(11) == 2)
        #expect(TPESampler.gamma(400) == 25)
        #expect(TPESampler.weights(24) == [Double](repeating: 1, count: 24))
        let ramped = TPESampler.weights(30)
        #expect(ramped.count == 30)
        #expect(abs(ramped[0] - 1.0 / 30) < 1e-15)
        #expect(ramped[4] == 1 && ramped[5] == 1 && ramped[29] == 1)
        #expect(ramped[1] > ramped[0] && ramped[3] > ramped[2])
    }

    @Test func tpeBeatsRandomSearchOnAQuadratic() {
        // Same budget, five seeds each: TPE's best and its later proposals sit closer to the minimum at 0.7.
        let objective: ([String: TuningValue]) -> Double = { p in pow(p["x"]!.number! - 0.7, 2) }
        var tpeBest: [Double] = []
        var randomBest: [Double] = []
        var tpeLate: [Double] = []
        var randomLate: [Double] = []
        for seed in UInt64(1)...5 {
            let tpe = Self.run(TPESampler(seed: seed), space: Self.unit, trials: 40, objective: objective)
            let random = Self.run(RandomSampler(seed: seed), space: Self.unit, trials: 40, objective: objective)
            tpeBest.append(tpe.map { $0.values![0] }.min()!)
            randomBest.append(random.map { $0.values![0] }.min()!)
            tpeLate += tpe.suffix(20).map { $0.values![0].squareRoot() }
            randomLate += random.suffix(20).map { $0.values![0].squareRoot() }
        }
        let mean = { (v: [Double]) in v.reduce(0, +) / Double(v.count) }
        #expect(mean(tpeBest) < 0.1 * mean(randomBest), "TPE \(mean(tpeBest)), random \(mean(randomBest))")
        // Measured: TPE's best 1.0e-5 against random's 2.4e-4; its last 20 of 40 draws lie 0.129 from 0.7 on average,
        // random's 0.276. Optuna 5.1's TPE on the same five seeds: best 1.3e-6, last 20 at 0.113.
        #expect(mean(tpeLate) < 0.55 * mean(randomLate), "TPE \(mean(tpeLate)), random \(mean(randomLate))")
    }

    @Test func tpeLearnsACategoricalAndALogScale() {
        let space = SearchSpace([
            "kind": .init(type: .categorical, choices: [.string("a"), .string("b"), .string("c")]),
            "rate": .init(type: .float, low: 1e-5, high: 1, log: true),
        ])
        // Best at kind b and a rate near 1e-3.
        let objective: ([String: TuningValue]) -> Double = { p in
            (p["kind"] == .string("b") ? 0 : 1) + abs(log10(p["rate"]!.number!) + 3)
        }
        let trials = Self.run(TPESampler(seed: 3), space: space, trials: 60, objective: objective)
        let late = trials.suffix(30)
        #expect(late.filter { $0.params["kind"] == .string("b") }.count >= 20)
        let rates = late.map { log10($0.params["rate"]!.number!) }
        #expect(abs(rates.sorted()[15] + 3) < 1)
        #expect(trials.allSatisfy { (1e-5...1).contains($0.params["rate"]!.number!) })
    }

    @Test func drawsRespectGridsBoundsAndConditions() {
        let space = SearchSpace([
            "hidden": .init(type: .categorical, choices: [.int(0), .int(64)]),
            "dropout": .init(type: .float, low: 0, high: 0.5, step: 0.1, when: ["hidden": [.int(64)]]),
            "epochs": .init(type: .int, low: 2, high: 6, step: 2),
            "batch": .init(type: .int, low: 8, high: 256, log: true),
        ])
        for sampler in [RandomSampler(seed: 9) as any Sampler, TPESampler(seed: 9, startupTrials: 5)] {
            let trials = Self.run(sampler, space: space, trials: 60) { p in Double(p["epochs"]!.number!) }
            var epochs = Set<Int>()
            for trial in trials {
                let p = trial.params
                #expect((p["dropout"] != nil) == (p["hidden"] == .int(64)))
                if let dropout = p["dropout"]?.number {
                    #expect(abs(dropout * 10 - (dropout * 10).rounded()) < 1e-9 && (0...0.5).contains(dropout))
                }
                guard case .int(let e) = p["epochs"]!, case .int(let b) = p["batch"]! else {
                    Issue.record("ints drawn as \(p)")
                    continue
                }
                #expect([2, 4, 6].contains(e) && (8...256).contains(b))
                epochs.insert(e)
            }
            #expect(epochs == [2, 4, 6])
        }
        // The same study seed and trial number give the same draw wherever it is made.
        let a = RandomSampler(seed: 4).sample(space, directions: [.minimize], trials: [], number: 7)
        let b = RandomSampler(seed: 4).sample(space, directions: [.minimize], trials: [], number: 7)
        #expect(a == b)
    }

    @Test func multiObjectiveTPEKeepsWholeFronts() {
        // Points (lower is better in both): the front is {0, 1, 2}; 3 is dominated by 1; 4 by everything.
        let points: [[Double]] = [[0, 3], [1, 1], [3, 0], [2, 2], [4, 4]]
        #expect(Pareto.front(points) == [0, 1, 2])
        #expect(Pareto.fronts(points) == [[0, 1, 2], [3], [4]])
        let crowding = Pareto.crowding([[0, 3], [1, 1], [3, 0]])
        #expect(crowding[0] == .infinity && crowding[2] == .infinity && abs(crowding[1] - 2) < 1e-12)
        let trials = points.enumerated().map { i, p in
            TrialRecord(number: i, params: ["x": .float(0.1 * Double(i))], state: .complete, values: [p[0], -p[1]])
        }
        let best = TPESampler.best(trials, directions: [.minimize, .maximize], count: 2)
        // Two of the front's three: its extremes (infinite crowding distance).
        #expect(Set(best) == [0, 2])
    }
}
