public import Foundation
public import MassTensor
import MassWeights

/// A classification head `mass train` trained on a frozen model's features (`head.safetensors`): `out.weight` and
/// `out.bias`, with `dense.*` before them for a hidden ReLU layer; metadata `mass.labels` (a JSON array of names
/// in logit order) and whatever the task records about its input (`mass.head_input`, `mass.max_length`).
public struct TrainedHead: Sendable {
    public let layers: [Linear]
    public let labels: [String]
    public let metadata: [String: String]
    public var outFeatures: Int { layers.last?.outFeatures ?? 0 }

    /// The label names of the head in `url`, in logit order, without reading its weights.
    public static func labels(contentsOf url: URL) throws -> [String] {
        let metadata: [String: String]
        do { metadata = try SafeTensorsFile(path: url.path).metadata } catch let error as WeightsError {
            throw ModelError(.badConfig, error.description, cause: error)
        }
        return try labels(metadata, url)
    }

    /// `mass.labels` of a head's metadata.
    static func labels(_ metadata: [String: String], _ url: URL) throws -> [String] {
        guard let text = metadata["mass.labels"],
            let labels = try? JSONDecoder().decode([String].self, from: Data(text.utf8)), !labels.isEmpty
        else { throw ModelError(.badConfig, "\(url.path): metadata 'mass.labels' (a JSON array of names) is missing") }
        return labels
    }

    /// Reads `url`; the first layer must take `inputWidth` values.
    public init(contentsOf url: URL, inputWidth: Int) throws {
        do {
            let weights = try SafeTensorsFile(path: url.path)
            metadata = weights.metadata
            let labels = try Self.labels(metadata, url)
            var layers: [Linear] = []
            var width = inputWidth
            for name in ["dense", "out"] where weights.names.contains("\(name).weight") || name == "out" {
                let rows = try weights.tensor("\(name).weight").shape.first ?? 0
                layers.append(
                    try Linear(
                        weight: weights.float32("\(name).weight", shape: [rows, width]),
                        bias: weights.float32("\(name).bias", shape: [rows])))
                width = rows
            }
            guard width == labels.count else {
                throw ModelError(.badConfig, "\(url.path): the head has \(width) outputs and \(labels.count) labels")
            }
            self.layers = layers
            self.labels = labels
        } catch let error as WeightsError {
            throw ModelError(.badConfig, error.description, cause: error)
        } catch let error as TensorError {
            throw ModelError(.badConfig, "\(url.path): \(error)")
        }
    }

    /// The logits of one input vector, on the calling thread.
    public func logits(_ input: [Float]) -> [Float] {
        [Float](unsafeUninitializedCapacity: outFeatures) { buffer, count in
            input.withUnsafeBufferPointer {
                apply($0.baseAddress!, rows: 1, pool: Self.singleThread, into: buffer.baseAddress!)
            }
            count = outFeatures
        }
    }

    static let singleThread = ComputePool(threads: 1)

    /// The logits [rows, labels] of `rows` input vectors, ReLU between the layers.
    public func apply(
        _ input: UnsafePointer<Float>, rows: Int, pool: ComputePool, into out: UnsafeMutablePointer<Float>
    ) {
        var current = input
        var scratch: UnsafeMutablePointer<Float>?
        defer { scratch?.deallocate() }
        for (index, layer) in layers.enumerated() {
            guard index < layers.count - 1 else {
                pool.apply(layer, current, rows: rows, into: out)
                return
            }
            let next = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows * layer.outFeatures))
            pool.apply(layer, current, rows: rows, into: next)
            for i in 0..<(rows * layer.outFeatures) { next[i] = max(next[i], 0) }
            scratch?.deallocate()
            scratch = next
            current = UnsafePointer(next)
        }
    }
}
