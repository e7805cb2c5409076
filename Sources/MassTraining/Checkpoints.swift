public import Foundation
import MassAutograd
import MassTensor
public import MassWeights

/// Saving trained weights where the inference code reads them, and optimizer state for resuming.
extension BertClassifier {
    /// Writes the model to `directory` as a `save_pretrained` folder: the source folder's other files
    /// (config.json, tokenizer.json, ...) copied, `model.safetensors` holding the current weights. The folder loads
    /// in `mass serve` and the inference loaders unchanged. Written to a temporary name, then moved, so a crash
    /// never leaves a half-written model.
    public func save(to directory: URL, copyingFrom source: URL, metadata: [String: String] = [:]) throws {
        try Checkpoint.copyFolder(source, to: directory, except: ["model.safetensors"])
        let data = SafeTensorsWriter.encode(
            parameters.map { ($0.name, $0.variable.shape, $0.variable.value) },
            metadata: ["format": "pt"].merging(metadata) { $1 })
        try Checkpoint.writeAtomically(data, to: directory.appendingPathComponent("model.safetensors"))
    }
}

public enum Checkpoint {
    /// Copies every entry of `source` but `excluded` into `directory` (created if needed), replacing what is there.
    /// Files are hard-linked where the file system allows (a folder of the encoder's weights costs no space):
    /// whatever is written into `directory` afterwards must go through `writeAtomically`, which replaces a link
    /// instead of writing through it.
    public static func copyFolder(_ source: URL, to directory: URL, except excluded: Set<String>) throws {
        let manager = FileManager.default
        try manager.createDirectory(at: directory, withIntermediateDirectories: true)
        for name in try manager.contentsOfDirectory(atPath: source.path) where !excluded.contains(name) {
            let target = directory.appendingPathComponent(name)
            let from = source.appendingPathComponent(name)
            if manager.fileExists(atPath: target.path) { try manager.removeItem(at: target) }
            var isFolder: ObjCBool = false
            _ = manager.fileExists(atPath: from.path, isDirectory: &isFolder)
            if !isFolder.boolValue, link(from.path, target.path) == 0 { continue }
            try manager.copyItem(at: from, to: target)
        }
    }

    /// Writes `data` beside `url` under a temporary name of its own, then renames it over `url` (atomic on one file
    /// system). Writers may race for one file (a study's trials fill a shared cache): each writes its own
    /// temporary file, and the last rename wins whole.
    public static func writeAtomically(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).\(UUID().uuidString).partial")
        try data.write(to: temporary)
        // rename(2) replaces the target in one step (Foundation's replaceItemAt is not reliable on Linux).
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw TrainingError(.io, "cannot write \(url.path): \(reason)")
        }
    }
}

extension AdamW {
    /// The moments and step count as safetensors (`m.<i>`, `v.<i>` per parameter, in order; steps in the
    /// metadata), to resume training exactly where it stopped.
    public func state() -> Data {
        var tensors: [(String, [Int], [Float])] = []
        for (i, p) in parameters.enumerated() {
            tensors.append(("m.\(i)", p.shape, firstMoments[i]))
            tensors.append(("v.\(i)", p.shape, secondMoments[i]))
        }
        return SafeTensorsWriter.encode(tensors, metadata: ["steps": String(steps), "optimizer": "AdamW"])
    }

    /// Restores `state()`'s output; the parameters must be the same, in the same order.
    public mutating func restore(_ file: SafeTensorsFile) throws {
        guard file.names.count == 2 * parameters.count else {
            throw TrainingError(
                .badState, "optimizer state: \(file.names.count / 2) parameters saved, \(parameters.count) now")
        }
        guard file.metadata["optimizer"] == "AdamW", let steps = file.metadata["steps"].flatMap(Int.init) else {
            throw TrainingError(.badState, "optimizer state: not an AdamW state file")
        }
        var first: [[Float]] = []
        var second: [[Float]] = []
        for (i, p) in parameters.enumerated() {
            let m = try file.tensor("m.\(i)").toFloat32()
            let v = try file.tensor("v.\(i)").toFloat32()
            guard m.shape == p.shape && v.shape == p.shape else {
                throw TrainingError(
                    .badState, "optimizer state: moment \(i) has shape \(m.shape), the parameter \(p.shape)")
            }
            first.append(m.array)
            second.append(v.array)
        }
        (firstMoments, secondMoments, self.steps) = (first, second, steps)
    }
}
