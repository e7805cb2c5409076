import MassTensor
import MassWeights

/// A BERT-family model exported to ONNX (`torch.onnx.export` of a transformers or sentence-transformers model)
/// seen under the names the BERT loader reads. Named initializers keep their module path after any wrapper prefix
/// (`model.0.auto_model.embeddings.…` → `embeddings.…`); a MatMul's anonymous weight (`onnx::MatMul_470`, stored
/// [in, out]) takes its node's path (`/…/encoder/layer.0/attention/self/query/MatMul` →
/// `encoder.layer.0.attention.self.query.weight`) and is transposed. A float weight that maps to no BERT weight is
/// refused, naming the first node that reads it: the graph is not one this architecture knows.
struct BertONNXWeights: WeightSource {
    let model: ONNXModel
    /// BERT name → (initializer, whether it is stored [in, out]).
    let mapping: [String: (source: String, transposed: Bool)]

    var origin: String { model.origin }
    var names: [String] { mapping.keys.sorted() }

    init(_ model: ONNXModel) throws {
        self.model = model
        var readers: [String: ONNXModel.Node] = [:]
        for node in model.nodes {
            for input in node.inputs where readers[input] == nil { readers[input] = node }
        }
        var mapping: [String: (String, Bool)] = [:]
        for name in model.names {
            let t = try model.tensor(name)
            guard t.dtype.isFloat, let reader = readers[name] else { continue }  // constants, unused
            if let bert = Self.bertName(name.split(separator: ".").map(String.init)), Self.isBert(bert) {
                mapping[bert] = (name, false)
            } else if reader.opType == "MatMul", t.shape.count == 2,
                let path = Self.bertName(reader.name.split(separator: "/").dropLast().map(String.init)),
                Self.isBert(path + ".weight")
            {
                mapping[path + ".weight"] = (name, true)
            } else {
                throw WeightsError(
                    .missingTensor, file: model.origin, tensor: name,
                    "is read by node '\(reader.name)' (\(reader.opType)), which is not part of a BERT encoder as "
                        + "Mass knows it (names like /…/encoder/layer.N/attention/self/query/MatMul)")
            }
        }
        self.mapping = mapping
    }

    func tensor(_ name: String) throws -> Tensor {
        guard let (source, transposed) = mapping[name] else {
            throw WeightsError(.missingTensor, file: origin, tensor: name, "no initializer of the graph maps to it")
        }
        guard transposed else { return try model.tensor(source) }
        let t = try model.float32(source)
        let (rows, columns) = (t.shape[0], t.shape[1])
        var out = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = t.floats[r * columns + c] } }
        return try Tensor(shape: [columns, rows], values: out)
    }

    /// The components from the first `embeddings`, `encoder` or `pooler` on, joined with dots.
    static func bertName(_ components: [String]) -> String? {
        guard let start = components.firstIndex(where: { ["embeddings", "encoder", "pooler"].contains($0) }) else {
            return nil
        }
        return components[start...].joined(separator: ".")
    }

    /// Whether `name` is one of the weights `BertModel` reads.
    static func isBert(_ name: String) -> Bool {
        let parts = name.split(separator: ".").map(String.init)
        let leaf = ["weight", "bias"]
        switch parts.first {
        case "embeddings":
            return parts.count == 3 && leaf.contains(parts[2])
                && (["word_embeddings", "position_embeddings", "token_type_embeddings"].contains(parts[1])
                    && parts[2] == "weight" || parts[1] == "LayerNorm")
        case "pooler":
            return parts.count == 3 && parts[1] == "dense" && leaf.contains(parts[2])
        case "encoder":
            guard parts.count >= 5, parts[1] == "layer", Int(parts[2]) != nil, let last = parts.last,
                leaf.contains(last)
            else { return false }
            let module = parts[3..<(parts.count - 1)].joined(separator: ".")
            return [
                "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm",
            ].contains(module)
        default:
            return false
        }
    }
}
