import ArgumentParser
import Foundation
import MassModels
import MassRegistry
import MassTensor
import MassTokenizers
import MassTraining
import MassWeights

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on Mass's engine from a JSON configuration, in the foreground.",
        discussion: """
            Task "text-classification-head": a classifier on a frozen sentence encoder's embeddings (logistic \
            regression, or one hidden layer). The dataset (JSON Lines or CSV) is checked whole before anything \
            runs; texts are embedded once by the encoder; the head trains with AdamW, stopping early on validation \
            accuracy. Writes to "output": head.safetensors, metrics.json (every epoch, the test accuracy), \
            split.json (the seeded split, as indices), loss.svg and accuracy.svg. Paths are relative to the \
            current folder. See docs/training.md.
            """)

    @Argument(help: "The job's JSON configuration (docs/training.md).")
    var config: String

    @Option(name: .long, help: "Compute threads (default: every core).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    struct Config: Decodable {
        struct Dataset: Decodable {
            let path: String
            var text: String?
            var pair: String?
            var label: String?
            var labels: [String]?
            var skipOtherLabels: Bool?
            enum CodingKeys: String, CodingKey {
                case path, text, pair, label, labels
                case skipOtherLabels = "skip_other_labels"
            }
        }
        struct Split: Decodable {
            var validation: Double?
            var test: Double?
            var seed: UInt64?
        }
        let task: String
        let encoder: String
        let dataset: Dataset
        var split: Split?
        var head: HeadTraining.Settings?
        let output: String
    }

    func run() throws {
        try Mass.checkCPU()
        let configURL = URL(fileURLWithPath: config)
        let config: Config
        do {
            config = try JSONDecoder().decode(Config.self, from: Data(contentsOf: configURL))
        } catch let error as DecodingError {
            throw ValidationError("\(self.config): \(Self.describe(error))")
        } catch {
            throw ValidationError("\(self.config): cannot read (\(error.localizedDescription))")
        }
        guard config.task == "text-classification-head" else {
            throw ValidationError("\(self.config): task '\(config.task)' is unknown (text-classification-head)")
        }
        let settings = config.head ?? HeadTraining.Settings()
        do { try settings.validate() } catch { throw ValidationError("\(self.config): head: \(error.message)") }
        let (validationShare, testShare) = (config.split?.validation ?? 0.1, config.split?.test ?? 0.2)
        guard validationShare > 0, testShare >= 0, validationShare + testShare < 1 else {
            throw ValidationError("\(self.config): split: validation must be > 0 and validation + test < 1")
        }
        let seed = config.split?.seed ?? 42
        guard config.dataset.pair == nil else {
            throw ValidationError("\(self.config): dataset.pair: a head on sentence embeddings takes single texts")
        }

        // 1. The dataset, whole, before anything runs.
        let datasetURL = URL(fileURLWithPath: config.dataset.path)
        let dataset: TextDataset
        do {
            dataset = try TextDataset(
                contentsOf: datasetURL,
                columns: .init(
                    text: config.dataset.text ?? "text", pair: config.dataset.pair,
                    label: config.dataset.label ?? "label"),
                labels: config.dataset.labels, skipOtherLabels: config.dataset.skipOtherLabels ?? false)
        } catch { throw ValidationError("dataset: \(error)") }
        guard dataset.labels.count >= 2 else { throw ValidationError("dataset: needs at least two labels") }
        let split = Sampling.split(dataset.examples.count, validation: validationShare, test: testShare, seed: seed)
        log(
            "dataset: \(dataset.examples.count) examples, labels \(dataset.labels); split \(split.train.count) / \(split.validation.count) / \(split.test.count)"
        )

        // 2. Embeddings from the frozen encoder.
        let started = Date()
        let embedder = try SentenceEmbedder.load(URL(fileURLWithPath: config.encoder))
        let sequences = dataset.examples.map { embedder.tokenize($0.text).ids }
        let runner = OfflineEmbedder(model: embedder, workers: threads, threadsPerWorker: 1)
        let (features, _) = try runner.run(
            sequences, batches: OfflineEmbedder.plan(lengths: sequences.map(\.count), batchSize: 64, tokenBudget: 4096))
        let embeddingSeconds = Date().timeIntervalSince(started)
        log("embedded \(features.count) texts with \(config.encoder) in \(String(format: "%.1f", embeddingSeconds)) s")

        // 3. The head.
        let labels = dataset.examples.map(\.label)
        let trainingStarted = Date()
        let result: HeadTraining.Result
        do {
            result = try HeadTraining(settings).train(
                features: features, labels: labels, classes: dataset.labels.count, train: split.train,
                validation: split.validation
            ) { epoch in
                let elapsed = Date().timeIntervalSince(trainingStarted)
                let eta = elapsed / Double(epoch.epoch) * Double(settings.epochs - epoch.epoch)
                log(
                    String(
                        format: "epoch %d/%d  train loss %.4f  validation loss %.4f  accuracy %.4f  ETA ≤ %.0f s",
                        epoch.epoch, settings.epochs, epoch.trainLoss, epoch.validationLoss, epoch.validationAccuracy,
                        eta))
            }
        } catch { throw ValidationError("training: \(error.message)") }
        let trainingSeconds = Date().timeIntervalSince(trainingStarted)
        let testAccuracy = HeadTraining.accuracy(
            result.weights, features: features, labels: labels, indices: split.test)
        let validationAccuracy = result.epochs[result.bestEpoch - 1].validationAccuracy

        // 4. Outputs.
        let out = URL(fileURLWithPath: config.output)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let datasetHash = try ArtifactStore.sha256(of: datasetURL).sha256
        let labelsJSON = String(decoding: try JSONEncoder().encode(dataset.labels), as: UTF8.self)
        let settingsJSON = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        try Checkpoint.writeAtomically(
            SafeTensorsWriter.encode(
                result.weights.map { ($0.name, $0.shape, $0.values) },
                metadata: [
                    "mass.task": config.task, "mass.encoder": config.encoder, "mass.labels": labelsJSON,
                    "mass.dataset_sha256": datasetHash, "mass.settings": settingsJSON,
                ]),
            to: out.appendingPathComponent("head.safetensors"))
        let metrics: [String: Any] = [
            "task": config.task, "encoder": config.encoder, "dataset": config.dataset.path,
            "dataset_sha256": datasetHash, "labels": dataset.labels,
            "examples": ["train": split.train.count, "validation": split.validation.count, "test": split.test.count],
            "best_epoch": result.bestEpoch, "validation_accuracy": validationAccuracy, "test_accuracy": testAccuracy,
            "seconds": ["embedding": embeddingSeconds, "training": trainingSeconds],
            "epochs": result.epochs.map {
                [
                    "epoch": $0.epoch, "train_loss": $0.trainLoss, "validation_loss": $0.validationLoss,
                    "validation_accuracy": $0.validationAccuracy,
                ] as [String: Any]
            },
        ]
        try JSONSerialization.data(withJSONObject: metrics, options: [.prettyPrinted, .sortedKeys]).write(
            to: out.appendingPathComponent("metrics.json"))
        try JSONSerialization.data(
            withJSONObject: ["seed": seed, "train": split.train, "validation": split.validation, "test": split.test]
        ).write(to: out.appendingPathComponent("split.json"))
        let loss = CurvePlot.svg(
            [
                .init(name: "train", values: result.epochs.map(\.trainLoss)),
                .init(name: "validation", values: result.epochs.map(\.validationLoss)),
            ], title: "loss", yLabel: "cross-entropy")
        try Data(loss.utf8).write(to: out.appendingPathComponent("loss.svg"))
        let accuracy = CurvePlot.svg(
            [.init(name: "validation", values: result.epochs.map(\.validationAccuracy))], title: "accuracy",
            yLabel: "validation accuracy")
        try Data(accuracy.utf8).write(to: out.appendingPathComponent("accuracy.svg"))
        let summary: [String: Any] = [
            "output": out.path, "best_epoch": result.bestEpoch, "validation_accuracy": validationAccuracy,
            "test_accuracy": testAccuracy, "test_examples": split.test.count,
        ]
        print(
            String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self)
        )
    }

    private func log(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// A decoding error as a sentence naming the key.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing '\(path(context.codingPath + [key]))'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "'\(path(context.codingPath))' has the wrong type"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "'\(path(context.codingPath))' is not valid"
        @unknown default: return "not a valid configuration"
        }
    }
}
