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
        try tensor(name).dtype == .int8
            ? widened(int8: name, shape: shape, dividing: false) : float32(name, shape: shape)
    }

    /// An int8 weight times (or, `dividing`, over) its per-row scales.
    func widened(int8 name: String, shape: [Int]?, dividing: Bool) throws -> Tensor {
        let t = try tensor(name)
        if let shape, t.shape != shape {
            throw WeightsError(
                .shapeMismatch, file: origin, tensor: name, "has shape \(t.shape), the model needs \(shape)")
        }
        let scales = try rowScales(of: name, rows: t.shape.first ?? 0).map { dividing ? 1 / $0 : $0 }
        let columns = t.count / max(1, scales.count)
        let q = t.storage.pointer.assumingMemoryBound(to: Int8.self)
        var out = [Float](repeating: 0, count: t.count)
        for r in 0..<scales.count {
            for i in (r * columns)..<((r + 1) * columns) { out[i] = Float(q[i]) * scales[r] }
        }
        return try Tensor(shape: t.shape, values: out)
    }

    /// The scales of an int8 weight, `NAME_scale`: float32 [rows], each finite and positive.
    public func rowScales(of name: String, rows: Int) throws -> [Float] {
        let scales: [Float]
        do {
            scales = try float32(name + "_scale", shape: [rows]).array
        } catch let error as WeightsError where error.code == .missingTensor {
            throw WeightsError(.missingTensor, file: origin, tensor: name, "is int8 but '\(name)_scale' is missing")
        }
        guard scales.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw WeightsError(.badHeader, file: origin, tensor: name + "_scale", "holds a scale that is not positive")
        }
        return scales
    }
}
