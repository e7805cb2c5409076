import Foundation
import MassTensor
import MassWeights

/// A linear map from one embedding space to another, `y = x W + b`, then scaled to unit length: what
/// calibration fits so that a local model's vectors land where a service's would. Stored beside the model's
/// files as `adapter.safetensors` (`weight` [in, out] and, for an affine map, `bias` [out], float32) with its kind
/// in the metadata.
public struct LinearAdapter: Sendable, Equatable {
    /// "procrustes" (orthogonal: keeps the local model's geometry) or "affine" (least squares with a bias).
    public let kind: String
    public let inputDimension: Int
    public let outputDimension: Int
    /// Row-major `[inputDimension, outputDimension]`.
    public let weight: [Float]
    public let bias: [Float]?

    public init(kind: String, inputDimension: Int, outputDimension: Int, weight: [Float], bias: [Float]?) {
        precondition(
            weight.count == inputDimension * outputDimension && (bias?.count ?? outputDimension) == outputDimension)
        self.kind = kind
        self.inputDimension = inputDimension
        self.outputDimension = outputDimension
        self.weight = weight
        self.bias = bias
    }

    /// Maps vectors (each `inputDimension` long) and scales each result to unit length.
    public func apply(_ vectors: [[Float]]) throws -> [[Float]] {
        guard !vectors.isEmpty else { return [] }
        guard vectors.allSatisfy({ $0.count == inputDimension }) else {
            throw RuntimeError(
                .modelFailed, "the adapter takes \(inputDimension)-value vectors; the model gave \(vectors[0].count)")
        }
        try BLAS.load()
        let n = vectors.count
        let flat = vectors.flatMap { $0 }
        var out = [Float](repeating: 0, count: n * outputDimension)
        if let bias {
            for i in 0..<n { out.replaceSubrange((i * outputDimension)..<((i + 1) * outputDimension), with: bias) }
        }
        flat.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { y in
                    BLAS.sgemm(
                        transA: false, transB: false, m: n, n: outputDimension, k: inputDimension, alpha: 1,
                        a: x.baseAddress!, lda: inputDimension, b: w.baseAddress!, ldb: outputDimension,
                        beta: bias == nil ? 0 : 1, c: y.baseAddress!, ldc: outputDimension)
                }
            }
        }
        return (0..<n).map { Self.unit(Array(out[($0 * outputDimension)..<(($0 + 1) * outputDimension)])) }
    }

    static func unit(_ v: [Float]) -> [Float] {
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? v.map { $0 / norm } : v
    }

    // MARK: File

    public static let fileName = "adapter.safetensors"

    /// The safetensors bytes of the adapter.
    public func encoded() -> Data {
        var tensors: [(String, [Int], [Float])] = [("weight", [inputDimension, outputDimension], weight)]
        if let bias { tensors.append(("bias", [outputDimension], bias)) }
        return SafeTensorsWriter.encode(tensors, metadata: ["kind": kind])
    }

    /// Reads an adapter file; `file` names it in errors.
    public static func load(_ url: URL, file: String) throws -> LinearAdapter {
        let weights: SafeTensorsFile
        do {
            weights = try SafeTensorsFile(path: url.path)
        } catch {
            throw RuntimeError(.badConfig, "\(file): not a readable safetensors file (\(error))")
        }
        guard let weight = weights.entries["weight"], weight.shape.count == 2 else {
            throw RuntimeError(.badConfig, "\(file): needs a 2-D tensor 'weight' [in, out]")
        }
        let w = try weights.tensor("weight").toFloat32().array
        var bias: [Float]?
        if let b = weights.entries["bias"] {
            guard b.shape == [weight.shape[1]] else {
                throw RuntimeError(.badConfig, "\(file): 'bias' must be [\(weight.shape[1])]")
            }
            bias = try weights.tensor("bias").toFloat32().array
        }
        return LinearAdapter(
            kind: weights.metadata["kind"] ?? (bias == nil ? "procrustes" : "affine"), inputDimension: weight.shape[0],
            outputDimension: weight.shape[1], weight: w, bias: bias)
    }
}
