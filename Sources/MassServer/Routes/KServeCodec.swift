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
        let header = try JSONResponse.parseObject(bytes[start..<(start + jsonLength)], family: .kserve)
        return try decode(header, binary: Array(bytes[(start + jsonLength)...]))
    }

    static func decode(_ body: [String: Any], binary: [UInt8]) throws -> InferRequest {
        if let id = body["id"], !(id is String) { throw APIError.badRequest("'id' must be a string", .kserve) }
        let parameters = try dictionary(body["parameters"], "parameters")
        guard let rawInputs = body["inputs"] as? [Any], !rawInputs.isEmpty else {
            throw APIError.badRequest("'inputs' must be a non-empty array of tensors", .kserve)
        }
        var offset = 0
        var inputs: [Input] = []
        for (index, raw) in rawInputs.enumerated() {
            guard let input = raw as? [String: Any] else {
                throw APIError.badRequest("inputs[\(index)] must be an object", .kserve)
            }
            inputs.append(try decodeInput(input, index: index, binary: binary, offset: &offset))
        }
        guard offset == binary.count else {
            throw APIError.badRequest(
                "the body has \(binary.count) bytes after the JSON header but the inputs' binary_data_size add up to \(offset)",
                .kserve)
        }
        var outputs: [RequestedOutput]? = nil
        let binaryDefault = try flag(parameters["binary_data_output"], "parameters.binary_data_output") ?? false
        if let rawOutputs = body["outputs"] {
            guard let list = rawOutputs as? [Any] else {
                throw APIError.badRequest("'outputs' must be an array", .kserve)
            }
            outputs = try list.enumerated().map { index, raw in
                guard let output = raw as? [String: Any], let name = output["name"] as? String else {
                    throw APIError.badRequest("outputs[\(index)] must be an object with a string 'name'", .kserve)
                }
                let p = try dictionary(output["parameters"], "outputs[\(index)].parameters")
                let binary = try flag(p["binary_data"], "outputs[\(index)].parameters.binary_data") ?? binaryDefault
                return RequestedOutput(name: name, binary: binary)
            }
        }
        var flags: [String: Bool] = [:]
        for (key, value) in parameters {
            if let n = value as? NSNumber, isBoolean(n) { flags[key] = n.boolValue }
        }
        return InferRequest(
            id: body["id"] as? String, inputs: inputs, outputs: outputs, binaryOutputs: binaryDefault, flags: flags)
    }

    private static func decodeInput(
        _ input: [String: Any], index: Int, binary: [UInt8], offset: inout Int
    ) throws -> Input {
        guard let name = input["name"] as? String else {
            throw APIError.badRequest("inputs[\(index)] 'name' must be a string", .kserve)
        }
        guard let datatype = input["datatype"] as? String else {
            throw APIError.badRequest("input '\(name)': 'datatype' must be a string", .kserve)
        }
        guard let shape = input["shape"] as? [Any], !shape.isEmpty,
            let dims = shape.map({ ($0 as? NSNumber).flatMap { isInteger($0) ? $0.intValue : nil } }) as? [Int],
            dims.allSatisfy({ $0 >= 0 && $0 <= 1 << 30 })
        else {
            throw APIError.badRequest(
                "input '\(name)': 'shape' must be a non-empty array of non-negative integers", .kserve)
        }
        let (elements, overflow) = dims.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        guard !overflow else { throw APIError.badRequest("input '\(name)': 'shape' \(dims) is too large", .kserve) }
        let parameters = try dictionary(input["parameters"], "input '\(name)' parameters")
        let data: TensorData
        if let size = parameters["binary_data_size"] {
            guard let n = size as? NSNumber, isInteger(n), n.intValue >= 0 else {
                throw APIError.badRequest("input '\(name)': 'binary_data_size' must be a non-negative integer", .kserve)
            }
            guard input["data"] == nil else {
                throw APIError.badRequest("input '\(name)' has both 'data' and 'binary_data_size'", .kserve)
            }
            guard n.intValue <= binary.count - offset else {
                throw APIError.badRequest(
                    "input '\(name)': binary_data_size \(n.intValue) runs past the end of the body", .kserve)
            }
            let slice = binary[offset..<(offset + n.intValue)]
            offset += n.intValue
            data = try decodeBinary(slice, datatype: datatype, name: name)
        } else {
            guard let values = input["data"] as? [Any] else {
                throw APIError.badRequest("input '\(name)': 'data' must be an array", .kserve)
            }
            data = try decodeJSON(values, datatype: datatype, name: name)
        }
        guard data.count == elements else {
            throw APIError.badRequest(
                "input '\(name)': 'shape' \(dims) holds \(elements) elements but the data has \(data.count)", .kserve)
        }
        return Input(name: name, datatype: datatype, shape: dims, data: data)
    }

    private static func decodeJSON(_ values: [Any], datatype: String, name: String) throws -> TensorData {
        switch datatype {
        case "BYTES":
            var out: [[UInt8]] = []
            func flatten(_ values: [Any]) throws {
                for v in values {
                    if let s = v as? String {
                        out.append(Array(s.utf8))
                    } else if let nested = v as? [Any] {
                        try flatten(nested)
                    } else {
                        throw APIError.badRequest("input '\(name)': BYTES 'data' must hold strings", .kserve)
                    }
                }
            }
            try flatten(values)
            return .bytes(out)
        case "FP32":
            var out: [Float] = []
            func flatten(_ values: [Any]) throws {
                for v in values {
                    if let n = v as? NSNumber, !isBoolean(n) {
                        out.append(n.floatValue)
                    } else if let nested = v as? [Any] {
                        try flatten(nested)
                    } else {
                        throw APIError.badRequest("input '\(name)': FP32 'data' must hold numbers", .kserve)
                    }
                }
            }
            try flatten(values)
            return .fp32(out)
        default:
            throw APIError.badRequest("input '\(name)': datatype '\(datatype)' is not supported", .kserve)
        }
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

    private static func dictionary(_ value: Any?, _ what: String) throws -> [String: Any] {
        guard let value else { return [:] }
        guard let d = value as? [String: Any] else { throw APIError.badRequest("'\(what)' must be an object", .kserve) }
        return d
    }

    private static func flag(_ value: Any?, _ what: String) throws -> Bool? {
        guard let value else { return nil }
        guard let n = value as? NSNumber, isBoolean(n) else {
            throw APIError.badRequest("'\(what)' must be true or false", .kserve)
        }
        return n.boolValue
    }

    /// JSONSerialization gives booleans as NSNumber of objCType "c".
    private static func isBoolean(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    private static func isInteger(_ n: NSNumber) -> Bool {
        let type = String(cString: n.objCType)
        return type != "c" && type != "d" && type != "f"
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
