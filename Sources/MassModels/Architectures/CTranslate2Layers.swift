import MassTensor
import MassWeights

/// The layer shapes CTranslate2 stores for Transformer models: `<prefix>/weight` + `<prefix>/bias` for a dense
/// layer, `<prefix>/gamma` + `<prefix>/beta` for a LayerNorm (widened to fp32). A dense weight may be int8 with
/// its `_scale` (a CTranslate2 int8 model): served in int8 as stored whatever the precision asked (as
/// faster-whisper's default compute type keeps the file's), a float weight is quantised when `precision` is int8.
extension CTranslate2Model {
    func linear(_ prefix: String, precision: Linear.Precision = .float32) throws -> Linear {
        try linear(weight: "\(prefix)/weight", bias: float32("\(prefix)/bias"), precision: precision)
    }

    func linear(weight name: String, shape: [Int]? = nil, bias: Tensor?, precision: Linear.Precision) throws
        -> Linear
    {
        let t = try tensor(name)
        if t.dtype == .int8, t.shape.count == 2, shape == nil || shape == t.shape {
            let q = UnsafeBufferPointer(start: t.storage.pointer.assumingMemoryBound(to: Int8.self), count: t.count)
            // Mass's kernels take |q| ≤ 127 (CTranslate2 writes no -128); another writer's -128 is requantised.
            // Dequantised weights then take the int8 path too.
            if !q.contains(-128) {
                let scales = try rowScales(of: name, rows: t.shape[0])
                let matrix = QuantizedMatrix(
                    quantized: q.baseAddress!, scales: scales.map { 1 / $0 }, n: t.shape[0], k: t.shape[1])
                return try Linear(quantized: matrix, bias: bias)
            }
        }
        return try Linear(
            weight: dequantized(name, shape: shape), bias: bias, precision: t.dtype == .int8 ? .int8 : precision)
    }

    func layerNorm(_ prefix: String) throws -> (gamma: Tensor, beta: Tensor) {
        (try float32("\(prefix)/gamma"), try float32("\(prefix)/beta"))
    }
}
