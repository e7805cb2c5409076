public import Foundation
public import MassTraining

/// A `mass select` document: the candidates, the labelled texts they are judged on, what is measured, the floor,
/// the rule that picks the winner and what the winner is promoted to (docs/selection.md). `validate()` checks
/// everything that needs no file or model, naming the key.
public struct SelectionPlan: Codable, Sendable {
    public struct Candidate: Codable, Sendable, Equatable {
        /// The candidate's name in the report ("fine-tuned", "int8").
        public var name: String
        /// A model folder, or `registry:NAME@VERSION|ALIAS`.
        public var model: String

        public init(name: String, model: String) {
            self.name = name
            self.model = model
        }

        /// The registered model and selector when `model` names the registry.
        public var registered: (model: String, selector: String)? {
            guard model.hasPrefix("registry:") else { return nil }
            let parts = model.dropFirst("registry:".count).split(separator: "@", maxSplits: 1).map(String.init)
            return (parts.first ?? "", parts.count > 1 ? parts[1] : "latest")
        }
    }

    public struct Measure: Codable, Sendable {
        /// Requests of one text each, sent one after another, for the batch-1 latencies.
        public var latencyRequests: Int?
        /// The batch sizes tried for throughput (the best is reported).
        public var batchSizes: [Int]?
        /// Compute threads of the process that serves each candidate (default: every core).
        public var threads: Int?

        enum CodingKeys: String, CodingKey {
            case latencyRequests = "latency_requests"
            case batchSizes = "batch_sizes"
            case threads
        }
    }

    /// Which candidate wins: the best by `maximize` or `minimize` among those meeting every `where` condition
    /// ("p99_ms < 10", "size_mb <= 30") and the floor.
    public struct Rule: Codable, Sendable {
        public var maximize: String?
        public var minimize: String?
        public var `where`: [String]?
    }

    public struct Promote: Codable, Sendable {
        /// The registered model whose version the winner must be.
        public var model: String
        /// Move this alias to the winner.
        public var alias: String?
        /// Or route this share (percent, above 0 and below 100) of the model's traffic to the winner, the rest to
        /// what it serves now: a canary.
        public var canary: Double?
    }

    public var name: String?
    public var dataset: TrainingConfig.Dataset
    public var split: TrainingConfig.Split?
    /// `test` (the split's test part, the texts training held out: default) or `all`.
    public var part: String?
    public var candidates: [Candidate]
    /// The candidate the others' agreement is measured against (default the first).
    public var reference: String?
    public var measure: Measure?
    /// The lowest acceptable value of each named measure (`{"accuracy": 0.7}`): a candidate below is reported as
    /// such and never chosen.
    public var floor: [String: Double]?
    public var rule: Rule
    public var promote: Promote?
    /// The folder for the report and the plots (default `selections/NAME`).
    public var output: String?

    public var referenceName: String { reference ?? candidates.first?.name ?? "" }
    public var latencyRequests: Int { measure?.latencyRequests ?? 200 }
    public var batchSizes: [Int] { measure?.batchSizes ?? [1, 8, 32, 64] }

    public static func decode(_ data: Data) throws -> SelectionPlan {
        do {
            return try JSONDecoder().decode(SelectionPlan.self, from: data)
        } catch let error as DecodingError {
            throw TrainingError(.badConfig, "the selection document: \(TrainingConfig.describe(error))")
        }
    }

    /// The measures a rule, a condition or a floor can name, and whether larger is better.
    public static let measures: [String: Bool] = [
        "accuracy": true, "agreement": true, "p50_ms": false, "p99_ms": false, "throughput": true,
        "memory_mb": false, "size_mb": false,
    ]

