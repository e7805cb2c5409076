import Foundation
import MassModels
import MassTensor
import MassTraining
import MassWeights

/// What the tasks on frozen models share: vectors computed once (embeddings, a teacher's targets, image features)
/// and kept in the run's checkpoints, and a trained head written beside the frozen model's files.
extension TrainCommand {
    /// `count` vectors from `compute`, kept in the run's checkpoints as `file`: read back instead when an earlier
    /// attempt made as many under the same `key` (the model, the dataset, ...). `what` names them in the log
    /// ("features: 100 images").
    func cachedVectors(
        _ run: Run, file: String, key: [String: String], count: Int, what: String, compute: () throws -> [[Float]]
    ) throws -> [[Float]] {
        // A study's trials share one folder (--vectors-cache): the key tells the model and data apart.
        let folder = vectorsCache.map { URL(fileURLWithPath: $0) } ?? run.checkpoints
        let cache = folder.appendingPathComponent(file)
        if let stored = try? SafeTensorsFile(path: cache.path),
            key.allSatisfy({ stored.metadata[$0.key] == $0.value }),
            let tensor = try? stored.tensor("vectors").toFloat32(), tensor.shape.count == 2, tensor.shape[0] == count
        {
            log("\(what) from the checkpoint")
            let width = tensor.shape[1]
            let values = tensor.array  // a copy each time it is read: once, not once per row
            return (0..<count).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
        }
        let started = Date()
        let vectors = try compute()
        log(
            "\(what) through \(run.config.encoder ?? "") in \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
        )
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Checkpoint.writeAtomically(
            SafeTensorsWriter.encode(
                [("vectors", [vectors.count, vectors.first?.count ?? 0], vectors.flatMap { $0 })], metadata: key),
            to: cache)
        return vectors
    }

    /// Every sequence's embedding by `embedder`, one worker per thread.
    func embedAll(_ embedder: SentenceEmbedder, _ sequences: [[Int32]]) throws -> [[Float]] {
        try OfflineEmbedder(model: embedder, workers: threads, threadsPerWorker: 1).run(
            sequences, batches: OfflineEmbedder.plan(lengths: sequences.map(\.count), batchSize: 64, tokenBudget: 4096)
        ).embeddings
    }

    /// The served model of a head task: the frozen model's files (linked; not `excluding`) and the head's weights
    /// as `head.safetensors`, its input (`mass.head_input`) and the run's lineage in the metadata.
    func writeHeadModel(
        _ run: Run, weights: [(name: String, shape: [Int], values: [Float])], settings: some Encodable,
        input: String, excluding: Set<String> = []
    ) throws {
        let model = run.out.appendingPathComponent("model")
        try Checkpoint.copyFolder(run.encoder, to: model, except: excluding.union(["head.safetensors", "mass.json"]))
        var metadata = try run.metadata(settings)
        metadata["mass.head_input"] = input
        try Checkpoint.writeAtomically(
            SafeTensorsWriter.encode(weights.map { ($0.name, $0.shape, $0.values) }, metadata: metadata),
            to: model.appendingPathComponent("head.safetensors"))
    }
}
