/// An error of the serving runtime: a bad model repository or `mass.json`, an unknown or unavailable model, a
/// request the model cannot take, a full queue, a model that failed to answer.
///
/// `message` is what a client may read: it never holds a server file-system path (the model manager writes paths
/// relative to the repository). `detail`, when set, is for the log only (the underlying error, absolute paths).
/// `MassServer` maps codes to HTTP statuses in one place.
public struct RuntimeError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case badConfig = "bad_config"
        case modelNotFound = "model_not_found"
        case versionNotFound = "version_not_found"
        case modelLoading = "model_loading"
        case modelUnavailable = "model_unavailable"
        case loadFailed = "load_failed"
        case conflict
        case wrongTask = "wrong_task"
        case invalidInput = "invalid_input"
        case inputTooLong = "input_too_long"
        case queueFull = "queue_full"
        case deadlineExceeded = "deadline_exceeded"
        case modelFailed = "model_failed"
        /// A service-type model's provider answered wrongly or not at all (502).
        case providerFailed = "provider_failed"
        /// A service-type model's provider is not being called: breaker open, no key, no free slot (503).
        case providerUnavailable = "provider_unavailable"
    }

    public var code: Code
    public var message: String
    /// For the log: the cause in full. Never sent to a client.
    public var detail: String?
    /// The request field the error is about, when there is one (OpenAI's `param`).
    public var param: String?

    public init(_ code: Code, _ message: String, detail: String? = nil, param: String? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
        self.param = param
    }

    public var description: String { detail.map { "\(message) (\($0))" } ?? message }
}
