public import Foundation
public import MassRegistry
import MassTraining
public import MassTuning

/// A `mass tune` document read and checked: the study's settings (space, objectives, sampler, pruner, budget) and
/// the training configuration every trial starts from, each trial's parameters written into it at their dotted
/// paths ("head.learning_rate" sets `head.learning_rate`).
public struct StudyPlan: Sendable {
    public let name: String
    public let settings: StudySettings
    /// The training configuration before a trial's parameters.
    public let base: JSONValue
    /// The whole document, as the registry keeps it.
    public let document: JSONValue
    /// How many of the study's trials may be queued or running at once (all workers together).
    public let parallel: Int
    /// With `confirm`: the base configuration's training seed; re-run r of a configuration has this plus r.
    public let baseSeed: Int?

    /// Reads and checks a document; `name` overrides its "name".
    public init(document: JSONValue, name: String? = nil) throws(TuningError) {
        guard case .object(var fields) = document else { throw TuningError("a tuning configuration is a JSON object") }
        guard let studyName = name ?? fields["name"]?.string, !studyName.isEmpty else {
            throw TuningError("missing 'name': the study's name")
        }
        fields["name"] = .string(studyName)
        guard let base = fields["base"], case .object = base else {
            throw TuningError("missing 'base': the training configuration the trials start from")
        }
        do {
            settings = try JSONDecoder().decode(StudySettings.self, from: Data(try document.text().utf8))
        } catch let error as DecodingError {
            throw TuningError(TrainingConfig.describe(error))
        } catch {
            throw TuningError("not a valid tuning configuration")
        }
        try settings.validate()
        var parallel = 0
        if let given = fields["parallel"] {
            guard case .int(let n) = given, (1...64).contains(n) else {
                throw TuningError("'parallel' must be a whole number from 1 to 64")
            }
            parallel = Int(n)
        }
        self.parallel = parallel == 0 ? 2 : parallel
        // What the runs report after each epoch: the pruner can watch only those.
        if let watched = settings.prunedOn, settings.pruner.map({ $0.type != "none" }) ?? false {
            let metric = base["task"]?.string == "text-embedding-distill" ? "cosine" : "accuracy"
            let reported = ["train_loss", "validation_loss", "validation_\(metric)"]
            guard (reported + reported.dropFirst().map { "best_" + $0 }).contains(watched.metric) else {
                throw TuningError(
                    "the pruner watches '\(watched.metric)', which the runs do not report after each epoch (they report \((reported + reported.dropFirst().map { "best_" + $0 }).joined(separator: ", ")))"
                )
            }
        }
        self.name = studyName
        self.base = base
        self.document = .object(fields)
        // Every parameter must land on a key the training configuration reads, and its extremes must make a
        // configuration mass train accepts.
        for (path, parameter) in settings.space.parameters {
            let probes: [TuningValue] =
                parameter.type == .categorical
                ? parameter.choices!
                : [parameter.low!, parameter.high!].map { parameter.type == .int ? .int(Int($0)) : .float($0) }
            for value in probes {
                let config = try Self.apply([path: value], to: base)
                do {
                    let decoded = try TrainingConfig.decode(Data(try config.text().utf8))
                    try decoded.validate()
                    guard decoded.register == nil else {
                        throw TuningError("'base' must not register: a study's trials are not model versions")
                    }
                    let known = try JSONValue.parse(String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self))
                    guard Self.value(at: path, in: known) != nil else {
                        throw TuningError("search space: '\(path)' is not a key mass train reads")
                    }
                } catch let error as TuningError {
                    throw error
                } catch let error as TrainingError {
                    throw TuningError(
                        "search space: '\(path)' = \(value) makes a configuration mass train refuses: \(error.message)")
                } catch {
                    throw TuningError("search space: '\(path)': \(error)")
                }
            }
        }
        baseSeed = try settings.confirm.map { confirm throws(TuningError) in try Self.seed(at: confirm.seed, in: base) }
    }

    /// The training seed at `path` of `base` as mass train reads it (its default when `base` leaves it out).
    private static func seed(at path: String, in base: JSONValue) throws(TuningError) -> Int {
        let known: JSONValue
        do {
            let decoded = try TrainingConfig.decode(Data(try base.text().utf8))
            known = try JSONValue.parse(String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self))
        } catch { throw TuningError("'base': \(error)") }
        guard case .int(let seed)? = value(at: path, in: known) else {
            throw TuningError("'confirm.seed': '\(path)' is not a whole-number key mass train reads")
        }
        return Int(seed)
    }

    /// `base` with each parameter written at its dotted path (objects created on the way).
    public static func apply(_ params: [String: TuningValue], to base: JSONValue) throws(TuningError) -> JSONValue {
        var result = base
        for (path, value) in params.sorted(by: { $0.key < $1.key }) {
            result = try set(path.split(separator: ".").map(String.init)[...], to: json(value), in: result, path: path)
        }
        return result
    }

    private static func set(_ keys: ArraySlice<String>, to value: JSONValue, in node: JSONValue, path: String)
        throws(TuningError) -> JSONValue
    {
        guard let key = keys.first else { return value }
        var fields: [String: JSONValue]
        switch node {
        case .object(let existing): fields = existing
        case .null: fields = [:]
        default: throw TuningError("search space: '\(path)' goes through a key that is not an object")
        }
        fields[key] = try set(keys.dropFirst(), to: value, in: fields[key] ?? .null, path: path)
        return .object(fields)
    }

    static func value(at path: String, in node: JSONValue) -> JSONValue? {
        path.split(separator: ".").reduce(node as JSONValue?) { node, key in node?[String(key)] }
    }

    public static func json(_ value: TuningValue) -> JSONValue {
        switch value {
        case .int(let v): .int(Int64(v))
        case .float(let v): .double(v)
        case .string(let v): .string(v)
        case .bool(let v): .bool(v)
        }
    }

    public static func tuningValue(_ value: JSONValue) -> TuningValue? {
        switch value {
        case .int(let v): .int(Int(v))
        case .double(let v): .float(v)
        case .string(let v): .string(v)
        case .bool(let v): .bool(v)
        default: nil
        }
    }

    /// What the sampler and pruner see of a stored trial: its stored values split into the objectives' and, after
    /// them, the confirmation's metric (`StudySettings.recordedMetrics`).
    public func record(_ trial: StudyTrial) -> TrialRecord {
        var params: [String: TuningValue] = [:]
        if case .object(let fields) = trial.params {
            for (key, value) in fields { params[key] = Self.tuningValue(value) }
        }
        let objectives = settings.allObjectives.count
        return TrialRecord(
            number: trial.number, params: params, state: TrialRecord.State(rawValue: trial.state) ?? .failed,
            values: trial.values.map { Array($0.prefix(objectives)) }, reports: trial.reports,
            confirmValue: trial.values.flatMap { $0.count > objectives ? $0[objectives] : nil })
    }
}
