public import Foundation
public import MassTensor
public import MassTokenizers
import MassWeights

/// A sentence-transformers model folder as its authors ship it: `config.json`, `model.safetensors` (or an ONNX
/// export's `model.onnx`, whose weights the architecture maps onto its own),
/// `tokenizer.json`, `modules.json` (Transformer → Pooling → optional Normalize), `1_Pooling/config.json`
/// and `sentence_bert_config.json` (`max_seq_length`).
public final class SentenceEmbedder: TextEmbedding {
    public let directory: URL
    public let tokenizer: Tokenizer
    public let encoder: any TextEncoder
    public let pooling: Pooling
    public let maxSequenceLength: Int
    public var dimension: Int { encoder.hiddenSize }

    /// Loads the folder with `encoder` building the Transformer from `config.json` and the weights (the
    /// architecture registry passes the loader of the folder's `model_type`).
    public init(directory: URL, encoder makeEncoder: TextEncoderLoader) throws {
        self.directory = directory
        let file = { (name: String) in directory.appendingPathComponent(name) }
        // The weights: model.safetensors, or an ONNX export's model.onnx (its initializers, not its graph).
        let onnx =
            !FileManager.default.fileExists(atPath: file("model.safetensors").path)
            && FileManager.default.fileExists(atPath: file("model.onnx").path)
        try ConfigLoading.require(
            ["config.json", onnx ? "model.onnx" : "model.safetensors", "tokenizer.json"], in: directory)
        let weights: any WeightSource
        do {
            weights =
                onnx
                ? try ONNXModel(path: file("model.onnx").path)
                : try SafeTensorsFile(path: file("model.safetensors").path)
        } catch let error as WeightsError {
            throw ModelError(.badConfig, error.description, cause: error)
        }
        encoder = try makeEncoder(file("config.json"), weights)
        do {
            tokenizer = try Tokenizer(contentsOf: file("tokenizer.json"))
        } catch let error as TokenizerError {
            throw ModelError(.unsupported, error.description, cause: error)
        }
        pooling = try Self.loadPooling(directory: directory)
        var length = encoder.maxPositions
        if FileManager.default.fileExists(atPath: file("sentence_bert_config.json").path) {
            struct SentenceBertConfig: Decodable {
                let max_seq_length: Int?
            }
            let sb = try ConfigLoading.decode(SentenceBertConfig.self, at: file("sentence_bert_config.json"))
            if let max = sb.max_seq_length {
                guard max > 0 else {
                    throw ModelError(
                        .badConfig, "\(file("sentence_bert_config.json").path): 'max_seq_length' must be positive")
                }
                length = min(max, length)
            }
        }
        maxSequenceLength = length
    }

    private static func loadPooling(directory: URL) throws -> Pooling {
        let modulesURL = directory.appendingPathComponent("modules.json")
        guard FileManager.default.fileExists(atPath: modulesURL.path) else {
            // A bare transformer folder: sentence-transformers would default to mean pooling, no normalisation.
            return Pooling(mode: .mean, normalize: false)
        }
        struct Module: Decodable {
            let path: String
            let type: String
        }
        let modules = try ConfigLoading.decode([Module].self, at: modulesURL)
        var mode: Pooling.Mode = .mean
        var normalize = false
        for module in modules {
            switch module.type.split(separator: ".").last.map(String.init) ?? "" {
            case "Transformer":
                continue
            case "Pooling":
                struct PoolingConfig: Decodable {
                    let pooling_mode_cls_token: Bool?
                    let pooling_mode_mean_tokens: Bool?
                    let pooling_mode_max_tokens: Bool?
                    let pooling_mode_mean_sqrt_len_tokens: Bool?
                }
                let url = directory.appendingPathComponent(module.path).appendingPathComponent("config.json")
                let c = try ConfigLoading.decode(PoolingConfig.self, at: url)
                let chosen = [
                    (c.pooling_mode_cls_token ?? false, Pooling.Mode.cls),
                    (c.pooling_mode_mean_tokens ?? false, .mean),
                    (c.pooling_mode_max_tokens ?? false, .max),
                ].filter(\.0)
                guard chosen.count == 1, !(c.pooling_mode_mean_sqrt_len_tokens ?? false) else {
                    throw ModelError(
                        .unsupported,
                        "\(url.path): exactly one of pooling_mode_cls_token, _mean_tokens, _max_tokens must be true")
                }
                mode = chosen[0].1
            case "Normalize":
                normalize = true
            default:
                throw ModelError(.unsupported, "\(modulesURL.path): module '\(module.type)' is not supported")
            }
        }
        return Pooling(mode: mode, normalize: normalize)
    }

    /// Tokenizes with the model's truncation (`max_seq_length`, special tokens included).
    public func makeWorkspace() -> EncoderWorkspace { EncoderWorkspace() }

    public func tokenize(_ text: String) -> Encoding {
        tokenizer.encode(text, maxLength: maxSequenceLength)
    }

    /// Embeds a ragged batch of token sequences; returns one vector per sequence, in order.
    public func embed(_ sequences: [[Int32]], workspace: EncoderWorkspace, pool: ComputePool) throws -> [[Float]] {
        let states = try encoder.hiddenStates(sequences, typeIds: nil, workspace: workspace, pool: pool)
        let dim = dimension
        var result = [[Float]](repeating: [], count: sequences.count)
        var offset = 0
        for (i, ids) in sequences.enumerated() {
            result[i] = [Float](unsafeUninitializedCapacity: dim) { buffer, count in
                pooling.pool(states + offset * dim, rows: ids.count, dim: dim, into: buffer.baseAddress!)
                count = dim
            }
            offset += ids.count
        }
        return result
    }
}

extension SentenceEmbedder {
    /// The sentence-embedding folder at `directory` through the architecture registry: BERT, MPNet or whatever
    /// its `config.json` names, its linear layers in `precision`.
    public static func load(
        _ directory: URL, precision: Linear.Precision = .float32, registry: ArchitectureRegistry = .standard
    ) throws -> SentenceEmbedder {
        let model = try registry.load(directory, task: .textEmbedding, precision: precision)
        guard let embedder = model as? SentenceEmbedder else {
            throw ModelError(.unsupported, "\(directory.path) is not a sentence-transformers folder")
        }
        return embedder
    }
}
