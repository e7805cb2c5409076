import ArgumentParser
import Foundation
import MassModels
import MassWeights

/// `mass compress`: an int8 copy of a model folder that every command and `mass serve` load unchanged, with the
/// accuracy report.
struct CompressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compress",
        abstract: "Write an int8 and/or pruned copy of a BERT, Whisper or EfficientNet folder and report the cost.",
        discussion: """
            BERT-family folders (model.safetensors): every linear layer of the encoder \
            (encoder.layer.N.*.weight, 2-D) is quantised per output channel \
            (symmetric int8, NAME.weight as I8 and NAME.weight_scale as F32 in model.safetensors); embeddings, \
            LayerNorm, the pooler and heads stay float32; the other files are copied. The report (JSON): each \
            layer's relative weight error, the file size before and after, and with --calibration the cosine of \
            each text's embedding to the original model's (sentence-transformers folders). --prune zeroes the \
            smallest weights of each of those layers first: a share of each layer (unstructured), or 2 of every 4 \
            consecutive inputs (2:4); without fine-tuning it costs accuracy, which the report shows \
            (docs/compression.md). Zeros are stored densely: pruning alone shrinks neither the file nor the time. \
            Whisper CTranslate2 folders (model.bin): every linear, conv1d and embedding weight is written as \
            CTranslate2 writes int8 (per row, scale = 127 / max|w|, NAME_scale), so faster-whisper loads the folder \
            too; --calibration names an audio file or a folder of them, and the report gives the word error rate \
            of the compressed model against the original's float32 transcripts. \
            EfficientNet-Lite folders (*.pth): static int8 on oneDNN, calibrated on --calibration images (a file \
            or folder of JPEG/PNG): model.safetensors with int8 convolution weights (NAME.weight_scale F32, \
            w ≈ q · scale), the activation ranges in int8-calibration.json (the folder then loads in int8); the \
            report gives each convolution's weight error and the top-1 agreement with float32 on those images.
            """)

    @Option(name: .long, help: "The model folder, e.g. models/all-MiniLM-L6-v2/1.") var model: String
    @Flag(name: .long, help: "Quantise the weights (linear, convolution, Whisper's embeddings) to int8.") var int8 =
        false
    @Option(name: .long, help: "Share of each linear layer's weights to zero, by magnitude (0-1; 2:4 needs 0.5).")
    var prune: Double?
    @Option(name: .long, help: "unstructured or 2:4.") var pattern = "unstructured"
    @Option(name: .long, help: "The new folder (must not exist, or be empty).") var out: String
    @Option(
        name: .long,
        help: "Texts, one per line (BERT), audio (Whisper) or images (EfficientNet): a file or folder.")
    var calibration: String?

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
        var calibrationFiles: Int?
        var wordErrorRate: Double?
        var sameTranscripts: Int?
        var calibrationImages: Int?
        var top1Agreement: Double?
        enum CodingKeys: String, CodingKey {
            case layers, dropped
            case bytesBefore = "bytes_before"
            case bytesAfter = "bytes_after"
            case calibrationTexts = "calibration_texts"
            case minimumCosine = "min_cosine"
            case meanCosine = "mean_cosine"
            case calibrationFiles = "calibration_files"
            case wordErrorRate = "word_error_rate"
            case sameTranscripts = "same_transcripts"
            case calibrationImages = "calibration_images"
            case top1Agreement = "top1_agreement"
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

    func run() async throws {
        let source = URL(fileURLWithPath: model)
        let target = URL(fileURLWithPath: out)
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: target.path), !existing.isEmpty {
            throw CLIError("\(out) exists and is not empty")
        }
        let folder = try ModelFolder(directory: source)
        let report: Report
        if FileManager.default.fileExists(atPath: source.appendingPathComponent("model.safetensors").path),
            ["bert", "mpnet"].contains(folder.modelType)
        {
            report = try compressBert(source, target)
        } else if let spec = try? CTranslate2Model(path: source.appendingPathComponent("model.bin").path),
            spec.specName == "WhisperSpec"
        {
            report = try await compressWhisper(spec, source, target)
        } else if folder.has(suffix: ".pth") || folder.has(suffix: ".pt") {
            report = try compressEfficientNet(source, target)
        } else {
            throw CLIError(
                "\(model): compress handles BERT-family folders (config.json model_type bert or mpnet, model.safetensors), "
                    + "Whisper CTranslate2 folders (model.bin) and EfficientNet-Lite checkpoints (*.pth)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    /// Copies every file of the source folder but those of `except` into the (new) target folder.
    static func copyFolder(_ source: URL, _ target: URL, except: Set<String>) throws {
        let manager = FileManager.default
        try manager.createDirectory(at: target, withIntermediateDirectories: true)
        for item in try manager.contentsOfDirectory(atPath: source.path) where !except.contains(item) {
            try manager.copyItem(
                at: source.appendingPathComponent(item).resolvingSymlinksInPath(),
                to: target.appendingPathComponent(item))
        }
    }

    /// A layer's line of the report: the relative error of what is served against the original weights.
    static func layer(_ name: String, shape: [Int], original: [Float], served: [Float]) -> Layer {
        var error = 0.0
        var norm = 0.0
        for (w, v) in zip(original, served) {
            error += Double(w - v) * Double(w - v)
            norm += Double(w) * Double(w)
        }
        return Layer(
            name: name, shape: shape, relativeError: (error / max(norm, 1e-30)).squareRoot(),
            sparsity: Double(served.filter { $0 == 0 }.count) / Double(max(1, served.count)))
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
}
