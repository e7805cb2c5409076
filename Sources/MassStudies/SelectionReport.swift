public import Foundation
import MassTraining
import MassTuning

/// What one candidate measured (`mass select`): on the plan's texts, in a process of its own on this machine.
public struct CandidateResult: Codable, Sendable, Equatable {
    public var name: String
    public var model: String
    /// The registered version, when the candidate names the registry.
    public var version: Int?
    /// Why the candidate could not be measured (unreadable, another task, other labels); nil when it was.
    public var error: String?
    public var accuracy: Double?
    /// The share of texts on which it predicts the reference candidate's label.
    public var agreement: Double?
    /// One text per request, one request at a time.
    public var p50Ms: Double?
    public var p99Ms: Double?
    /// Texts per second at `bestBatch`, the best of the plan's batch sizes.
    public var throughput: Double?
    public var bestBatch: Int?
    /// The peak resident memory of the process that served it (MB, 10^6 bytes).
    public var memoryMb: Double?
    /// The model folder's files (MB, 10^6 bytes).
    public var sizeMb: Double?
    /// The floors it falls below ("accuracy 0.6812 < 0.7").
    public var belowFloor: [String] = []
    /// The rule's conditions it fails.
    public var failsRule: [String] = []
    public var onFront = false

    enum CodingKeys: String, CodingKey {
        case name, model, version, error, accuracy, agreement, throughput
        case p50Ms = "p50_ms"
        case p99Ms = "p99_ms"
        case bestBatch = "best_batch"
        case memoryMb = "memory_mb"
        case sizeMb = "size_mb"
        case belowFloor = "below_floor"
        case failsRule = "fails_rule"
        case onFront = "on_front"
    }

    public init(name: String, model: String, version: Int? = nil, error: String? = nil) {
        self.name = name
        self.model = model
        self.version = version
        self.error = error
    }

    /// A measure by its name in the plan (`SelectionPlan.measures`).
    public func value(_ measure: String) -> Double? {
        switch measure {
        case "accuracy": accuracy
        case "agreement": agreement
        case "p50_ms": p50Ms
        case "p99_ms": p99Ms
        case "throughput": throughput
        case "memory_mb": memoryMb
        case "size_mb": sizeMb
        default: nil
        }
    }
}

/// The whole selection: every candidate, the accuracy/latency front, the rule's choice and why.
public struct SelectionReport: Codable, Sendable, Equatable {
    public var name: String
    /// The number of labelled texts each candidate was judged on.
    public var examples: Int
    public var reference: String
    public var rule: String
    public var candidates: [CandidateResult]
    /// The candidates no other beats on both accuracy and p99 latency.
    public var front: [String]
    public var winner: String?
    public var reason: String
    /// What promoting the winner changed ("promoted: rt@3 → alias production"), or why it could not.
    public var promotion: String?

    /// Judges measured candidates: floors, the rule's conditions, the front, the winner.
    public init(name: String, plan: SelectionPlan, examples: Int, measured: [CandidateResult]) throws(TrainingError) {
        let (measure, maximize) = try plan.objective()
        let conditions = try plan.conditions()
        self.name = name
        self.examples = examples
        reference = plan.referenceName
        rule =
            "\(maximize ? "highest" : "lowest") \(measure)"
            + (conditions.isEmpty ? "" : " with " + conditions.map(\.description).joined(separator: " and "))
        var candidates = measured
        for i in candidates.indices where candidates[i].error == nil {
            for (m, low) in (plan.floor ?? [:]).sorted(by: { $0.key < $1.key }) {
                // A floor on a measure the candidate lacks (agreement without a measured reference) is not met.
                guard let v = candidates[i].value(m) else {
                    candidates[i].belowFloor.append("\(m) not measured")
                    continue
                }
                let larger = SelectionPlan.measures[m] ?? true
                if larger ? v < low : v > low {
                    candidates[i].belowFloor.append(
                        "\(m) \(Self.format(v)) \(larger ? "<" : ">") \(Self.format(low))")
                }
            }
            candidates[i].failsRule = conditions.filter { c in
                candidates[i].value(c.measure).map { !c.holds($0) } ?? true
            }.map(\.description)
        }
        let measuredIndices = candidates.indices.filter {
            candidates[$0].accuracy != nil && candidates[$0].p99Ms != nil
        }
        for k in Pareto.front(measuredIndices.map { [-(candidates[$0].accuracy ?? 0), candidates[$0].p99Ms ?? 0] }) {
            candidates[measuredIndices[k]].onFront = true
        }
        self.candidates = candidates
        front = candidates.filter(\.onFront).map(\.name)
        let eligible = candidates.filter {
            $0.error == nil && $0.belowFloor.isEmpty && $0.failsRule.isEmpty && $0.value(measure) != nil
        }
        // Ties go to the earlier candidate in the plan.
        let best = eligible.reduce(nil as CandidateResult?) { best, c in
            guard let best, let b = best.value(measure), let v = c.value(measure) else { return best ?? c }
            return (maximize ? v > b : v < b) ? c : best
        }
        winner = best?.name
        if let best {
            reason = "\(best.name): \(rule) (\(measure) \(Self.format(best.value(measure) ?? 0)))"
        } else {
            let failed = candidates.filter { $0.error != nil }.count
            let floored = candidates.filter { $0.error == nil && !$0.belowFloor.isEmpty }.count
            reason =
                "no candidate meets the rule (\(rule)): \(failed) could not be measured, \(floored) fell below the floor, "
                + "\(candidates.count - failed - floored - eligible.count) failed a condition"
        }
    }

    static func format(_ v: Double) -> String { String(format: v.magnitude >= 100 ? "%.1f" : "%.4g", v) }

    /// The report as a table, one candidate per row.
    public func table() -> String {
        func cell(_ v: Double?, _ format: String) -> String { v.map { String(format: format, $0) } ?? "-" }
        let widths = [14, 8, 9, 8, 8, 9, 5, 9, 7]
        func row(_ cells: [String], _ verdict: String) -> String {
            zip(cells, widths).enumerated().map { i, pair in
                let pad = String(repeating: " ", count: max(0, pair.1 - pair.0.count))
                return i == 0 ? pair.0 + pad : pad + pair.0
            }.joined(separator: " ") + "  " + verdict
        }
        var lines = [
            row(
                ["candidate", "accuracy", "agreement", "p50 ms", "p99 ms", "texts/s", "batch", "memory MB", "size MB"],
                "verdict")
        ]
        for c in candidates {
            var verdict: [String] = []
            if let error = c.error { verdict.append("not measured: \(error)") }
            verdict += c.belowFloor.map { "below floor: \($0)" }
            verdict += c.failsRule.map { "fails \($0)" }
            if c.onFront { verdict.append("front") }
            if c.name == winner { verdict.append("WINNER") }
            lines.append(
                row(
                    [
                        c.name, cell(c.accuracy, "%.4f"), cell(c.agreement, "%.4f"), cell(c.p50Ms, "%.2f"),
                        cell(c.p99Ms, "%.2f"), cell(c.throughput, "%.1f"), c.bestBatch.map(String.init) ?? "-",
                        cell(c.memoryMb, "%.0f"), cell(c.sizeMb, "%.1f"),
                    ], verdict.joined(separator: "; ")))
        }
        lines.append("rule: \(rule)")
        lines.append(winner == nil ? reason : "winner: \(reason)")
        if let promotion { lines.append(promotion) }
        return lines.joined(separator: "\n")
    }
}
