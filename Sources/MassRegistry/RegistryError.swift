/// What the registry throws. Messages name the model, version, alias or file, never a server path outside the
/// registry's own store; `detail` keeps the driver's error for the log.
public struct RegistryError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// A model, version or alias that does not exist.
        case notFound
        /// A request that contradicts the registry's state (a duplicate name, deleting what serves).
        case conflict
        /// A request that is malformed (an empty name, an unknown task).
        case invalid
        /// A stored file whose bytes no longer hash to what was registered.
        case integrity
        /// The database cannot be reached or refused the operation.
        case unavailable
    }

    public let code: Code
    public let message: String
    public let detail: String?

    public init(_ code: Code, _ message: String, detail: String? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
    }

    public var description: String { message }
}
