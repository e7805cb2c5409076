import Foundation
import MassModels
import MassRuntime
import MassTensor
import MassWeights

/// `mass compress` of an EfficientNet-Lite folder: static int8 calibrated on images, and/or magnitude pruning of
/// the convolutions' weights (a float32 model.safetensors alone). With --int8 the checkpoint becomes
/// `model.safetensors` with every convolution's weights int8 per output channel (`NAME.weight` I8 and
/// `NAME.weight_scale` F32, w ≈ q · scale; batch norms and the classifier float32); the activation ranges
/// measured on the calibration images go to `int8-calibration.json`, which makes the folder load in int8. When
/// it loads, oneDNN's per-channel requantisation of the batch-norm-folded weights gives back the same q (each
/// row's largest |q| is 127). The report: each convolution's weight error and the top-1 agreement with float32.
extension CompressCommand {
    func compressEfficientNet(_ source: URL, _ target: URL) throws -> Report {
        guard !int8 || calibration != nil else {
            throw CLIError("\(model): EfficientNet int8 is calibrated on images: add --calibration FILE_OR_FOLDER")
        }
        let original = try ImageClassifier(directory: source)
        let images = try calibration.map { path in
            try Self.files(path, extensions: ["jpg", "jpeg", "png"]).map { file in
                var input = [Float](repeating: 0, count: original.inputSize)
                let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
                try input.withUnsafeMutableBufferPointer {
                    try original.prepare(encoded: Array(bytes), into: $0.baseAddress!)
                }
                return input
            }
        }
        var report = Report()
        let checkpoint = try FileManager.default.contentsOfDirectory(atPath: source.path)
            .first { $0.hasSuffix(".pth") || $0.hasSuffix(".pt") }!
        let weights = try PyTorchCheckpoint(path: source.appendingPathComponent(checkpoint).path)
        // Every float tensor, the convolutions' weights pruned when asked (float32 for now).
        var kept: [(name: String, shape: [Int], values: [Float], original: [Float]?)] = []
        for name in weights.names {
            let tensor = try weights.tensor(name)
            guard tensor.dtype.isFloat else {
                report.dropped.append(name)  // num_batches_tracked (I64), never read
                continue
            }
            let values = try weights.float32(name).array
            guard name.hasSuffix(".weight"), tensor.shape.count == 4 else {
                kept.append((name, tensor.shape, values, nil))
                continue
            }
            var pruned = values
            if let prune {
                Self.prune(
                    &pruned, rows: tensor.shape[0], columns: values.count / tensor.shape[0], share: prune,
                    twoOfFour: pattern == "2:4")
            }
            kept.append((name, tensor.shape, pruned, values))
        }
        try Self.copyFolder(source, target, except: [checkpoint, ImageClassifier.Int8Calibration.file])
        let weightsFile = target.appendingPathComponent("model.safetensors")
        func write(_ tensors: [(String, [Int], SafeTensorsWriter.Values)], _ metadata: [String: String]) throws {
            let data = SafeTensorsWriter.encode(tensors, metadata: ["format": "pt"].merging(metadata) { $1 })
            try data.write(to: weightsFile)
            report.bytesAfter = data.count
        }
        let pruning = prune.map { ["mass.pruning": "\(pattern), \($0) by magnitude"] } ?? [:]
        try write(kept.map { ($0.name, $0.shape, .float32($0.values)) }, pruning)
        if int8, let images {
            // The ranges of the network as it will run (pruned, if so), on the float32 chain.
            let ranges = try ImageClassifier(directory: target).network.activationRanges(images)
            var tensors: [(String, [Int], SafeTensorsWriter.Values)] = []
            for (index, layer) in kept.enumerated() where layer.original != nil {
                let rows = layer.shape[0]
                let (q, inverse) = CTranslate2Writer.int8(layer.values, rows: rows)
                let scales = inverse.map { 1 / $0 }
                tensors += [(layer.name, layer.shape, .int8(q)), (layer.name + "_scale", [rows], .float32(scales))]
                kept[index].values = q.indices.map { Float(q[$0]) * scales[$0 / (q.count / rows)] }
            }
            tensors += kept.filter { $0.original == nil }.map { ($0.name, $0.shape, .float32($0.values)) }
            try write(tensors, pruning.merging(["mass.quantization": "int8 convolutions, per output channel"]) { $1 })
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(ImageClassifier.Int8Calibration(ranges: ranges, images: images.count)).write(
                to: target.appendingPathComponent(ImageClassifier.Int8Calibration.file))
        }
        for layer in kept {
            guard let values = layer.original else { continue }
            report.layers.append(Self.layer(layer.name, shape: layer.shape, original: values, served: layer.values))
        }
        report.bytesBefore = (try FileManager.default.attributesOfItem(atPath: weights.origin)[.size] as? Int) ?? 0
        // Agreement on the calibration images: the float32 original against the new folder as it loads.
        if let images {
            let compressed = try ImageClassifier(directory: target)
            let pool = ComputePool(threads: ProcessInfo.processInfo.activeProcessorCount)
            func logits(_ classifier: ImageClassifier) -> [[Float]] {
                images.flatMap { $0 }.withUnsafeBufferPointer {
                    classifier.logits(
                        $0.baseAddress!, batch: images.count, workspace: EfficientNetWorkspace(), pool: pool)
                }
            }
            report.calibrationImages = images.count
            report.top1Agreement = Agreement.top1(logits(original), logits(compressed))
        }
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
