public import MassTensor

/// A checkpoint seen as a map from tensor names to tensors. Tensors keep their stored dtype;
/// `float32(_:)` widens.
public protocol WeightSource: Sendable {
    /// Where the weights come from (a file path), for error messages.
    var origin: String { get }
    /// Every tensor name, sorted.
    var names: [String] { get }
    /// The tensor as stored. Throws `WeightsError.missingTensor` for an unknown name.
    func tensor(_ name: String) throws -> Tensor
}

extension WeightSource {
    /// The tensor as float32, checked against `shape` when one is given.
    public func float32(_ name: String, shape: [Int]? = nil) throws -> Tensor {
        let t = try tensor(name)
        if let shape, t.shape != shape {
            throw WeightsError(
                .shapeMismatch, file: origin, tensor: name, "has shape \(t.shape), the model needs \(shape)")
        }
        do {
            return try t.toFloat32()
        } catch {
            throw WeightsError(.unknownDType, file: origin, tensor: name, "\(error)")
        }
    }

    /// The tensor as float32 whether stored as a float or as int8 with `NAME_scale` (float32, one per row of the
    /// first dimension: w = q · scale, as `mass compress` writes safetensors; CTranslate2's files divide instead,
    /// `CTranslate2Model.dequantized`).
    public func float32(dequantizing name: String, shape: [Int]? = nil) throws -> Tensor {
        let t = try tensor(name)
        guard t.dtype == .int8 else { return try float32(name, shape: shape) }
        if let shape, t.shape != shape {
            throw WeightsError(
                .shapeMismatch, file: origin, tensor: name, "has shape \(t.shape), the model needs \(shape)")
        }
        let rows = t.shape.first ?? 0
        let scales = try float32(name + "_scale", shape: [rows]).array
        guard scales.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw WeightsError(.badHeader, file: origin, tensor: name + "_scale", "holds a scale that is not positive")
        }
        let columns = t.count / max(1, rows)
        let q = t.storage.pointer.assumingMemoryBound(to: Int8.self)
        var out = [Float](repeating: 0, count: t.count)
        for r in 0..<rows {
            for i in (r * columns)..<((r + 1) * columns) { out[i] = Float(q[i]) * scales[r] }
        }
        return try Tensor(shape: t.shape, values: out)
    }
}
