/// A study or search space that cannot run, naming what is wrong ("'space.lr.low' must be below 'high'").
public struct TuningError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
