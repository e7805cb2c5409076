import Foundation
import MassStudies
import MassTraining
import Testing

/// `mass select`'s decisions without models: the document's refusals, the rule's conditions, floors, the
/// accuracy/latency front, the winner and the plot.
@Suite struct SelectionRuleTests {
    func plan(_ fields: [String: Any] = [:]) throws -> SelectionPlan {
        var json: [String: Any] = [
            "dataset": ["path": "texts.csv"],
            "candidates": [
                ["name": "base", "model": "registry:rt@1"], ["name": "tuned", "model": "registry:rt@2"],
                ["name": "int8", "model": "registry:rt@3"], ["name": "student", "model": "runs/student/model"],
            ],
            "reference": "tuned",
            "floor": ["accuracy": 0.7],
            "rule": ["maximize": "accuracy", "where": ["p99_ms < 10", "size_mb <= 30"]],
            "promote": ["model": "rt", "alias": "production"],
        ]
        json.merge(fields) { $1 }
        let plan = try SelectionPlan.decode(try JSONSerialization.data(withJSONObject: json))
        try plan.validate()
        return plan
    }

    func result(_ name: String, _ accuracy: Double, p99: Double, size: Double) -> CandidateResult {
        var r = CandidateResult(name: name, model: "registry:rt@\(name.count)", version: name.count)
        (r.accuracy, r.p50Ms, r.p99Ms, r.sizeMb, r.throughput) = (accuracy, p99 / 2, p99, size, 1000 / p99)
        return r
    }

    @Test func refusesBadDocumentsNamingTheKey() throws {
        let cases: [([String: Any], String)] = [
            (["candidates": []], "'candidates' is empty"),
            (["reference": "nobody"], "'reference' 'nobody' is not a candidate"),
            (
                ["candidates": [["name": "a", "model": "x"], ["name": "a", "model": "y"]]], "the name 'a' is used twice"
            ),
            (["rule": ["maximize": "speed"]], "unknown measure 'speed'"),
            (["rule": ["maximize": "accuracy", "minimize": "p99_ms"]], "either 'maximize' or 'minimize'"),
            (
                ["rule": ["maximize": "accuracy", "where": ["p99 under 10"]]],
                "'p99 under 10' must read MEASURE < NUMBER"
            ),
            (["rule": ["maximize": "accuracy", "where": ["latency < 10"]]], "unknown measure 'latency'"),
            (["floor": ["acc": 0.5]], "'floor' names an unknown measure 'acc'"),
            (["promote": ["model": "other", "alias": "production"]], "'promote.model' 'other': no candidate"),
            (["promote": ["model": "rt", "canary": 100]], "'promote.canary' is a percentage"),
            (["promote": ["model": "rt", "alias": "a", "canary": 5]], "either 'alias' or 'canary'"),
            (["measure": ["batch_sizes": [0]]], "'measure.batch_sizes'"),
            (["part": "train"], "'part' must be 'test' or 'all'"),
        ]
        for (fields, message) in cases {
            #expect(throws: (any Error).self) { try plan(fields) }
            do {
                _ = try plan(fields)
            } catch {
                #expect("\(error)".contains(message), "\(fields): \(error)")
            }
        }
        #expect(throws: (any Error).self) { try SelectionPlan.decode(Data(#"{"candidates": 3}"#.utf8)) }
    }