    public func validate() throws(TrainingError) {
        func bad(_ message: String) -> TrainingError { TrainingError(.badConfig, message) }
        guard !candidates.isEmpty else { throw bad("'candidates' is empty: give at least one model") }
        var names = Set<String>()
        for (i, c) in candidates.enumerated() {
            guard !c.name.isEmpty, !c.model.isEmpty else { throw bad("'candidates[\(i)]' needs a name and a model") }
            guard c.name.count <= 64, c.name.first?.isLetter == true || c.name.first?.isNumber == true,
                c.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
            else {
                throw bad("'candidates[\(i)].name' '\(c.name)' must be 1-64 letters, digits, '.', '_' or '-'")
            }
            guard names.insert(c.name).inserted else { throw bad("'candidates': the name '\(c.name)' is used twice") }
            if let r = c.registered, r.model.isEmpty || r.selector.isEmpty {
                throw bad("'candidates[\(i)].model' '\(c.model)' must be registry:NAME@VERSION or a folder")
            }
        }
        guard names.contains(referenceName) else { throw bad("'reference' '\(referenceName)' is not a candidate") }
        guard !dataset.path.isEmpty else { throw bad("'dataset.path' is empty") }
        guard dataset.pair == nil else { throw bad("'dataset.pair': mass select judges classifiers of single texts") }
        guard ["test", "all"].contains(part ?? "test") else { throw bad("'part' must be 'test' or 'all'") }
        guard latencyRequests >= 1, latencyRequests <= 100_000 else {
            throw bad("'measure.latency_requests' must be from 1 to 100000")
        }
        guard !batchSizes.isEmpty, batchSizes.allSatisfy({ $0 >= 1 && $0 <= 1024 }) else {
            throw bad("'measure.batch_sizes' must be a list of sizes from 1 to 1024")
        }
        if let threads = measure?.threads, threads < 1 { throw bad("'measure.threads' must be at least 1") }
        for (measure, value) in floor ?? [:] {
            guard Self.measures[measure] != nil else { throw bad("'floor' names an unknown measure '\(measure)'") }
            guard value.isFinite else { throw bad("'floor.\(measure)' must be a number") }
        }
        _ = try objective()
        _ = try conditions()
        if let promote {
            guard (promote.alias == nil) != (promote.canary == nil) else {
                throw bad("'promote' takes either 'alias' or 'canary'")
            }
            if let canary = promote.canary, !(canary > 0 && canary < 100) {
                throw bad("'promote.canary' is a percentage above 0 and below 100")
            }
            guard !promote.model.isEmpty else { throw bad("'promote.model' is empty") }
            guard candidates.contains(where: { $0.registered?.model == promote.model }) else {
                throw bad("'promote.model' '\(promote.model)': no candidate is a version of it")
            }
        }
    }

    /// The rule's measure and whether it is maximised.
    public func objective() throws(TrainingError) -> (measure: String, maximize: Bool) {
        guard (rule.maximize == nil) != (rule.minimize == nil) else {
            throw TrainingError(.badConfig, "'rule' takes either 'maximize' or 'minimize'")
        }
        let measure = rule.maximize ?? rule.minimize ?? ""
        guard Self.measures[measure] != nil else {
            throw TrainingError(
                .badConfig,
                "'rule' names an unknown measure '\(measure)' (known: \(Self.measures.keys.sorted().joined(separator: ", ")))"
            )
        }
        return (measure, rule.maximize != nil)
    }

    /// The rule's conditions, parsed.
    public func conditions() throws(TrainingError) -> [SelectionCondition] {
        var parsed: [SelectionCondition] = []
        for text in rule.where ?? [] { parsed.append(try SelectionCondition(text)) }
        return parsed
    }
}

/// One of a rule's conditions: "MEASURE OP NUMBER" with OP one of <, <=, >, >=.
public struct SelectionCondition: Sendable, Equatable, CustomStringConvertible {
    public var measure: String
    public var op: String
    public var bound: Double

    public init(_ text: String) throws(TrainingError) {
        let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard words.count == 3, ["<", "<=", ">", ">="].contains(words[1]), let bound = Double(words[2]),
            bound.isFinite
        else {
            throw TrainingError(
                .badConfig, "'rule.where' condition '\(text)' must read MEASURE < NUMBER (<, <=, >, >=)")
        }
        guard SelectionPlan.measures[words[0]] != nil else {
            throw TrainingError(.badConfig, "'rule.where' condition '\(text)' names an unknown measure '\(words[0])'")
        }
        (measure, op, self.bound) = (words[0], words[1], bound)
    }

    public func holds(_ value: Double) -> Bool {
        switch op {
        case "<": value < bound
        case "<=": value <= bound
        case ">": value > bound
        default: value >= bound
        }
    }

    public var description: String { "\(measure) \(op) \(bound.formatted(.number.grouping(.never)))" }
}
