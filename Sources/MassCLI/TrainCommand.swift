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
            gradient clipping, gradient accumulation), with checkpoints --resume continues from. Task \
            "text-embedding-distill": a student with some of the encoder's layers learns its embeddings and \
            token states on unlabelled text. Task "image-classification-head": a head on a frozen image \
            classifier's features; "image-classification-cnn": a ConvNet from scratch. Every dataset is checked \
            whole before anything runs. Writes to "output": model/ (what mass serve loads: the encoder or network \
            with its trained head.safetensors, or the student; the ConvNet's weights), metrics.json (every epoch, \
            the test figure), split.json (the seeded split, as indices), loss.svg and accuracy.svg (cosine.svg \
            for a student). Paths are relative to the current folder. For queued jobs see mass jobs and mass \
            worker. See docs/training.md.
            """)

    @Argument(help: "The job's JSON configuration (docs/training.md).")
    var config: String

    @Option(name: .long, help: "Compute threads (default: every core).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "The run's folder (default: the configuration's 'output').")
    var output: String?

    @Flag(name: .long, help: "Resume from the newest checkpoint in the run's folder (else a new run starts over).")
    var resume = false

    @Flag(name: .customLong("exit-with-stdin"), help: .hidden)
    var exitWithStdin = false

    /// A study's trial: a `report {...}` line on standard error after each epoch, for the pruner, whose verdict
    /// ("continue" or "prune") is read from standard input (so it implies --exit-with-stdin: a driver that is gone
    /// cannot answer).
    @Flag(name: .long, help: .hidden)
    var reports = false

    /// A study's trials share the vectors computed once with a frozen model (embeddings, features) here.
    @Option(name: .customLong("vectors-cache"), help: .hidden)
    var vectorsCache: String?

    func run() throws {
        try Mass.checkCPU()
        // A worker's training child: its standard input is a pipe the worker never writes to, closed when the
        // worker dies, however it dies. Training then stops at once instead of running on unowned.
        if exitWithStdin || reports { ParentWatch.start() }
        let config: TrainingConfig
        do {
            config = try TrainingConfig.decode(Data(contentsOf: URL(fileURLWithPath: self.config)))
            try config.validate()
        } catch let error as TrainingError {
            throw ValidationError("\(self.config): \(error.message)")
        } catch {
            throw ValidationError("\(self.config): cannot read (\(error.localizedDescription))")
        }
        guard let outputPath = output ?? config.output else {
            throw ValidationError("\(self.config): missing 'output' (or give --output)")
        }
        let out = URL(fileURLWithPath: outputPath)

        let checkpoints = out.appendingPathComponent("checkpoints")
        if !resume { try? FileManager.default.removeItem(at: checkpoints) }
        if config.task == "image-classification-head" {
            return try trainImageHead(config, out: out, checkpoints: checkpoints)
        }
        if !config.isText { return try trainImages(config, out: out, checkpoints: checkpoints) }
        if config.task == "text-embedding-distill" { return try distill(config, out: out, checkpoints: checkpoints) }

        // 1. The dataset, whole, before anything runs.
        let datasetURL = URL(fileURLWithPath: config.dataset.path)
        let dataset: TextDataset
        do {
            dataset = try TextDataset(config.dataset)
        } catch { throw ValidationError("dataset: \(error)") }
        guard dataset.labels.count >= 2 else { throw ValidationError("dataset: needs at least two labels") }
        let split = Sampling.split(
            dataset.examples.count, validation: config.validationShare, test: config.testShare, seed: config.seed,
            fold: config.fold)
        log(
            "dataset: \(dataset.examples.count) examples, labels \(dataset.labels); split \(split.train.count) / \(split.validation.count) / \(split.test.count)"
        )
        let datasetHash = try ArtifactStore.sha256(of: datasetURL).sha256
        let run = Run(
            config: config, out: out, checkpoints: checkpoints, labelNames: dataset.labels, split: split,
            datasetHash: datasetHash)
        if config.task == "text-classification-finetune" {
            return try fineTune(run, dataset)
        }
        try trainHead(run, dataset)
    }

    /// What every task shares.
    struct Run {
        let config: TrainingConfig
        let out: URL
        let checkpoints: URL
        let labelNames: [String]
        let split: (train: [Int], validation: [Int], test: [Int])
        let datasetHash: String
        var encoder: URL { URL(fileURLWithPath: config.encoder ?? "") }

        /// The lineage each saved file carries.
        func metadata(_ settings: some Encodable) throws -> [String: String] {
            // Keys sorted: the same run writes the same bytes.
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return [
                "mass.task": config.task, "mass.parent": config.encoder ?? "", "mass.dataset_sha256": datasetHash,
                "mass.labels": String(decoding: try encoder.encode(labelNames), as: UTF8.self),
                "mass.settings": String(decoding: try encoder.encode(settings), as: UTF8.self),
            ]
        }
    }

    /// An image task's data: the training images (train and validation parts) and the test images (the same
    /// dataset for an image folder), the class names, and what the dataset hash covers.
    struct ImageData {
        let train: ImageDataset
        let test: ImageDataset
        var parts: (train: [Int], validation: [Int], test: [Int])
        let names: [String]
        let hashed: URL
        /// Whether `test` is a dataset of its own (an MNIST-style folder's t10k files) rather than `train`.
        let separateTest: Bool
    }

    /// An MNIST-style folder (train-images-idx3-ubyte.gz and its labels; t10k-* as the test part, the validation
    /// part held out of the training images), or an image folder (a subfolder per class; split as the text tasks
    /// are).
    func loadImages(_ config: TrainingConfig) throws -> ImageData {
        let folder = URL(fileURLWithPath: config.dataset.path)
        let file = { (name: String) in folder.appendingPathComponent(name) }
        // The classes: as many as `dataset.labels` names (MNIST's ten without it).
        let names = config.dataset.labels ?? (0..<10).map(String.init)
        var data: ImageData
        do {
            if FileManager.default.fileExists(atPath: file("train-images-idx3-ubyte.gz").path) {
                let train = try ImageDataset(
                    idxImages: file("train-images-idx3-ubyte.gz"), labels: file("train-labels-idx1-ubyte.gz"),
                    classes: names.count)
                let test = try ImageDataset(
                    idxImages: file("t10k-images-idx3-ubyte.gz"), labels: file("t10k-labels-idx1-ubyte.gz"),
                    classes: names.count)
                let held = Sampling.split(
                    train.count, validation: config.validationShare, test: 0, seed: config.seed, fold: config.fold)
                data = ImageData(
                    train: train, test: test, parts: (held.train, held.validation, Array(0..<test.count)),
                    names: names, hashed: file("train-images-idx3-ubyte.gz"), separateTest: true)
            } else {
                let train = try ImageDataset(
                    folder: folder, side: config.dataset.side ?? 32, channels: config.dataset.channels ?? 3,
                    labels: config.dataset.labels)
                data = ImageData(
                    train: train, test: train,
                    parts: Sampling.split(
                        train.count, validation: config.validationShare, test: config.testShare, seed: config.seed,
                        fold: config.fold),
                    names: config.dataset.labels ?? Self.classFolders(folder), hashed: folder, separateTest: false)
            }
        } catch { throw ValidationError("dataset: \(error)") }
        if let limit = config.dataset.maxTrain { data.parts.train = Array(data.parts.train.prefix(limit)) }
        if let limit = config.dataset.maxValidation {
            data.parts.validation = Array(data.parts.validation.prefix(limit))
        }
        log(
            "dataset: \(data.parts.train.count + data.parts.validation.count) training images (\(data.parts.train.count) / \(data.parts.validation.count) train / validation), \(data.parts.test.count) test, \(data.train.height)×\(data.train.width)"
        )
        return data
    }

    /// Task "image-classification-cnn": a ConvNet from scratch on `loadImages`' data.
    private func trainImages(_ config: TrainingConfig, out: URL, checkpoints: URL) throws {
        let data = try loadImages(config)
        let (train, test, parts, names) = (data.train, data.test, data.parts, data.names)
        guard train.height == test.height, train.width == test.width, train.height == train.width,
            train.height % 4 == 0
        else {
            throw ValidationError("dataset: the images must be square, a multiple of 4 pixels, the same in both parts")
        }
        let settings = config.imageSettings
        try ImageTraining.setThreads(threads)
        let model = ConvNet(
            side: train.height, channels: train.channels, classes: train.classCount, seed: settings.seed)
        let started = Date()
        let printer = StepPrinter(reports: reports ? settings.epochs : nil)
        let result: FineTuning.Result
        do {
            result = try ImageTraining(settings).train(
                model, data: train, train: parts.train, validation: parts.validation, progress: printer.step,
                evaluated: printer.epoch)
        } catch { throw ValidationError("training: \(error.message)") }
        let seconds = Date().timeIntervalSince(started)
        let testAccuracy = ImageTraining(settings).evaluate(model, data: test, indices: parts.test).accuracy
        let hash = try Self.hash(data.hashed)
        let run = Run(
            config: config, out: out, checkpoints: checkpoints, labelNames: names, split: parts, datasetHash: hash)
        let modelFolder = out.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: modelFolder, withIntermediateDirectories: true)
        try model.save(
            to: modelFolder.appendingPathComponent("convnet.safetensors"), metadata: try run.metadata(settings))
        try writeReport(
            run, epochs: result.epochs, bestEpoch: result.bestEpoch,
            validationAccuracy: result.epochs[result.bestEpoch - 1].validationAccuracy, testAccuracy: testAccuracy,
            seconds: ["training": seconds], servedTask: nil)
    }

    /// Task "text-classification-head": the texts embedded once by the frozen encoder (kept as a checkpoint, so
    /// a resumed run skips it), then the head.
    private func trainHead(_ run: Run, _ dataset: TextDataset) throws {
        let config = run.config
        let settings = config.headSettings
        let started = Date()
        let features = try embeddings(run, dataset)
        let embeddingSeconds = Date().timeIntervalSince(started)

        let trainingStarted = Date()
        let reports = self.reports ? EpochReports(epochs: settings.epochs, metric: "accuracy") : nil
        let result: HeadTraining.Result
        do {
            result = try HeadTraining(settings).train(
                features: features, labels: dataset.examples.map(\.label), classes: dataset.labels.count,
                train: run.split.train,
                validation: run.split.validation
            ) { epoch in
                let elapsed = Date().timeIntervalSince(trainingStarted)
                let eta = elapsed / Double(epoch.epoch) * Double(settings.epochs - epoch.epoch)
                log(
                    String(
                        format: "epoch %d/%d  train loss %.4f  validation loss %.4f  accuracy %.4f  ETA ≤ %.0f s",
                        epoch.epoch, settings.epochs, epoch.trainLoss, epoch.validationLoss, epoch.validationAccuracy,
                        eta))
                reports?.report(epoch)
            }
        } catch { throw ValidationError("training: \(error.message)") }
        let trainingSeconds = Date().timeIntervalSince(trainingStarted)
        let testAccuracy = HeadTraining.accuracy(
            result.weights, features: features, labels: dataset.examples.map(\.label), indices: run.split.test)
        let validationAccuracy = result.epochs[result.bestEpoch - 1].validationAccuracy

        // The served model: the encoder's files and the head, its input the encoder's sentence embedding.
        try writeHeadModel(run, weights: result.weights, settings: settings, input: "embedding")
        try writeReport(
            run, epochs: result.epochs, bestEpoch: result.bestEpoch, validationAccuracy: validationAccuracy,
            testAccuracy: testAccuracy, seconds: ["embedding": embeddingSeconds, "training": trainingSeconds])
    }

    /// Every text's embedding by the frozen encoder, from the run's checkpoint when an earlier attempt made them
    /// for the same encoder and dataset.
    private func embeddings(_ run: Run, _ dataset: TextDataset) throws -> [[Float]] {
        try cachedVectors(
            run, file: "embeddings.safetensors",
            key: ["mass.encoder": run.config.encoder ?? "", "mass.dataset_sha256": run.datasetHash],
            count: dataset.examples.count, what: "embeddings: \(dataset.examples.count) texts"
        ) {
            let embedder = try SentenceEmbedder.load(run.encoder)
            return try embedAll(embedder, dataset.examples.map { embedder.tokenize($0.text).ids })
        }
    }

    /// Task "text-classification-finetune": every weight of the encoder and a head, trained together, with
    /// checkpoints in the run's folder.
    private func fineTune(_ run: Run, _ dataset: TextDataset) throws {
        let settings = run.config.fineTuningSettings
        let model = try SentenceEncoderClassifier(
            directory: run.encoder, classes: dataset.labels.count, seed: settings.seed, dropout: settings.dropout)
        guard settings.maxLength <= model.encoder.config.maxPositionEmbeddings else {
            throw ValidationError(
                "finetune: 'max_length' \(settings.maxLength) is more than the encoder's \(model.encoder.config.maxPositionEmbeddings) positions"
            )
        }
        // One product at a time: OpenBLAS's own threads use the cores.
        try BLAS.setThreads(threads)
        let texts = dataset.examples.map(\.text)
        let started = Date()
        let printer = StepPrinter(reports: reports ? settings.epochs : nil)
        let result: FineTuning.Result
        do {
            result = try FineTuning(settings).train(
                model, texts: texts, labels: dataset.examples.map(\.label), train: run.split.train,
                validation: run.split.validation, checkpoints: run.checkpoints, progress: printer.step,
                evaluated: printer.epoch)
        } catch { throw ValidationError("training: \(error.message)") }
        let seconds = Date().timeIntervalSince(started)
        let (_, testAccuracy) = FineTuning(settings).evaluate(
            model, texts: texts, labels: dataset.examples.map(\.label), indices: run.split.test)
        let validationAccuracy = result.epochs[result.bestEpoch - 1].validationAccuracy
        var metadata = try run.metadata(settings)
        metadata["mass.max_length"] = String(settings.maxLength)
        let folder = run.out.appendingPathComponent("model")
        try model.save(to: folder, copyingFrom: run.encoder, metadata: metadata)
        try writeReport(
            run, epochs: result.epochs, bestEpoch: result.bestEpoch, validationAccuracy: validationAccuracy,
            testAccuracy: testAccuracy, seconds: ["training": seconds])
    }

    /// The class subfolders of an image folder, sorted (as ImageDataset orders them).
    static func classFolders(_ folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { name in
            var isFolder: ObjCBool = false
            return !name.hasPrefix(".")
                && FileManager.default.fileExists(
                    atPath: folder.appendingPathComponent(name).path, isDirectory: &isFolder)
                && isFolder.boolValue
        }.sorted()
    }

    /// A file's SHA-256, or a folder's: the SHA-256 of its files' relative paths and SHA-256s, in order.
    static func hash(_ url: URL) throws -> String {
        var isFolder: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder)
        guard isFolder.boolValue else { return try ArtifactStore.sha256(of: url).sha256 }
        let files = (FileManager.default.subpaths(atPath: url.path) ?? []).sorted().filter { path in
            var sub: ObjCBool = false
            return FileManager.default.fileExists(atPath: url.appendingPathComponent(path).path, isDirectory: &sub)
                && !sub.boolValue
        }
        let listing = try files.map { "\($0) \(try ArtifactStore.sha256(of: url.appendingPathComponent($0)).sha256)\n" }
            .joined()
        return try ArtifactStore.sha256(of: Data(listing.utf8))
    }

    /// metrics.json, split.json, the curves, the model folder's mass.json (`servedTask`, when mass serve loads
    /// it), and the summary on standard output. `metric` names what the epochs' `validationAccuracy` holds
    /// ("accuracy", or "cosine" for distillation); `extra` adds to metrics.json.
    func writeReport(
        _ run: Run, epochs: [HeadTraining.Epoch], bestEpoch: Int, validationAccuracy: Double, testAccuracy: Double,
        seconds: [String: Double], servedTask: String? = "text-classification", metric: String = "accuracy",
        lossName: String = "cross-entropy", extra: [String: Any] = [:]
    ) throws {
        let (config, out, split) = (run.config, run.out, run.split)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        if let servedTask {
            try Checkpoint.writeAtomically(
                Data(#"{"task": "\#(servedTask)"}"#.utf8),
                to: out.appendingPathComponent("model").appendingPathComponent("mass.json"))
        }
        var metrics: [String: Any] = [
            "task": config.task, "encoder": config.encoder ?? NSNull(), "dataset": config.dataset.path,
            "dataset_sha256": run.datasetHash, "labels": run.labelNames, "metric": metric,
            "examples": ["train": split.train.count, "validation": split.validation.count, "test": split.test.count],
            "best_epoch": bestEpoch, "validation_\(metric)": validationAccuracy, "test_\(metric)": testAccuracy,
            "seconds": seconds,
            "epochs": epochs.map {
                var epoch: [String: Any] = [
                    "epoch": $0.epoch, "train_loss": $0.trainLoss, "validation_loss": $0.validationLoss,
                    "validation_\(metric)": $0.validationAccuracy,
                ]
                if let halves = $0.validationHalves { epoch["validation_\(metric)_halves"] = halves }
                return epoch
            },
        ]
        // The epoch choice checked on the validation part's halves (ValidationHalves), where the task measures them.
        let halves = epochs.compactMap(\.validationHalves)
        let crossed = halves.count == epochs.count ? ValidationHalves.crossed(halves) : nil
        if let crossed { metrics["crossed_validation_\(metric)"] = crossed }
        metrics.merge(extra) { $1 }
        try JSONSerialization.data(withJSONObject: metrics, options: [.prettyPrinted, .sortedKeys]).write(
            to: out.appendingPathComponent("metrics.json"))
        try JSONSerialization.data(
            withJSONObject: [
                "seed": config.seed, "train": split.train, "validation": split.validation,
                "test": split.test,
            ]
        ).write(to: out.appendingPathComponent("split.json"))
        let loss = CurvePlot.svg(
            [
                .init(name: "train", values: epochs.map(\.trainLoss)),
                .init(name: "validation", values: epochs.map(\.validationLoss)),
            ], title: "loss", yLabel: lossName)
        try PlotFiles.write(svg: loss, to: out.appendingPathComponent("loss"))
        let curve = CurvePlot.svg(
            [.init(name: "validation", values: epochs.map(\.validationAccuracy))], title: metric,
            yLabel: "validation \(metric)")
        try PlotFiles.write(svg: curve, to: out.appendingPathComponent(metric))
        var summary: [String: Any] = [
            "output": out.path, "best_epoch": bestEpoch, "validation_\(metric)": validationAccuracy,
            "test_\(metric)": testAccuracy, "test_examples": split.test.count,
        ]
        if let crossed { summary["crossed_validation_\(metric)"] = crossed }
        print(
            String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self)
        )
    }

    func log(_ line: String) { StepPrinter.log(line) }
}

/// Progress lines of the step-wise tasks on standard error: a step line at most every 5 seconds (epoch, step,
/// loss, ETA from the steps this run made), a line per finished epoch, and where a resumed run started.
final class StepPrinter {
    /// What the epochs' validation metric is ("accuracy", or "cosine" for distillation).
    private let metric: String
    private let started = Date()
    private var lastPrint = Date.distantPast
    private var firstStep: Int?

    /// A study's trial: each epoch also prints its `report` line (given the run's planned epochs).
    private let reports: EpochReports?

    init(metric: String = "accuracy", reports epochs: Int? = nil) {
        self.metric = metric
        self.reports = epochs.map { EpochReports(epochs: $0, metric: metric) }
    }

    func step(_ step: FineTuning.Step) {
        if firstStep == nil {
            firstStep = step.step - 1
            if step.step > 1 { Self.log("resumed at step \(step.step - 1) of \(step.totalSteps)") }
        }
        guard Date().timeIntervalSince(lastPrint) >= 5 || step.step == step.totalSteps else { return }
        lastPrint = Date()
        let eta =
            Date().timeIntervalSince(started) / Double(step.step - (firstStep ?? 0))
            * Double(step.totalSteps - step.step)
        Self.log(
            String(
                format: "epoch %d  step %d/%d  loss %.4f  ETA %.0f s", step.epoch, step.step, step.totalSteps,
                step.loss, eta))
    }

    func epoch(_ epoch: HeadTraining.Epoch) {
        Self.log(
            String(
                format: "epoch %d done: train loss %.4f  validation loss %.4f  %@ %.4f", epoch.epoch,
                epoch.trainLoss, epoch.validationLoss, metric, epoch.validationAccuracy))
        reports?.report(epoch)
    }

    /// The exit status of a run its study pruned.
    static let prunedStatus: Int32 = 3

    static func log(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}

/// A study's trial's epoch reports on standard error, one line each, for the worker's pruner:
/// `report {"step": epoch, "epochs": planned, "train_loss", "validation_loss", "validation_<metric>",
/// "best_validation_loss", "best_validation_<metric>"}` (the best so far: lowest loss, highest metric), then the
/// worker's verdict awaited on standard input.
final class EpochReports {
    let epochs: Int
    let metric: String
    private var bestLoss = Double.infinity
    private var bestMetric = -Double.infinity

    init(epochs: Int, metric: String) {
        self.epochs = epochs
        self.metric = metric
    }

    func report(_ epoch: HeadTraining.Epoch) {
        bestLoss = min(bestLoss, epoch.validationLoss)
        bestMetric = max(bestMetric, epoch.validationAccuracy)
        let fields: [String: Double] = [
            "step": Double(epoch.epoch), "epochs": Double(epochs), "train_loss": epoch.trainLoss,
            "validation_loss": epoch.validationLoss, "validation_\(metric)": epoch.validationAccuracy,
            "best_validation_loss": bestLoss, "best_validation_\(metric)": bestMetric,
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        guard let data = try? encoder.encode(fields) else { return }
        StepPrinter.log("report " + String(decoding: data, as: UTF8.self))
        // The worker answers each report with the pruner's verdict; the run waits for it, as an Optuna trial's
        // should_prune() does, so a pruned trial stops at the step that was judged.
        if ParentWatch.awaitVerdict() {
            StepPrinter.log("pruned after epoch \(epoch.epoch)")
            exit(StepPrinter.prunedStatus)
        }
    }

    static func log(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}
