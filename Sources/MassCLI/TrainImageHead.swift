import ArgumentParser
import Foundation
import MassImage
import MassModels
import MassRegistry
import MassTensor
import MassTraining
import MassWeights

extension TrainCommand {
    /// Task "image-classification-head": a head on a frozen image network's pooled features (EfficientNet-Lite0's
    /// 1,280): every image goes through the network once (its pixels resized and cropped as a served image's;
    /// the features kept as a checkpoint, so a resumed run skips them), then the head trains as the text head
    /// task's does. The model folder is the network's files (linked) with `head.safetensors` beside them: an
    /// image classifier mass serve loads, the head in place of the network's own classifier.
    func trainImageHead(_ config: TrainingConfig, out: URL, checkpoints: URL) throws {
        let data = try loadImages(config)
        let settings = config.headSettings
        let hash = try Self.hash(data.hashed)
        // One feature row per training image, then (for an MNIST-style folder) per test image.
        let testOffset = data.separateTest ? data.train.count : 0
        let parts = (
            train: data.parts.train, validation: data.parts.validation,
            test: data.parts.test.map { $0 + testOffset }
        )
        let run = Run(
            config: config, out: out, checkpoints: checkpoints, labelNames: data.names, split: parts,
            datasetHash: hash)
        let started = Date()
        let features = try imageFeatures(run, data, separateTest: testOffset > 0)
        let featureSeconds = Date().timeIntervalSince(started)
        let labels = data.train.labels + (testOffset > 0 ? data.test.labels : [])

        let trainingStarted = Date()
        let result: HeadTraining.Result
        do {
            result = try HeadTraining(settings).train(
                features: features, labels: labels, classes: data.names.count, train: parts.train,
                validation: parts.validation, progress: StepPrinter(reports: reports ? settings.epochs : nil).epoch)
        } catch { throw ValidationError("training: \(error.message)") }
        let trainingSeconds = Date().timeIntervalSince(trainingStarted)
        let testAccuracy = HeadTraining.accuracy(
            result.weights, features: features, labels: labels, indices: parts.test)

        // The network's own labels (labels.txt) are the head's now.
        try writeHeadModel(
            run, weights: result.weights, settings: settings, input: "features", excluding: ["labels.txt"])
        try writeReport(
            run, epochs: result.epochs, bestEpoch: result.bestEpoch,
            validationAccuracy: result.epochs[result.bestEpoch - 1].validationAccuracy, testAccuracy: testAccuracy,
            seconds: ["features": featureSeconds, "training": trainingSeconds], servedTask: "image-classification")
    }

    /// The network's pooled features of every training image (and test image, with `separateTest`), from the
    /// run's checkpoint when an earlier attempt made them for the same network and dataset.
    private func imageFeatures(_ run: Run, _ data: ImageData, separateTest: Bool) throws -> [[Float]] {
        let total = data.train.count + (separateTest ? data.test.count : 0)
        return try cachedVectors(
            run, file: "features.safetensors",
            key: ["mass.encoder": run.config.encoder ?? "", "mass.dataset_sha256": run.datasetHash], count: total,
            what: "features: \(total) images"
        ) {
            let classifier = try ImageClassifier(directory: run.encoder)
            let pool = ComputePool(threads: threads)
            let workspace = EfficientNetWorkspace()
            var features: [[Float]] = []
            features.reserveCapacity(total)
            let started = Date()
            var lastLine = Date()
            for dataset in separateTest ? [data.train, data.test] : [data.train] {
                for start in stride(from: 0, to: dataset.count, by: 64) {
                    let images = (start..<min(start + 64, dataset.count)).map {
                        ImageClassifier.Image.pixels(Self.rgb(dataset, $0))
                    }
                    for result in classifier.features(images, workspace: workspace, pool: pool) {
                        features.append(try result.get())
                    }
                    guard Date().timeIntervalSince(lastLine) >= 5 else { continue }
                    lastLine = Date()
                    let rate = Double(features.count) / Date().timeIntervalSince(started)
                    log(
                        String(
                            format: "features: %d/%d images  %.0f images/s  ETA %.0f s", features.count, total, rate,
                            Double(total - features.count) / rate))
                }
            }
            return features
        }
    }

    /// Image `i` of a dataset as 8-bit RGB (grey repeated in the three channels).
    static func rgb(_ dataset: ImageDataset, _ i: Int) -> RGBImage {
        let pixels = dataset.height * dataset.width
        let values = dataset.pixels[(i * pixels * dataset.channels)..<((i + 1) * pixels * dataset.channels)]
        let bytes = values.map { UInt8(max(0, min(255, ($0 * 255).rounded()))) }
        let rgb = dataset.channels == 3 ? bytes : bytes.flatMap { [$0, $0, $0] }
        return RGBImage(width: dataset.width, height: dataset.height, pixels: rgb)
    }
}
