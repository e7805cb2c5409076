import Foundation

/// The parameters a study tunes, each a distribution over values, keyed by the name the trial's configuration
/// receives (a dotted path such as "head.learning_rate"). A parameter with `when` is conditional: it exists in a
/// trial only when the named categorical parameter took one of the listed values (and is itself active).
public struct SearchSpace: Sendable, Equatable, Codable {
    public struct Parameter: Sendable, Equatable, Codable {
        public enum Kind: String, Sendable, Codable {
            case float, int, categorical
        }

        public var type: Kind
        public var low: Double?
        public var high: Double?
        /// Sampled uniformly in log space (floats and ints, low > 0).
        public var log: Bool?
        /// The grid step from `low` (floats: optional; ints: default 1).
        public var step: Double?
        public var choices: [TuningValue]?
        /// Active only when each named parameter took one of the listed values.
        public var when: [String: [TuningValue]]?

        public init(
            type: Kind, low: Double? = nil, high: Double? = nil, log: Bool? = nil, step: Double? = nil,
            choices: [TuningValue]? = nil, when: [String: [TuningValue]]? = nil
        ) {
            self.type = type
            self.low = low
            self.high = high
            self.log = log
            self.step = step
            self.choices = choices
            self.when = when
        }

        var isLog: Bool { log ?? false }

        /// The grid step of a numerical parameter: ints default to 1; nil for a continuous float.
        var gridStep: Double? { type == .int ? (step ?? 1) : step }
    }

    public var parameters: [String: Parameter]

    public init(_ parameters: [String: Parameter]) { self.parameters = parameters }

    public init(from decoder: any Decoder) throws {
        parameters = try decoder.singleValueContainer().decode([String: Parameter].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(parameters)
    }

    /// The names in the order a trial draws them: every parameter after the ones its `when` names, otherwise by
    /// name (so a trial's draws do not depend on a dictionary's order).
    public var order: [String] {
        var placed: [String] = []
        var remaining = parameters.keys.sorted()
        while !remaining.isEmpty {
            guard
                let next = remaining.firstIndex(where: { name in
                    (parameters[name]?.when ?? [:]).keys.allSatisfy { placed.contains($0) }
                })
            else { return placed + remaining }  // a cycle: validate() refuses it
            placed.append(remaining.remove(at: next))
        }
        return placed
    }

    /// Refuses a space nothing can be drawn from, naming the parameter and the key.
    public func validate() throws(TuningError) {
        guard !parameters.isEmpty else { throw TuningError("the search space is empty") }
        for name in parameters.keys.sorted() {
            let p = parameters[name]!
            func bad(_ why: String) -> TuningError { TuningError("search space: '\(name)' \(why)") }
            guard !name.isEmpty, !name.hasPrefix("."), !name.hasSuffix("."), !name.contains("..") else {
                throw bad("is not a configuration path (keys joined by dots)")
            }
            switch p.type {
            case .float, .int:
                guard let low = p.low, let high = p.high, low.isFinite, high.isFinite else {
                    throw bad("needs finite 'low' and 'high'")
                }
                guard p.choices == nil else { throw bad("is numerical: 'choices' belongs to categorical") }
                guard low < high else { throw bad("has 'low' \(low) not below 'high' \(high)") }
                if p.isLog { guard low > 0 else { throw bad("is on a log scale: 'low' must be positive") } }
                if p.type == .int {
                    guard low == low.rounded(), high == high.rounded() else {
                        throw bad("is an int: bounds must be whole")
                    }
                }
                if let step = p.step {
                    guard step > 0, step.isFinite else { throw bad("needs a positive 'step'") }
                    guard !p.isLog else { throw bad("cannot have both 'log' and 'step'") }
                    guard p.type == .float || step == step.rounded() else {
                        throw bad("is an int: 'step' must be whole")
                    }
                    guard step <= high - low else { throw bad("has a 'step' larger than its range") }
                }
            case .categorical:
                guard let choices = p.choices, !choices.isEmpty else { throw bad("needs at least one choice") }
                guard p.low == nil, p.high == nil, p.step == nil, p.log == nil else {
                    throw bad("is categorical: 'low', 'high', 'step' and 'log' belong to numbers")
                }
                guard Set(choices).count == choices.count else { throw bad("lists a choice twice") }
            }
            for (parent, values) in p.when ?? [:] {
                guard let other = parameters[parent] else { throw bad("depends on '\(parent)', not in the space") }
                guard parent != name else { throw bad("depends on itself") }
                guard other.type == .categorical, let choices = other.choices else {
                    throw bad("depends on '\(parent)', which is not categorical")
                }
                guard !values.isEmpty, values.allSatisfy(choices.contains) else {
                    throw bad("depends on values of '\(parent)' that are not among its choices")
                }
            }
        }
        let order = order
        for (index, name) in order.enumerated() {
            for parent in (parameters[name]?.when ?? [:]).keys where !order[..<index].contains(parent) {
                throw TuningError("search space: '\(name)' and '\(parent)' depend on each other")
            }
        }
    }

    /// Whether `name` is active given the values drawn before it.
    public func isActive(_ name: String, given drawn: [String: TuningValue]) -> Bool {
        guard let conditions = parameters[name]?.when else { return true }
        return conditions.allSatisfy { parent, values in drawn[parent].map(values.contains) ?? false }
    }
}

extension SearchSpace.Parameter {
    /// The value `x` (in the parameter's internal scale: log for log parameters) snapped to the grid and bounds.
    func value(internal x: Double) -> TuningValue {
        let (low, high) = (self.low!, self.high!)
        var v = isLog ? Foundation.exp(x) : x
        if let step = gridStep {
            v = low + ((v - low) / step).rounded() * step
            while v > high + step * 1e-9 { v -= step }  // a range that is not a whole number of steps
        }
        v = Swift.min(Swift.max(v, low), high)
        return type == .int ? .int(Int(v.rounded())) : .float(v)
    }

    /// The internal-scale bounds a numerical parameter is drawn in; a grid parameter's are widened by half a
    /// step each side so that its end points are as likely as the others.
    var internalBounds: (low: Double, high: Double) {
        let (low, high) = (self.low!, self.high!)
        if isLog {
            let half = type == .int ? 0.5 : 0
            return (Foundation.log(low - half), Foundation.log(high + half))
        }
        let half = (gridStep ?? 0) / 2
        return (low - half, high + half)
    }

    /// `value` in the internal scale.
    func internalValue(_ value: TuningValue) -> Double? {
        guard let number = value.number else { return nil }
        return isLog ? Foundation.log(number) : number
    }
}
