public import Foundation

/// Writes float32 tensors as a safetensors file (an 8-byte header length, the JSON header padded to 8 bytes,
/// then the data in order): what `SafeTensorsFile` reads, for the small files Mass itself produces (calibration
/// adapters).
public enum SafeTensorsWriter {
    public static func encode(_ tensors: [(String, [Int], [Float])], metadata: [String: String]) -> Data {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for (name, shape, values) in tensors {
            header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [offset, offset + values.count * 4]]
            offset += values.count * 4
        }
        var json = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data()
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for (_, _, values) in tensors {
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        }
        return data
    }
}
