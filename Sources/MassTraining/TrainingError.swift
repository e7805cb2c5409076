/// An error in training: a state or checkpoint that does not fit, a loss that diverged, a bad setting. Says what
/// and where; the server maps the code to HTTP in one place.
public struct TrainingError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// A checkpoint or optimizer state that does not belong to this model.
        case badState = "bad_state"
        /// The loss became NaN or infinite.
        case diverged
        case badConfig = "bad_config"
        /// A checkpoint or output file could not be written.
        case io
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