    @Test func conditionsParseAndHold() throws {
        let c = try SelectionCondition("p99_ms <= 10")
        #expect(c.measure == "p99_ms" && c.holds(10) && !c.holds(10.01))
        #expect(
            try SelectionCondition("accuracy > 0.8").holds(0.81)
                && !(try SelectionCondition("accuracy > 0.8").holds(0.8)))
        #expect(try SelectionCondition("size_mb < 30").description == "size_mb < 30")
    }

    /// Floors and conditions exclude; the front is accuracy against p99; the most accurate eligible one wins.
    @Test func judgesCandidatesByFloorRuleAndFront() throws {
        let plan = try plan()
        var unmeasured = CandidateResult(name: "student", model: "runs/student/model")
        unmeasured.error = "its labels [a, b, c] are not the dataset's [fresh, rotten]"
        let report = try SelectionReport(
            name: "rt", plan: plan, examples: 973,
            measured: [
                result("base", 0.65, p99: 3, size: 90),  // below the floor
                result("tuned", 0.80, p99: 12, size: 90),  // most accurate, too slow and large
                result("int8", 0.79, p99: 5, size: 25),  // eligible
                unmeasured,
            ])
        #expect(report.winner == "int8")
        #expect(report.rule == "highest accuracy with p99_ms < 10 and size_mb <= 30")
        let byName = Dictionary(uniqueKeysWithValues: report.candidates.map { ($0.name, $0) })
        #expect(byName["base"]?.belowFloor == ["accuracy 0.65 < 0.7"])
        #expect(byName["tuned"]?.failsRule == ["p99_ms < 10", "size_mb <= 30"])
        #expect(byName["int8"]?.failsRule == [] && byName["int8"]?.belowFloor == [])
        // base is fastest, tuned most accurate, int8 between: all three on the front.
        #expect(report.front == ["base", "tuned", "int8"])
        #expect(byName["student"]?.onFront == false)
        let table = report.table()
        #expect(table.contains("not measured: its labels"))
        #expect(table.contains("below floor: accuracy 0.65 < 0.7"))
        #expect(table.split(separator: "\n").first { $0.hasPrefix("int8") }?.contains("WINNER") == true)
        let svg = SelectionPlot.svg(report, plan: plan)
        #expect(svg.components(separatedBy: "<circle").count - 1 == 4)  // three points and the winner's ring
        #expect(svg.contains("int8 (chosen)") && svg.contains("p99 bound") && svg.contains("accuracy floor"))
        let png = try PlotFiles.png(svg: svg)
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        // 640 x 420 drawn at twice the size: the IHDR's width and height.
        #expect(png.subdata(in: 16..<24) == Data([0, 0, 5, 0, 0, 0, 3, 72]))
    }

    @Test func namesWhyNothingWon() throws {
        let plan = try plan(["floor": ["accuracy": 0.9]])
        let report = try SelectionReport(
            name: "rt", plan: plan, examples: 10,
            measured: [result("base", 0.85, p99: 3, size: 20), result("tuned", 0.95, p99: 30, size: 20)])
        #expect(report.winner == nil)
        #expect(report.reason.contains("0 could not be measured, 1 fell below the floor, 1 failed a condition"))
        #expect(report.front == ["base", "tuned"])
    }

    /// Minimising: the smallest eligible model; a tie goes to the earlier candidate.
    @Test func minimisesAndBreaksTiesInOrder() throws {
        let plan = try plan(["rule": ["minimize": "size_mb", "where": ["accuracy >= 0.75"]], "floor": [:]])
        let report = try SelectionReport(
            name: "rt", plan: plan, examples: 10,
            measured: [
                result("base", 0.70, p99: 3, size: 10), result("tuned", 0.80, p99: 4, size: 25),
                result("int8", 0.78, p99: 4, size: 25),
            ])
        #expect(report.winner == "tuned")
        #expect(report.rule == "lowest size_mb with accuracy >= 0.75")
    }

    /// A floor on a measure a candidate lacks (agreement, when the reference could not be measured) is not met.
    @Test func aFloorOnAMissingMeasureIsNotMet() throws {
        let plan = try plan(["floor": ["agreement": 0.9]])
        var measured = result("int8", 0.79, p99: 5, size: 25)
        measured.agreement = nil
        let report = try SelectionReport(name: "rt", plan: plan, examples: 10, measured: [measured])
        #expect(report.candidates.first?.belowFloor == ["agreement not measured"])
        #expect(report.winner == nil)
    }

    @Test func refusesAnSVGItCannotDraw() {
        #expect(throws: TrainingError.self) { try PlotFiles.png(svg: "<svg") }
    }
}
