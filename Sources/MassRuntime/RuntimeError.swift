/// An error of the serving runtime: a bad model repository or `mass.json`, an unknown model, a full queue, a
/// model that failed to answer.
/// `MassServer` maps codes to HTTP statuses in one place.
public struct RuntimeError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case badConfig = "bad_config"
        case modelNotFound = "model_not_found"
        case queueFull = "queue_full"
        case deadlineExceeded = "deadline_exceeded"
        case modelFailed = "model_failed"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
