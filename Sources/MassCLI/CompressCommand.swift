import ArgumentParser
import Foundation
import MassModels
import MassRuntime
import MassTensor
import MassTokenizers
import MassWeights

/// `mass compress`: an int8 copy of a model folder that every command and `mass serve` load unchanged, with the
/// accuracy report.
struct CompressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compress",
        abstract: "Write an int8 and/or pruned copy of a BERT-family model folder and report what it costs.",
        discussion: """
            Every linear layer of the encoder (encoder.layer.N.*.weight, 2-D) is quantised per output channel \
            (symmetric int8, NAME.weight as I8 and NAME.weight_scale as F32 in model.safetensors); embeddings, \
            LayerNorm, the pooler and heads stay float32; the other files are copied. The report (JSON): each \
            layer's relative weight error, the file size before and after, and with --calibration the cosine of \
            each text's embedding to the original model's (sentence-transformers folders). --prune zeroes the \
            smallest weights of each of those layers first: a share of each layer (unstructured), or 2 of every 4 \
            consecutive inputs (2:4); without fine-tuning it costs accuracy, which the report shows \
            (docs/compression.md). Zeros are stored densely: pruning alone shrinks neither the file nor the time.
            """)

    @Option(name: .long, help: "The model folder, e.g. models/all-MiniLM-L6-v2/1.") var model: String
    @Flag(name: .long, help: "Quantise the linear layers to int8.") var int8 = false
    @Option(name: .long, help: "Share of each linear layer's weights to zero, by magnitude (0-1; 2:4 needs 0.5).")
    var prune: Double?
    @Option(name: .long, help: "unstructured or 2:4.") var pattern = "unstructured"
    @Option(name: .long, help: "The new folder (must not exist, or be empty).") var out: String
    @Option(name: .long, help: "Texts, one per line: the agreement set for the report.") var calibration: String?

    struct Layer: Encodable {
        let name: String
        let shape: [Int]
        let relativeError: Double
        let sparsity: Double
        enum CodingKeys: String, CodingKey {
            case name, shape, sparsity
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

    func validate() throws {
        guard int8 || prune != nil else { throw ValidationError("name a compression: --int8, --prune or both") }
        guard ["unstructured", "2:4"].contains(pattern) else {
            throw ValidationError("--pattern must be unstructured or 2:4")
        }
        if let prune {
            guard prune > 0, prune < 1 else { throw ValidationError("--prune must be between 0 and 1") }
            guard pattern != "2:4" || prune == 0.5 else { throw ValidationError("--pattern 2:4 zeroes 0.5 exactly") }
        }
    }

    func run() throws {
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
            let original = values.array
            var kept = original
            if let prune { Self.prune(&kept, rows: n, columns: k, share: prune, twoOfFour: pattern == "2:4") }
            // What the served model computes with: the pruned weights, quantised when --int8.
            var served = kept
            if int8 {
                let q = kept.withUnsafeBufferPointer { QuantizedMatrix($0.baseAddress!, n: n, k: k) }
                let rows = q.rowMajor
                for j in 0..<n { for i in 0..<k { served[j * k + i] = q.scales[j] * Float(rows[j * k + i]) } }
                tensors.append((name, [n, k], .int8(rows)))
                tensors.append((name + "_scale", [n], .float32(q.scales)))
            } else {
                tensors.append((name, [n, k], .float32(kept)))
            }
            var error = 0.0
            var norm = 0.0
            for (w, v) in zip(original, served) {
                error += Double(w - v) * Double(w - v)
                norm += Double(w) * Double(w)
            }
            report.layers.append(
                Layer(
                    name: name, shape: [n, k], relativeError: (error / max(norm, 1e-30)).squareRoot(),
                    sparsity: Double(served.filter { $0 == 0 }.count) / Double(served.count)))
        }
        guard !report.layers.isEmpty else { throw CLIError("\(model): no encoder linear layers to compress") }
        try manager.createDirectory(at: target, withIntermediateDirectories: true)
        for item in try manager.contentsOfDirectory(atPath: source.path) where item != "model.safetensors" {
            try manager.copyItem(
                at: source.appendingPathComponent(item).resolvingSymlinksInPath(),
                to: target.appendingPathComponent(item))
        }
        var metadata = ["format": "pt"]
        if int8 { metadata["mass.quantization"] = "int8, per output channel, symmetric" }
        if let prune { metadata["mass.pruning"] = "\(pattern), \(prune) by magnitude" }
        let data = SafeTensorsWriter.encode(tensors, metadata: metadata)
        try data.write(to: target.appendingPathComponent("model.safetensors"))
        report.bytesBefore = (try manager.attributesOfItem(atPath: weightsFile.path)[.size] as? Int) ?? 0
        report.bytesAfter = data.count
        if let calibration { try agreement(calibration, source, target, &report) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    /// Zeroes the smallest |w| of a [rows, columns] matrix: `share` of all of them, or (`twoOfFour`) the two
    /// smallest of every 4 consecutive inputs of each row (a tail shorter than 4 keeps its larger half).
    static func prune(_ w: inout [Float], rows: Int, columns: Int, share: Double, twoOfFour: Bool) {
        if twoOfFour {
            for r in 0..<rows {
                for start in stride(from: r * columns, to: (r + 1) * columns, by: 4) {
                    let group = start..<min(start + 4, (r + 1) * columns)
                    let order = group.sorted { abs(w[$0]) < abs(w[$1]) }
                    for i in order.prefix(group.count / 2) { w[i] = 0 }
                }
            }
            return
        }
        let count = Int((share * Double(w.count)).rounded())
        guard count > 0 else { return }
        // Ties at the threshold are broken by position, so exactly `count` are zeroed.
        let order = w.indices.sorted { abs(w[$0]) < abs(w[$1]) || (abs(w[$0]) == abs(w[$1]) && $0 < $1) }
        for i in order.prefix(count) { w[i] = 0 }
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
        func embed(_ model: SentenceEmbedder) throws -> [[Float]] {
            try texts.map { try model.embed([model.tokenize($0).ids], workspace: workspace, pool: pool)[0] }
        }
        let cosines = Agreement.cosines(try embed(original), try embed(compressed))
        report.calibrationTexts = texts.count
        report.minimumCosine = cosines.min()
        report.meanCosine = cosines.reduce(0, +) / Double(cosines.count)
    }
}
