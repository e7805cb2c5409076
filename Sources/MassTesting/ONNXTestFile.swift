import Foundation

/// Writes small ONNX files (protobuf wire format) for tests of the ONNX weight reader: a graph of nodes and
/// float32 initializers, as raw_data or as float_data.
public struct ONNXTestFile {
    public struct Node {
        public let name: String, opType: String, inputs: [String], outputs: [String]
        public init(_ name: String, _ opType: String, inputs: [String], outputs: [String] = []) {
            (self.name, self.opType, self.inputs, self.outputs) = (name, opType, inputs, outputs)
        }
    }

    public var nodes: [Node] = []
    /// name, dims, values, whether stored as float_data (else raw_data), whether marked external.
    public var initializers: [(String, [Int], [Float], Bool, Bool)] = []

    public init() {}

    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v
        var out: [UInt8] = []
        repeat {
            out.append(UInt8(v & 0x7F) | (v >= 0x80 ? 0x80 : 0))
            v >>= 7
        } while v > 0
        return out
    }

    static func field(_ number: Int, _ bytes: [UInt8]) -> [UInt8] {
        varint(UInt64(number << 3 | 2)) + varint(UInt64(bytes.count)) + bytes
    }

    static func field(_ number: Int, varint value: UInt64) -> [UInt8] { varint(UInt64(number << 3)) + varint(value) }

    static func floats(_ v: [Float]) -> [UInt8] {
        v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }
    }

    public var bytes: [UInt8] {
        var graph: [UInt8] = []
        for n in nodes {
            var node: [UInt8] = []
            for i in n.inputs { node += Self.field(1, Array(i.utf8)) }
            for o in n.outputs { node += Self.field(2, Array(o.utf8)) }
            node += Self.field(3, Array(n.name.utf8)) + Self.field(4, Array(n.opType.utf8))
            graph += Self.field(1, node)
        }
        for (name, dims, values, typed, external) in initializers {
            var t: [UInt8] = []
            for d in dims { t += Self.field(1, varint: UInt64(d)) }
            t += Self.field(2, varint: 1)
            t += typed ? Self.field(4, Self.floats(values)) : Self.field(9, Self.floats(values))
            t += Self.field(8, Array(name.utf8))
            if external { t += Self.field(14, varint: 1) }
            graph += Self.field(5, t)
        }
        // ir_version, producer_name, graph.
        return Self.field(1, varint: 8) + Self.field(2, Array("mass-tests".utf8)) + Self.field(7, graph)
    }
}
