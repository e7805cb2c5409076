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
            regression, or one hidden layer); the texts are embedded once, the head trains with AdamW, stopping \
            early on the validation loss. Task "text-classification-finetune": the encoder itself fine-tuned \
            with a linear head on its mean-pooled embedding (AdamW over every weight, warm-up and linear decay, \
            gradient clipping). The dataset (JSON Lines or CSV) is checked whole before anything runs. Writes to \
            "output": head.safetensors (and the fine-tuned encoder in model/), metrics.json (every epoch, the test \
            accuracy), split.json (the seeded split, as indices), loss.svg and accuracy.svg. Paths are relative \
            to the current folder. See docs/training.md.
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
        var finetune: FineTuning.Settings?
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
        let tasks = ["text-classification-head", "text-classification-finetune"]
        guard tasks.contains(config.task) else {
            throw ValidationError(
                "\(self.config): task '\(config.task)' is unknown (\(tasks.joined(separator: ", ")))")
        }
        let settings = config.head ?? HeadTraining.Settings()
        do { try settings.validate() } catch { throw ValidationError("\(self.config): head: \(error.message)") }
        let tuning = config.finetune ?? FineTuning.Settings()
        do { try tuning.validate() } catch { throw ValidationError("\(self.config): finetune: \(error.message)") }
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

        if config.task == "text-classification-finetune" {
            return try fineTune(config, dataset: dataset, split: split, settings: tuning, datasetURL: datasetURL)
        }

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
        try writeReport(
            config, out: out, dataset: dataset, split: split, epochs: result.epochs, bestEpoch: result.bestEpoch,
            validationAccuracy: validationAccuracy, testAccuracy: testAccuracy, datasetHash: datasetHash,
            seconds: ["embedding": embeddingSeconds, "training": trainingSeconds])
    }

    /// Task "text-classification-finetune": every weight of the encoder and a head, trained together.
    private func fineTune(
        _ config: Config, dataset: TextDataset, split: (train: [Int], validation: [Int], test: [Int]),
        settings: FineTuning.Settings, datasetURL: URL
    ) throws {
        let source = URL(fileURLWithPath: config.encoder)
        let model = try SentenceEncoderClassifier(
            directory: source, classes: dataset.labels.count, seed: settings.seed, dropout: settings.dropout)
        // One product at a time: OpenBLAS's own threads use the cores.
        try BLAS.setThreads(threads)
        let texts = dataset.examples.map(\.text)
        let labels = dataset.examples.map(\.label)
        let started = Date()
        var lastPrint = Date.distantPast
        let result: FineTuning.Result
        do {
            result = try FineTuning(settings).train(
                model, texts: texts, labels: labels, train: split.train, validation: split.validation,
                progress: { step in
                    guard Date().timeIntervalSince(lastPrint) >= 5 || step.step == step.totalSteps else { return }
                    lastPrint = Date()
                    let elapsed = Date().timeIntervalSince(started)
                    let eta = elapsed / Double(step.step) * Double(step.totalSteps - step.step)
                    log(
                        String(
                            format: "epoch %d  step %d/%d  loss %.4f  ETA %.0f s", step.epoch, step.step,
                            step.totalSteps, step.loss, eta))
                },
                evaluated: { epoch in
                    log(
                        String(
                            format: "epoch %d done: train loss %.4f  validation loss %.4f  accuracy %.4f",
                            epoch.epoch, epoch.trainLoss, epoch.validationLoss, epoch.validationAccuracy))
                })
        } catch { throw ValidationError("training: \(error.message)") }
        let seconds = Date().timeIntervalSince(started)
        let (_, testAccuracy) = FineTuning(settings).evaluate(model, texts: texts, labels: labels, indices: split.test)
        let validationAccuracy = result.epochs[result.bestEpoch - 1].validationAccuracy
        let out = URL(fileURLWithPath: config.output)
        let datasetHash = try ArtifactStore.sha256(of: datasetURL).sha256
        let metadata = [
            "mass.task": config.task, "mass.parent": config.encoder, "mass.dataset_sha256": datasetHash,
            "mass.labels": String(decoding: try JSONEncoder().encode(dataset.labels), as: UTF8.self),
            "mass.settings": String(decoding: try JSONEncoder().encode(settings), as: UTF8.self),
        ]
        try model.save(to: out.appendingPathComponent("model"), copyingFrom: source, metadata: metadata)
        try writeReport(
            config, out: out, dataset: dataset, split: split, epochs: result.epochs, bestEpoch: result.bestEpoch,
            validationAccuracy: validationAccuracy, testAccuracy: testAccuracy, datasetHash: datasetHash,
            seconds: ["training": seconds])
    }

    /// metrics.json, split.json, the curves, and the summary on standard output.
    private func writeReport(
        _ config: Config, out: URL, dataset: TextDataset, split: (train: [Int], validation: [Int], test: [Int]),
        epochs: [HeadTraining.Epoch], bestEpoch: Int, validationAccuracy: Double, testAccuracy: Double,
        datasetHash: String, seconds: [String: Double]
    ) throws {
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let metrics: [String: Any] = [
            "task": config.task, "encoder": config.encoder, "dataset": config.dataset.path,
            "dataset_sha256": datasetHash, "labels": dataset.labels,
            "examples": ["train": split.train.count, "validation": split.validation.count, "test": split.test.count],
            "best_epoch": bestEpoch, "validation_accuracy": validationAccuracy, "test_accuracy": testAccuracy,
            "seconds": seconds,
            "epochs": epochs.map {
                [
                    "epoch": $0.epoch, "train_loss": $0.trainLoss, "validation_loss": $0.validationLoss,
                    "validation_accuracy": $0.validationAccuracy,
                ] as [String: Any]
            },
        ]
        try JSONSerialization.data(withJSONObject: metrics, options: [.prettyPrinted, .sortedKeys]).write(
            to: out.appendingPathComponent("metrics.json"))
        try JSONSerialization.data(
            withJSONObject: [
                "seed": config.split?.seed ?? 42, "train": split.train, "validation": split.validation,
                "test": split.test,
            ]
        ).write(to: out.appendingPathComponent("split.json"))
        let loss = CurvePlot.svg(
            [
                .init(name: "train", values: epochs.map(\.trainLoss)),
                .init(name: "validation", values: epochs.map(\.validationLoss)),
            ], title: "loss", yLabel: "cross-entropy")
        try Data(loss.utf8).write(to: out.appendingPathComponent("loss.svg"))
        let accuracy = CurvePlot.svg(
            [.init(name: "validation", values: epochs.map(\.validationAccuracy))], title: "accuracy",
            yLabel: "validation accuracy")
        try Data(accuracy.utf8).write(to: out.appendingPathComponent("accuracy.svg"))
        let summary: [String: Any] = [
            "output": out.path, "best_epoch": bestEpoch, "validation_accuracy": validationAccuracy,
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
