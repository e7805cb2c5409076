/// A parameter's value in a trial: a number (float or integer), a string or a boolean, as the JSON of a search
/// space and a training configuration spell it.
public enum TuningValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case string(String)
    case bool(Bool)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let value = try? c.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? c.decode(Int.self) {
            self = .int(value)
        } else if let value = try? c.decode(Double.self) {
            self = .float(value)
        } else if let value = try? c.decode(String.self) {
            self = .string(value)
        } else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "a value must be a number, a string or a boolean")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let value): try c.encode(value)
        case .float(let value): try c.encode(value)
        case .string(let value): try c.encode(value)
        case .bool(let value): try c.encode(value)
        }
    }

    /// The value as a number (integers and floats); nil for strings and booleans.
    public var number: Double? {
        switch self {
        case .int(let value): Double(value)
        case .float(let value): value
        default: nil
        }
    }

    public var description: String {
        switch self {
        case .int(let value): String(value)
        case .float(let value): "\(value)"
        case .string(let value): value
        case .bool(let value): String(value)
        }
    }
}
