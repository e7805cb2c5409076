import Foundation
import MassModels
import MassRuntime
import MassTensor
import MassWeights

/// `mass compress --int8` of an EfficientNet-Lite folder: static int8 calibrated on images. The checkpoint is
/// copied unchanged (oneDNN quantises the weights per output channel when the folder loads); the activation
/// ranges measured on the calibration images go to `int8-calibration.json`, which makes the folder load in int8.
/// The report: each convolution's weight error under that rule and the top-1 agreement with the float32 model.
extension CompressCommand {
    func compressEfficientNet(_ source: URL, _ target: URL) throws -> Report {
        guard int8, prune == nil else {
            throw CLIError("\(model): EfficientNet folders are compressed with --int8 only (no --prune)")
        }
        guard let calibration else {
            throw CLIError("\(model): EfficientNet int8 is calibrated on images: add --calibration FILE_OR_FOLDER")
        }
        let files = try Self.files(calibration, extensions: ["jpg", "jpeg", "png"])
        let original = try ImageClassifier(directory: source)
        let images = try files.map { file in
            var input = [Float](repeating: 0, count: original.inputSize)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            try input.withUnsafeMutableBufferPointer {
                try original.prepare(encoded: Array(bytes), into: $0.baseAddress!)
            }
            return input
        }
        let ranges = try original.network.activationRanges(images)
        var report = Report()
        let checkpoint = try FileManager.default.contentsOfDirectory(atPath: source.path)
            .first { $0.hasSuffix(".pth") || $0.hasSuffix(".pt") }!
        let weights = try PyTorchCheckpoint(path: source.appendingPathComponent(checkpoint).path)
        for name in weights.names where name.hasSuffix(".weight") {
            let w = try weights.float32(name)
            guard w.shape.count == 4 else { continue }
            let values = w.array
            let (q, scales) = CTranslate2Writer.int8(values, rows: w.shape[0])
            let served = q.indices.map { Float(q[$0]) / scales[$0 / (values.count / w.shape[0])] }
            report.layers.append(Self.layer(name, shape: w.shape, original: values, served: served))
        }
        try Self.copyFolder(source, target, except: ImageClassifier.Int8Calibration.file)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(ImageClassifier.Int8Calibration(ranges: ranges, images: images.count)).write(
            to: target.appendingPathComponent(ImageClassifier.Int8Calibration.file))
        let size = (try FileManager.default.attributesOfItem(atPath: weights.origin)[.size] as? Int) ?? 0
        (report.bytesBefore, report.bytesAfter) = (size, size)
        // Agreement on the calibration images, the float32 model against the int8 folder as it loads.
        let compressed = try ImageClassifier(directory: target)
        let pool = ComputePool(threads: ProcessInfo.processInfo.activeProcessorCount)
        func logits(_ classifier: ImageClassifier) -> [[Float]] {
            images.flatMap { $0 }.withUnsafeBufferPointer {
                classifier.logits($0.baseAddress!, batch: images.count, workspace: EfficientNetWorkspace(), pool: pool)
            }
        }
        report.calibrationImages = images.count
        report.top1Agreement = Agreement.top1(logits(original), logits(compressed))
        return report
    }

    /// An input file, or every file of a folder whose extension is one of `extensions` (sorted).
    static func files(_ path: String, extensions: Set<String>) throws -> [String] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw CLIError("\(path): no such file or folder")
        }
        let files =
            isFolder.boolValue
            ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { "\(path)/\($0)" }
                .filter { extensions.contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }
            : [path]
        guard !files.isEmpty else {
            throw CLIError("\(path) holds no \(extensions.sorted().joined(separator: ", ")) files")
        }
        return files
    }
}
