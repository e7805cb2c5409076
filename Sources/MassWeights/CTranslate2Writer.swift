public import Foundation
public import MassTensor

/// Writes a CTranslate2 `model.bin` (binary version 6, the version CTranslate2 4.x writes and `CTranslate2Model`
/// reads): the spec name and revision, the variables sorted by name (name, rank, dimensions, dtype, byte count,
/// bytes), then the aliases. Also CTranslate2's int8 weight rule, so a model quantised here holds the same bytes
/// as one CTranslate2's converter quantises (`--quantization int8`).
public enum CTranslate2Writer {
    public struct Variable: Sendable {
        public let shape: [Int]
        public let dtype: DType
        public let bytes: Data

        public init(shape: [Int], dtype: DType, bytes: Data) {
            self.shape = shape
            self.dtype = dtype
            self.bytes = bytes
        }

        public init(shape: [Int], int8 values: [Int8]) {
            self.init(shape: shape, dtype: .int8, bytes: values.withUnsafeBytes { Data($0) })
        }

        public init(shape: [Int], float32 values: [Float]) {
            self.init(shape: shape, dtype: .float32, bytes: values.withUnsafeBytes { Data($0) })
        }
    }

    /// The dtype codes of binary version 6 (CTranslate2's DataType enum).
    static let codes: [DType: UInt8] = [.float32: 0, .int8: 1, .int16: 2, .int32: 3, .float16: 4, .bfloat16: 5]

    public static func encode(
        specName: String, revision: Int, variables: [String: Variable], aliases: [String: String]
    ) throws -> Data {
        var out = Data()
        func u8(_ v: UInt8) { out.append(v) }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { out.append(contentsOf: $0) } }
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) {
            let utf8 = Array(s.utf8)
            u16(utf8.count + 1)
            out.append(contentsOf: utf8)
            u8(0)
        }
        u32(CTranslate2Model.newestBinaryVersion)
        string(specName)
        u32(revision)
        u32(variables.count)
        for name in variables.keys.sorted() {
            let v = variables[name]!
            guard let code = codes[v.dtype], v.shape.count <= Int(UInt8.max),
                v.bytes.count == v.shape.reduce(v.dtype.size, *), v.bytes.count <= Int(UInt32.max)
            else {
                throw WeightsError(
                    .badHeader, file: "model.bin", tensor: name,
                    "cannot be written: \(v.dtype.rawValue) \(v.shape) with \(v.bytes.count) bytes")
            }
            string(name)
            u8(UInt8(v.shape.count))
            for d in v.shape { u32(d) }
            u8(code)
            u32(v.bytes.count)
            out.append(v.bytes)
        }
        u32(aliases.count)
        for alias in aliases.keys.sorted() {
            string(alias)
            string(aliases[alias]!)
        }
        return out
    }

    /// CTranslate2's int8 rule for a weight with rows = its first dimension (the rest flattened, as for conv1d):
    /// per row scale = 127 / max|w| (127 for an all-zero row), q = rint(w · scale). The file stores the scale
    /// this way round: w ≈ q / scale.
    public static func int8(_ w: [Float], rows: Int) -> (values: [Int8], scales: [Float]) {
        let columns = rows == 0 ? 0 : w.count / rows
        var values = [Int8](repeating: 0, count: w.count)
        var scales = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            let row = w[(r * columns)..<((r + 1) * columns)]
            var largest: Float = 0
            for x in row { largest = max(largest, abs(x)) }
            let scale = 127 / (largest == 0 ? 127 : largest)
            scales[r] = scale
            for (i, x) in row.enumerated() {
                values[r * columns + i] = Int8((x * scale).rounded(.toNearestOrEven))
            }
        }
        return (values, scales)
    }
}
