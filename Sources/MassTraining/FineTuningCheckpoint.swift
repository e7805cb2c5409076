public import Foundation
public import MassAutograd
import MassTensor
import MassWeights

/// A fine-tuning run's whole state on disk, to resume after a crash, a kill or a cancel: the weights, AdamW's
/// moments, the best epoch's weights, and where the run was (epoch, batch group, step, the epoch's loss so far,
/// the history, early stopping, the dropout generator). Each checkpoint is a folder `step-N` written in full
/// before the file `latest` is atomically pointed at it, so a run killed while saving resumes from the one
/// before; older folders are removed after.
public enum FineTuningCheckpoint {
    public struct State: Codable, Sendable, Equatable {
        public var settings: FineTuning.Settings
        /// The epoch in progress (1-based; past the last when training finished).
        public var epoch: Int
        /// The next batch group of that epoch.
        public var group: Int
        /// Optimizer steps taken.
        public var step: Int
        public var lossSum: Double
        public var history: [HeadTraining.Epoch]
        public var stopping: EarlyStopping
        public var generator: SeededGenerator
        /// What else the run must match to be resumed (a distillation's student layers).
        public var tag: String? = nil
    }

    public struct Saved {
        public let state: State
        let folder: URL

        /// Puts the saved weights into `parameters`, the optimizer's moments into `optimizer`, the best weights
        /// into `best`.
        func restore(parameters: [Variable], optimizer: inout AdamW, best: inout [[Float]]) throws(TrainingError) {
            do {
                let weights = try SafeTensorsFile(path: folder.appendingPathComponent("parameters.safetensors").path)
                let kept = try SafeTensorsFile(path: folder.appendingPathComponent("best.safetensors").path)
                guard weights.names.count == parameters.count, kept.names.count == parameters.count else {
                    throw TrainingError(
                        .badState,
                        "\(folder.path): \(weights.names.count) tensors saved, the model has \(parameters.count)")
                }
                var restored: [[Float]] = []
                var bestValues: [[Float]] = []
                for (i, p) in parameters.enumerated() {
                    let value = try weights.tensor("p.\(i)").toFloat32()
                    let b = try kept.tensor("p.\(i)").toFloat32()
                    guard value.shape == p.shape, b.shape == p.shape else {
                        throw TrainingError(
                            .badState, "\(folder.path): tensor \(i) has shape \(value.shape), the model's \(p.shape)")
                    }
                    restored.append(value.array)
                    bestValues.append(b.array)
                }
                try optimizer.restore(
                    SafeTensorsFile(path: folder.appendingPathComponent("optimizer.safetensors").path))
                for (p, values) in zip(parameters, restored) { p.update { $0 = values } }
                best = bestValues
            } catch let error as TrainingError {
                throw error
            } catch {
                throw TrainingError(.badState, "\(folder.path): \(error)")
            }
        }
    }

    /// The newest checkpoint under `directory`, or nil when there is none.
    public static func load(from directory: URL) throws(TrainingError) -> Saved? {
        let pointer = directory.appendingPathComponent("latest")
        guard let name = try? String(contentsOf: pointer, encoding: .utf8) else { return nil }
        let folder = directory.appendingPathComponent(name.trimmingCharacters(in: .whitespacesAndNewlines))
        do {
            let state = try JSONDecoder().decode(
                State.self, from: Data(contentsOf: folder.appendingPathComponent("state.json")))
            return Saved(state: state, folder: folder)
        } catch {
            throw TrainingError(.badState, "\(folder.path)/state.json: \(error)")
        }
    }

    /// Writes `state` and the tensors as `step-N`, points `latest` at it, removes the older folders.
    public static func save(
        _ state: State, parameters: [Variable], optimizer: AdamW, best: [[Float]], to directory: URL
    ) throws(TrainingError) {
        let name = "step-\(state.step)-epoch-\(state.epoch)"
        let folder = directory.appendingPathComponent(name)
        do {
            let manager = FileManager.default
            if manager.fileExists(atPath: folder.path) { try manager.removeItem(at: folder) }
            try manager.createDirectory(at: folder, withIntermediateDirectories: true)
            func tensors(_ values: [[Float]]) -> Data {
                SafeTensorsWriter.encode(
                    zip(parameters, values).enumerated().map { ("p.\($0.offset)", $0.element.0.shape, $0.element.1) },
                    metadata: [:])
            }
            try tensors(parameters.map(\.value)).write(to: folder.appendingPathComponent("parameters.safetensors"))
            try tensors(best).write(to: folder.appendingPathComponent("best.safetensors"))
            try optimizer.state().write(to: folder.appendingPathComponent("optimizer.safetensors"))
            try JSONEncoder().encode(state).write(to: folder.appendingPathComponent("state.json"))
            try Checkpoint.writeAtomically(Data(name.utf8), to: directory.appendingPathComponent("latest"))
            for old in try manager.contentsOfDirectory(atPath: directory.path)
            where old.hasPrefix("step-") && old != name {
                try? manager.removeItem(at: directory.appendingPathComponent(old))
            }
        } catch let error as TrainingError {
            throw error
        } catch {
            throw TrainingError(.io, "cannot write a checkpoint in \(directory.path): \(error.localizedDescription)")
        }
    }
}
