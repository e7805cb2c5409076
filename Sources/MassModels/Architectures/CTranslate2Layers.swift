import MassTensor
import MassWeights

/// The layer shapes CTranslate2 stores for Transformer models: `<prefix>/weight` + `<prefix>/bias` for a dense
/// layer, `<prefix>/gamma` + `<prefix>/beta` for a LayerNorm (weights widened to fp32).
extension CTranslate2Model {
    func linear(_ prefix: String, precision: Linear.Precision = .float32) throws -> Linear {
        try Linear(weight: float32("\(prefix)/weight"), bias: float32("\(prefix)/bias"), precision: precision)
    }

    func layerNorm(_ prefix: String) throws -> (gamma: Tensor, beta: Tensor) {
        (try float32("\(prefix)/gamma"), try float32("\(prefix)/beta"))
    }
}
