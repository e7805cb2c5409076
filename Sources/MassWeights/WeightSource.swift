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
}
