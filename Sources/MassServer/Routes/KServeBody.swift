import Foundation

/// The JSON of a KServe v2 `infer` request (or the JSON header of a binary one), as a DTO: decoding errors name
/// the field (`'inputs[0].shape[1]' must be an integer`). What JSON cannot state (shape against data, the binary
/// tail) is checked by `InferRequest.make`.
struct InferBody: Decodable {
    /// A `parameters` value: KServe allows booleans, integers and strings; other values are kept as `other` and
    /// ignored unless a known key needs them.
    enum Parameter: Decodable, Equatable {
        case bool(Bool)
        case integer(Int)
        case number(Double)
        case string(String)
        case other

        init(from decoder: any Decoder) throws {
            let value = try decoder.singleValueContainer()
            if let b = try? value.decode(Bool.self) {
                self = .bool(b)
            } else if let i = try? value.decode(Int.self) {
                self = .integer(i)
            } else if let d = try? value.decode(Double.self) {
                self = .number(d)
            } else if let s = try? value.decode(String.self) {
                self = .string(s)
            } else {
                self = .other
            }
        }
    }

    struct Input: Decodable {
        let name: String
        let datatype: String
        let shape: [Int]
        let parameters: [String: Parameter]?
        /// The JSON `data`, flattened (nested arrays are row-major, as the protocol allows).
        let data: InferRequest.TensorData?

        enum CodingKeys: String, CodingKey { case name, datatype, shape, parameters, data }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            datatype = try c.decode(String.self, forKey: .datatype)
            // Read as numbers and checked here: Foundation's decoder reports 1.5 for an Int as invalid JSON.
            let dims = try c.decode([Double].self, forKey: .shape)
            if let bad = dims.firstIndex(where: { $0.rounded() != $0 || abs($0) > 1e15 }) {
                throw DecodingError.typeMismatch(
                    Int.self,
                    .init(
                        codingPath: c.codingPath + [CodingKeys.shape, Index(bad)], debugDescription: "not an integer"))
            }
            shape = dims.map { Int($0) }
            parameters = try c.decodeIfPresent([String: Parameter].self, forKey: .parameters)
            guard c.contains(.data), try !c.decodeNil(forKey: .data) else {
                data = nil
                return
            }
            var list = try c.nestedUnkeyedContainer(forKey: .data)
            switch datatype {
            case "BYTES":
                var texts: [String] = []
                try Self.flatten(&list, into: &texts)
                data = .bytes(texts.map { Array($0.utf8) })
            case "FP32":
                var values: [Float] = []
                values.reserveCapacity(list.count ?? 0)
                try Self.flatten(&list, into: &values)
                data = .fp32(values)
            default:
                throw DecodingError.dataCorruptedError(
                    forKey: .datatype, in: c,
                    debugDescription: "datatype '\(datatype)' is not supported (FP32, BYTES)")
            }
        }

        /// Appends the elements of a possibly nested array; an element of another type is an error at its index.
        private static func flatten<T: Decodable>(_ list: inout any UnkeyedDecodingContainer, into out: inout [T])
            throws
        {
            while !list.isAtEnd {
                // A failed decode leaves the container where it was, so a nested array can be read next.
                if let value = try? list.decode(T.self) {
                    out.append(value)
                    continue
                }
                let path = list.codingPath + [Index(list.currentIndex)]
                guard var nested = try? list.nestedUnkeyedContainer() else {
                    throw DecodingError.typeMismatch(
                        T.self, .init(codingPath: path, debugDescription: "an element of 'data' has the wrong type"))
                }
                try flatten(&nested, into: &out)
            }
        }
    }

    struct Output: Decodable {
        let name: String
        let parameters: [String: Parameter]?
    }

    let id: String?
    let parameters: [String: Parameter]?
    let inputs: [Input]
    let outputs: [Output]?
}

/// An array position in a coding path.
private struct Index: CodingKey {
    let intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}
