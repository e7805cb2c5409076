public import Foundation

/// Writes safetensors files (an 8-byte header length, the JSON header padded to 8 bytes, then the data in
/// order): what `SafeTensorsFile` reads, for the files Mass itself produces (calibration adapters, compressed
/// models). float32 and int8 tensors.
public enum SafeTensorsWriter {
    public enum Values: Sendable {
        case float32([Float])
        case int8([Int8])

        var dtype: String {
            switch self {
            case .float32: "F32"
            case .int8: "I8"
            }
        }

        var byteCount: Int {
            switch self {
            case .float32(let v): v.count * 4
            case .int8(let v): v.count
            }
        }
    }

    public static func encode(_ tensors: [(String, [Int], [Float])], metadata: [String: String]) -> Data {
        encode(tensors.map { ($0.0, $0.1, Values.float32($0.2)) }, metadata: metadata)
    }

    public static func encode(_ tensors: [(String, [Int], Values)], metadata: [String: String]) -> Data {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for (name, shape, values) in tensors {
            header[name] = [
                "dtype": values.dtype, "shape": shape, "data_offsets": [offset, offset + values.byteCount],
            ]
            offset += values.byteCount
        }
        var json = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data()
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for (_, _, values) in tensors {
            switch values {
            case .float32(let v):
                // Little-endian machines (x86-64, arm64): the floats' bytes as they are.
                v.withUnsafeBytes { data.append(contentsOf: $0) }
            case .int8(let v): v.withUnsafeBytes { data.append(contentsOf: $0) }
            }
        }
        return data
    }
}
