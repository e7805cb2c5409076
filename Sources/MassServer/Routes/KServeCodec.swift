import Foundation
import HTTPTypes
import Hummingbird
import MassRuntime

/// A KServe v2 `infer` request, from a JSON body or from the binary tensor data extension (a JSON header of
/// `Inference-Header-Content-Length` bytes followed by the raw tensors of the inputs that declare
/// `parameters.binary_data_size`, in input order).
struct InferRequest {
    enum TensorData {
        case bytes([[UInt8]])
        case fp32([Float])

        var count: Int {
            switch self {
            case .bytes(let v): v.count
            case .fp32(let v): v.count
            }
        }
    }

    struct Input {
        let name: String
        let datatype: String
        let shape: [Int]
        let data: TensorData
    }

    /// An output the client asked for, and whether it wants it as binary data.
    struct RequestedOutput {
        let name: String
        let binary: Bool
    }

    static let headerLengthField = HTTPField.Name("Inference-Header-Content-Length")!

    let id: String?
    let inputs: [Input]
    /// nil: every output, in JSON unless `binaryOutputs`.
    let outputs: [RequestedOutput]?
    /// `parameters.binary_data_output`: the default for outputs not listed.
    let binaryOutputs: Bool
    /// The request's boolean `parameters` (e.g. `truncate`).
    var flags: [String: Bool] = [:]

    static func read(_ request: Request, limit: Int) async throws -> InferRequest {
        let headerLength = request.headers[headerLengthField]
        if headerLength == nil, let type = request.headers[.contentType],
            !type.lowercased().hasPrefix("application/json")
        {
            throw APIError(
                status: .unsupportedMediaType,
                message: "Content-Type must be application/json, not \(type) (or send Inference-Header-Content-Length)",
                family: .kserve)
        }
        let buffer = try await JSONResponse.collect(request, limit: limit, family: .kserve)
        let bytes = buffer.readableBytesView
        var jsonLength = bytes.count
        if let headerLength {
            guard let n = Int(headerLength.trimmingCharacters(in: CharacterSet.whitespaces)), n > 0, n <= bytes.count
            else {
                throw APIError.badRequest(
                    "Inference-Header-Content-Length '\(headerLength)' must be a positive integer no larger than the body (\(bytes.count) bytes)",
                    .kserve)
            }
            jsonLength = n
        }
        let start = bytes.startIndex
        let header = try JSONBody.decode(InferBody.self, from: Data(bytes[start..<(start + jsonLength)]))
        return try make(header, binary: Array(bytes[(start + jsonLength)...]))
    }

    /// Checks the decoded body against the rules the DTO cannot state (shapes, sizes, the binary tail).
    static func make(_ body: InferBody, binary: [UInt8]) throws -> InferRequest {
        guard !body.inputs.isEmpty else {
            throw APIError.badRequest("'inputs' must be a non-empty array of tensors", .kserve)
        }
        var offset = 0
        let inputs = try body.inputs.map { try input($0, binary: binary, offset: &offset) }
        guard offset == binary.count else {
            throw APIError.badRequest(
                "the body has \(binary.count) bytes after the JSON header but the inputs' binary_data_size add up to \(offset)",
                .kserve)
        }
        let parameters = body.parameters ?? [:]
        let binaryDefault = try flag(parameters["binary_data_output"], "parameters.binary_data_output") ?? false
        let outputs = try body.outputs?.enumerated().map { index, output in
            let binary = try flag(output.parameters?["binary_data"], "outputs[\(index)].parameters.binary_data")
            return RequestedOutput(name: output.name, binary: binary ?? binaryDefault)
        }
        return InferRequest(
            id: body.id, inputs: inputs, outputs: outputs, binaryOutputs: binaryDefault,
            flags: parameters.compactMapValues { if case .bool(let b) = $0 { b } else { nil } })
    }

    private static func input(_ input: InferBody.Input, binary: [UInt8], offset: inout Int) throws -> Input {
        let name = input.name
        let dims = input.shape
        guard !dims.isEmpty, dims.allSatisfy({ $0 >= 0 && $0 <= 1 << 30 }) else {
            throw APIError.badRequest(
                "input '\(name)': 'shape' must be a non-empty array of non-negative integers", .kserve)
        }
        let (elements, overflow) = dims.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        guard !overflow else { throw APIError.badRequest("input '\(name)': 'shape' \(dims) is too large", .kserve) }
        let data: TensorData
        if let size = input.parameters?["binary_data_size"] {
            guard case .integer(let n) = size, n >= 0 else {
                throw APIError.badRequest("input '\(name)': 'binary_data_size' must be a non-negative integer", .kserve)
            }
            guard input.data == nil else {
                throw APIError.badRequest("input '\(name)' has both 'data' and 'binary_data_size'", .kserve)
            }
            guard n <= binary.count - offset else {
                throw APIError.badRequest(
                    "input '\(name)': binary_data_size \(n) runs past the end of the body", .kserve)
            }
            let slice = binary[offset..<(offset + n)]
            offset += n
            data = try decodeBinary(slice, datatype: input.datatype, name: name)
        } else {
            guard let values = input.data else {
                throw APIError.badRequest("input '\(name)': 'data' must be an array", .kserve)
            }
            data = values
        }
        guard data.count == elements else {
            throw APIError.badRequest(
                "input '\(name)': 'shape' \(dims) holds \(elements) elements but the data has \(data.count)", .kserve)
        }
        return Input(name: name, datatype: input.datatype, shape: dims, data: data)
    }

