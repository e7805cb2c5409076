import Foundation

/// Float values written as the shortest decimal that reads back as the same `Float` (Foundation would widen
/// them to `Double` and print 17 digits: a 384-d embedding would take twice the bytes).
struct FloatList {
    let values: ArraySlice<Float>
    init(_ values: ArraySlice<Float>) { self.values = values }
    init(_ values: [Float]) { self.values = values[...] }
}

/// Writes response bodies: dictionaries (keys sorted), arrays, strings, numbers, booleans, null and `FloatList`.
enum JSONWriter {
    static func bytes(_ value: Any) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, into: &out)
        return out
    }

    static func write(_ value: Any, into out: inout [UInt8]) {
        switch value {
        case let v as FloatList:
            out.append(UInt8(ascii: "["))
            var first = true
            for x in v.values {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeNumber(x, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let v as String: writeString(v, into: &out)
        case _ where type(of: value) == Bool.self:
            out.append(contentsOf: Array(((value as! Bool) ? "true" : "false").utf8))
        case let v as Int: out.append(contentsOf: Array(String(v).utf8))
        case let v as Float: writeNumber(v, into: &out)
        case let v as Double: v.isFinite ? out.append(contentsOf: Array(v.description.utf8)) : appendNull(&out)
        case let v as [String: Any]:
            out.append(UInt8(ascii: "{"))
            for (i, key) in v.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(v[key]!, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let v as [Any]:
            out.append(UInt8(ascii: "["))
            for (i, element) in v.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let v as NSNumber: out.append(contentsOf: Array(v.stringValue.utf8))
        default: appendNull(&out)  // NSNull, and nil wrapped in Any
        }
    }

    private static func appendNull(_ out: inout [UInt8]) { out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C]) }

    private static func writeNumber(_ x: Float, into out: inout [UInt8]) {
        // The shortest round-trip form, e.g. "0.012345679", "1.0" or "1e-05" (all valid JSON numbers).
        x.isFinite ? out.append(contentsOf: Array(x.description.utf8)) : appendNull(&out)
    }

    private static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
