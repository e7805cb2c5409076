/// An error loading or running a tokenizer: names the file and what is not supported or malformed.
public struct TokenizerError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case fileUnreadable = "file_unreadable"
        case malformed
        case unsupported
    }

    public var code: Code
    public var file: String
    public var message: String

    public init(_ code: Code, file: String, _ message: String) {
        self.code = code
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
