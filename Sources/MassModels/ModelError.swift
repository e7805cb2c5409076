/// An error building or running a model: names the file and key (or tensor) and says what to fix.
public struct ModelError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case missingFile = "missing_file"
        case badConfig = "bad_config"
        case unsupported
        case invalidInput = "invalid_input"
        /// An input longer than the model takes, where the caller asked not to truncate.
        case inputTooLong = "input_too_long"
    }

    public var code: Code
    public var message: String
    /// The underlying error (a `WeightsError`, `TokenizerError`, ...), if any.
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