    /// BYTES elements are a 4-byte little-endian length followed by the bytes; FP32 is little-endian floats.
    private static func decodeBinary(_ bytes: ArraySlice<UInt8>, datatype: String, name: String) throws -> TensorData {
        switch datatype {
        case "BYTES":
            var out: [[UInt8]] = []
            var i = bytes.startIndex
            while i < bytes.endIndex {
                guard bytes.endIndex - i >= 4 else {
                    throw APIError.badRequest("input '\(name)': BYTES binary data ends inside a length prefix", .kserve)
                }
                let n = Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24
                i += 4
                guard n <= bytes.endIndex - i else {
                    throw APIError.badRequest(
                        "input '\(name)': BYTES element \(out.count) declares \(n) bytes but \(bytes.endIndex - i) remain",
                        .kserve)
                }
                out.append(Array(bytes[i..<(i + n)]))
                i += n
            }
            return .bytes(out)
        case "FP32":
            guard bytes.count % 4 == 0 else {
                throw APIError.badRequest(
                    "input '\(name)': FP32 binary data of \(bytes.count) bytes is not a whole number of floats", .kserve
                )
            }
            var out = [Float](repeating: 0, count: bytes.count / 4)
            out.withUnsafeMutableBytes { $0.copyBytes(from: bytes) }
            return .fp32(out.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) })
        default:
            throw APIError.badRequest("input '\(name)': datatype '\(datatype)' is not supported", .kserve)
        }
    }

    private static func flag(_ value: InferBody.Parameter?, _ what: String) throws -> Bool? {
        guard let value else { return nil }
        guard case .bool(let b) = value else { throw APIError.badRequest("'\(what)' must be true or false", .kserve) }
        return b
    }
}

/// A KServe v2 `infer` response: JSON, or JSON header plus binary outputs when the client asked for them.
struct InferResponse {
    struct Output {
        let name: String
        let shape: [Int]
        let values: [Float]  // FP32
        /// A BYTES output (strings) instead of FP32 values.
        var texts: [String]? = nil

        init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }

        init(name: String, shape: [Int], texts: [String]) {
            self.name = name
            self.shape = shape
            self.values = []
            self.texts = texts
        }
    }

    let modelName: String
    let modelVersion: String
    let id: String?
    let outputs: [Output]

    init(modelName: String, modelVersion: String, id: String?, outputs: [Output]) {
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.id = id
        self.outputs = outputs
    }

    init(model: any ServedModel, id: String?, outputs: [Output]) {
        self.init(
            modelName: model.identity.name, modelVersion: String(model.identity.version), id: id, outputs: outputs)
    }

    func encode(for request: InferRequest) throws -> Response {
        let selected: [(Output, Bool)]
        if let wanted = request.outputs {
            selected = try wanted.map { w in
                guard let output = outputs.first(where: { $0.name == w.name }) else {
                    throw APIError.badRequest(
                        "unknown output '\(w.name)'; this model has \(outputs.map { "'\($0.name)'" }.joined(separator: ", "))",
                        .kserve)
                }
                return (output, w.binary)
            }
        } else {
            selected = outputs.map { ($0, request.binaryOutputs) }
        }
        var binary: [UInt8] = []
        let described: [[String: Any]] = selected.map { output, asBinary in
            var d: [String: Any] = [
                "name": output.name, "datatype": output.texts == nil ? "FP32" : "BYTES", "shape": output.shape,
            ]
            if asBinary {
                let start = binary.count
                if let texts = output.texts {
                    for text in texts {
                        withUnsafeBytes(of: UInt32(text.utf8.count).littleEndian) { binary.append(contentsOf: $0) }
                        binary.append(contentsOf: Array(text.utf8))
                    }
                } else {
                    output.values.withUnsafeBytes { binary.append(contentsOf: $0) }  // little-endian host
                }
                d["parameters"] = ["binary_data_size": binary.count - start]
            } else if let texts = output.texts {
                d["data"] = texts
            } else {
                d["data"] = FloatList(output.values)
            }
            return d
        }
        var header: [String: Any] = ["model_name": modelName, "model_version": modelVersion, "outputs": described]
        if let id { header["id"] = id }
        guard selected.contains(where: { $0.1 }) else { return JSONResponse.make(header) }
        let json = JSONWriter.bytes(header)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(json.count + binary.count)
        buffer.writeBytes(json)
        buffer.writeBytes(binary)
        return Response(
            status: .ok,
            headers: [.contentType: "application/octet-stream", InferRequest.headerLengthField: String(json.count)],
            body: .init(byteBuffer: buffer))
    }
}
