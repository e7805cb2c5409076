import ArgumentParser
import Foundation
import MassModels
import MassTensor
import MassTokenizers
import MassWeights

/// `mass compress`: an int8 copy of a model folder that every command and `mass serve` load unchanged, with the
/// accuracy report.
struct CompressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compress",
        abstract: "Write an int8 copy of a BERT-family model folder and report what it costs in accuracy.",
        discussion: """
            Every linear layer of the encoder (encoder.layer.N.*.weight, 2-D) is quantised per output channel \
            (symmetric int8, NAME.weight as I8 and NAME.weight_scale as F32 in model.safetensors); embeddings, \
            LayerNorm, the pooler and heads stay float32; the other files are copied. The report (JSON): each \
            layer's relative weight error, the file size before and after, and with --calibration the cosine of \
            each text's embedding to the original model's (sentence-transformers folders). Pruning is not there \
            yet (docs/compression.md).
            """)

    @Option(name: .long, help: "The model folder, e.g. models/all-MiniLM-L6-v2/1.") var model: String
    @Flag(name: .long, help: "Quantise the linear layers to int8.") var int8 = false
    @Option(name: .long, help: "The new folder (must not exist, or be empty).") var out: String
    @Option(name: .long, help: "Texts, one per line: the agreement set for the report.") var calibration: String?

    struct Layer: Encodable {
        let name: String
        let shape: [Int]
        let relativeError: Double
        enum CodingKeys: String, CodingKey {
            case name, shape
            case relativeError = "relative_error"
        }
    }

    struct Report: Encodable {
        var layers: [Layer] = []
        var dropped: [String] = []
        var bytesBefore = 0
        var bytesAfter = 0
        var calibrationTexts: Int?
        var minimumCosine: Double?
        var meanCosine: Double?
        enum CodingKeys: String, CodingKey {
            case layers, dropped
            case bytesBefore = "bytes_before"
            case bytesAfter = "bytes_after"
            case calibrationTexts = "calibration_texts"
            case minimumCosine = "min_cosine"
            case meanCosine = "mean_cosine"
        }
    }

    func run() throws {
        guard int8 else { throw ValidationError("name a compression: --int8 (pruning is not there yet)") }
        let source = URL(fileURLWithPath: model)
        let target = URL(fileURLWithPath: out)
        let manager = FileManager.default
        let weightsFile = source.appendingPathComponent("model.safetensors")
        guard manager.fileExists(atPath: weightsFile.path),
            try ModelFolder(directory: source).modelType == "bert"
        else {
            throw CLIError(
                "\(model): compress handles BERT-family folders (config.json model_type bert, model.safetensors)")
        }
        if let existing = try? manager.contentsOfDirectory(atPath: target.path), !existing.isEmpty {
            throw CLIError("\(out) exists and is not empty")
        }
        let weights = try SafeTensorsFile(path: weightsFile.path)
        var report = Report()
        var tensors: [(String, [Int], SafeTensorsWriter.Values)] = []
        for name in weights.names {
            let tensor = try weights.tensor(name)
            guard [.float32, .float16, .bfloat16].contains(tensor.dtype) else {
                // Buffers the loaders never read (position_ids, I64).
                report.dropped.append(name)
                continue
            }
            let values = try weights.float32(name)
            guard Self.isEncoderLinear(name), tensor.shape.count == 2 else {
                tensors.append((name, tensor.shape, .float32(values.array)))
                continue
            }
            let (n, k) = (tensor.shape[0], tensor.shape[1])
            let q = QuantizedMatrix(values.floats, n: n, k: k)
            let rows = q.rowMajor
            var error = 0.0
            var norm = 0.0
            for j in 0..<n {
                for i in 0..<k {
                    let w = Double(values.floats[j * k + i])
                    let d = w - Double(q.scales[j]) * Double(rows[j * k + i])
                    error += d * d
                    norm += w * w
                }
            }
            report.layers.append(
                Layer(name: name, shape: [n, k], relativeError: (error / max(norm, 1e-30)).squareRoot()))
            tensors.append((name, [n, k], .int8(rows)))
            tensors.append((name + "_scale", [n], .float32(q.scales)))
        }
        guard !report.layers.isEmpty else { throw CLIError("\(model): no encoder linear layers to quantise") }
        try manager.createDirectory(at: target, withIntermediateDirectories: true)
        for item in try manager.contentsOfDirectory(atPath: source.path) where item != "model.safetensors" {
            try manager.copyItem(
                at: source.appendingPathComponent(item).resolvingSymlinksInPath(),
                to: target.appendingPathComponent(item))
        }
        let data = SafeTensorsWriter.encode(
            tensors, metadata: ["format": "pt", "mass.quantization": "int8, per output channel, symmetric"])
        try data.write(to: target.appendingPathComponent("model.safetensors"))
        report.bytesBefore = (try manager.attributesOfItem(atPath: weightsFile.path)[.size] as? Int) ?? 0
        report.bytesAfter = data.count
        if let calibration { try agreement(calibration, source, target, &report) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    /// The encoder's linear weights: `encoder.layer.N.<...>.weight` (LayerNorm weights are 1-D).
    static func isEncoderLinear(_ name: String) -> Bool {
        (name.hasPrefix("encoder.layer.") || name.hasPrefix("bert.encoder.layer.")) && name.hasSuffix(".weight")
            && !name.contains("LayerNorm")
    }

    /// Each calibration text embedded by both folders: the cosine of the two embeddings.
    func agreement(_ file: String, _ source: URL, _ target: URL, _ report: inout Report) throws {
        let texts = try TextInput.lines(try Data(contentsOf: URL(fileURLWithPath: file)), source: file)
        guard !texts.isEmpty else { throw CLIError("\(file) has no texts") }
        let original = try SentenceEmbedder(directory: source, encoder: BertModel.encoder)
        let compressed = try SentenceEmbedder(directory: target, encoder: BertModel.encoder)
        let pool = ComputePool(threads: ProcessInfo.processInfo.activeProcessorCount)
        let workspace = EncoderWorkspace()
        var cosines: [Double] = []
        for text in texts {
            let a = try original.embed([original.tokenize(text).ids], workspace: workspace, pool: pool)[0]
            let b = try compressed.embed([compressed.tokenize(text).ids], workspace: workspace, pool: pool)[0]
            let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let norms = (a.reduce(0.0) { $0 + Double($1 * $1) } * b.reduce(0.0) { $0 + Double($1 * $1) }).squareRoot()
            cosines.append(dot / max(norms, 1e-30))
        }
        report.calibrationTexts = texts.count
        report.minimumCosine = cosines.min()
        report.meanCosine = cosines.reduce(0, +) / Double(cosines.count)
    }
}
