public import MassAutograd
import MassTensor

/// Training a `ConvNet` from scratch on labelled images: AdamW on shuffled mini-batches, a linear warm-up then
/// cosine decay, evaluation on the validation part after each epoch, the best epoch's weights kept (early stopping
/// on validation accuracy).
public struct ImageTraining: Sendable {
    public struct Settings: Sendable, Codable, Equatable {
        public var epochs = 5
        public var batchSize = 64
        public var learningRate: Float = 1e-3
        public var weightDecay: Float = 1e-4
        public var warmup: Float = 0.02
        public var dropout: Float = 0.25
        public var patience = 3
        public var seed: UInt64 = 42

        public init() {}

        enum CodingKeys: String, CodingKey {
            case epochs, warmup, dropout, patience, seed
            case batchSize = "batch_size"
            case learningRate = "learning_rate"
            case weightDecay = "weight_decay"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Settings()
            epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? d.epochs
            batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
            learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? d.learningRate
            weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? d.weightDecay
            warmup = try c.decodeIfPresent(Float.self, forKey: .warmup) ?? d.warmup
            dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? d.dropout
            patience = try c.decodeIfPresent(Int.self, forKey: .patience) ?? d.patience
            seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        }

        public func validate() throws(TrainingError) {
            func bad(_ key: String, _ why: String) -> TrainingError { TrainingError(.badConfig, "'\(key)' \(why)") }
            guard epochs > 0 else { throw bad("epochs", "must be positive") }
            guard batchSize > 0 else { throw bad("batch_size", "must be positive") }
            guard learningRate > 0, learningRate.isFinite else { throw bad("learning_rate", "must be positive") }
            guard weightDecay >= 0 else { throw bad("weight_decay", "must not be negative") }
            guard warmup >= 0 && warmup < 1 else { throw bad("warmup", "must be in [0, 1)") }
            guard dropout >= 0 && dropout < 1 else { throw bad("dropout", "must be in [0, 1)") }
            guard patience > 0 else { throw bad("patience", "must be positive") }
        }
    }

    /// Gives a ConvNet's run `threads` compute threads: oneDNN's convolutions take them all, OpenBLAS (the small
    /// dense layers) one, so that the two pools never spin against each other.
    public static func setThreads(_ threads: Int) throws {
        try BLAS.setThreads(1)
        ConvolutionBackend.threads = threads
    }

    public let settings: Settings

    public init(_ settings: Settings) { self.settings = settings }

    public func train(
        _ model: ConvNet, data: ImageDataset, train: [Int], validation: [Int],
        progress: (FineTuning.Step) -> Void = { _ in }, evaluated: (HeadTraining.Epoch) -> Void = { _ in }
    ) throws(TrainingError) -> FineTuning.Result {
        try settings.validate()
        guard !train.isEmpty, !validation.isEmpty else {
            throw TrainingError(.badConfig, "the train and validation parts must not be empty")
        }
        model.dropout = settings.dropout
        let parameters = model.parameters
        let perEpoch = (train.count + settings.batchSize - 1) / settings.batchSize
        let totalSteps = perEpoch * settings.epochs
        let schedule = LearningRateSchedule(
            peak: settings.learningRate, warmupSteps: Int(Float(totalSteps) * settings.warmup),
            totalSteps: totalSteps, decay: .cosine)
        var optimizer = AdamW(parameters, learningRate: settings.learningRate, weightDecay: settings.weightDecay)
        var generator = SeededGenerator(seed: settings.seed)
        var stopping = EarlyStopping(patience: settings.patience)
        var best = parameters.map(\.value)
        var history: [HeadTraining.Epoch] = []
        var step = 0
        for epoch in 1...settings.epochs {
            let order = Sampling.shuffled(train.count, seed: settings.seed &+ UInt64(epoch)).map { train[$0] }
            var lossSum = 0.0
            for start in stride(from: 0, to: order.count, by: settings.batchSize) {
                let batch = Array(order[start..<min(start + settings.batchSize, order.count)])
                let (pixels, labels) = data.batch(batch)
                for p in parameters { p.zeroGrad() }
                let lossValue: Float
                do {
                    let loss = Loss.crossEntropy(
                        model.logits(pixels, count: batch.count, training: true, generator: &generator),
                        labels: labels)
                    lossValue = loss.scalar
                    guard lossValue.isFinite else {
                        throw TrainingError(
                            .diverged, "the loss became \(lossValue) at step \(step + 1); lower learning_rate")
                    }
                    loss.backward()
                }
                optimizer.learningRate = schedule.rate(at: step)
                optimizer.step()
                step += 1
                lossSum += Double(lossValue) * Double(batch.count)
                progress(FineTuning.Step(epoch: epoch, step: step, totalSteps: totalSteps, loss: Double(lossValue)))
            }
            let (validationLoss, accuracy, halves) = evaluate(model, data: data, indices: validation)
            let record = HeadTraining.Epoch(
                epoch: epoch, trainLoss: lossSum / Double(train.count), validationLoss: validationLoss,
                validationAccuracy: accuracy, validationHalves: halves)
            history.append(record)
            evaluated(record)
            if stopping.record(accuracy, tieBreak: validationLoss) { best = parameters.map(\.value) }
            if stopping.shouldStop { break }
        }
        for (p, values) in zip(parameters, best) { p.update { $0 = values } }
        return FineTuning.Result(epochs: history, bestEpoch: stopping.bestEvaluation + 1)
    }

    /// Mean cross-entropy, accuracy and the halves' accuracies (`ValidationHalves`) on `indices`, without dropout.
    public func evaluate(_ model: ConvNet, data: ImageDataset, indices: [Int]) -> (
        loss: Double, accuracy: Double, halves: [Double]?
    ) {
        guard !indices.isEmpty else { return (0, 0, nil) }
        var generator = SeededGenerator(seed: 0)
        var loss = 0.0
        var correct: [Bool] = []
        for start in stride(from: 0, to: indices.count, by: 256) {
            let chunk = Array(indices[start..<min(start + 256, indices.count)])
            let (pixels, labels) = data.batch(chunk)
            let logits = model.logits(pixels, count: chunk.count, training: false, generator: &generator)
            loss += Double(Loss.crossEntropy(logits, labels: labels).scalar) * Double(chunk.count)
            for (r, label) in labels.enumerated() {
                let row = logits.value[(r * model.classes)..<((r + 1) * model.classes)]
                correct.append(row.firstIndex(of: row.max()!)! - row.startIndex == label)
            }
        }
        let right = Double(correct.filter { $0 }.count)
        return (loss / Double(indices.count), right / Double(indices.count), ValidationHalves.accuracies(correct))
    }
}
