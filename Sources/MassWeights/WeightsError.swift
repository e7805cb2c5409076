/// An error reading a checkpoint: names the file, the tensor or key when there is one, and what is wrong.
public struct WeightsError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case fileUnreadable = "file_unreadable"
        case truncated
        case badHeader = "bad_header"
        case badOffsets = "bad_offsets"
        case unknownDType = "unknown_dtype"
        case missingTensor = "missing_tensor"
        case shapeMismatch = "shape_mismatch"
    }

    public var code: Code
    public var file: String
    /// The tensor (or header key) concerned, if any.
    public var tensor: String?
    public var message: String

    public init(_ code: Code, file: String, tensor: String? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.tensor = tensor
        self.message = message
    }

    public var description: String {
        if let tensor { return "\(file): tensor '\(tensor)': \(message)" }
        return "\(file): \(message)"
    }
}
