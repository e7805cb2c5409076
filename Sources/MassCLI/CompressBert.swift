import Foundation
import MassModels
import MassRuntime
import MassTensor
import MassTokenizers
import MassWeights

/// `mass compress` of a BERT-family folder (BERT, MPNet): model.safetensors with the encoder's linear layers in int8
/// (`NAME.weight` I8 + `NAME.weight_scale` F32, w ≈ q · scale) and/or pruned; cosine agreement on texts.
extension CompressCommand {
    func compressBert(_ source: URL, _ target: URL) throws -> Report {
        let weightsFile = source.appendingPathComponent("model.safetensors")
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
            report.layers.append(Self.layer(name, shape: [n, k], original: original, served: served))
        }
        guard !report.layers.isEmpty else { throw CLIError("\(model): no encoder linear layers to compress") }
        try Self.copyFolder(source, target, except: ["model.safetensors"])
        var metadata = ["format": "pt"]
        if int8 { metadata["mass.quantization"] = "int8, per output channel, symmetric" }
        if let prune { metadata["mass.pruning"] = "\(pattern), \(prune) by magnitude" }
        let data = SafeTensorsWriter.encode(tensors, metadata: metadata)
        try data.write(to: target.appendingPathComponent("model.safetensors"))
        report.bytesBefore = (try FileManager.default.attributesOfItem(atPath: weightsFile.path)[.size] as? Int) ?? 0
        report.bytesAfter = data.count
        if let calibration { try agreement(calibration, source, target, &report) }
        return report
    }

    /// The encoder's linear weights: `encoder.layer.N.<...>.weight` (LayerNorm weights are 1-D).
    static func isEncoderLinear(_ name: String) -> Bool {
        ["", "bert.", "mpnet."].contains { name.hasPrefix($0 + "encoder.layer.") } && name.hasSuffix(".weight")
            && !name.contains("LayerNorm")
    }

    /// Each calibration text embedded by both folders: the cosine of the two embeddings.
    func agreement(_ file: String, _ source: URL, _ target: URL, _ report: inout Report) throws {
        let texts = try TextInput.lines(try Data(contentsOf: URL(fileURLWithPath: file)), source: file)
        guard !texts.isEmpty else { throw CLIError("\(file) has no texts") }
        let original = try SentenceEmbedder.load(source)
        let compressed = try SentenceEmbedder.load(target)
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
