import Foundation
public import MassAutograd

/// Full fine-tuning of a sentence encoder with a classification head: AdamW over every weight, a linear warm-up
/// then linear decay, gradient clipping, gradient accumulation, batches of similar length, evaluation on the
/// validation part after each epoch, the best epoch's weights kept (early stopping on validation accuracy), and
/// checkpoints a later run resumes from exactly (`FineTuningCheckpoint`).
public struct FineTuning: Sendable {
    public struct Settings: Sendable, Codable, Equatable {
        public var epochs = 3
        public var batchSize = 32
        public var learningRate: Float = 5e-5
        public var weightDecay: Float = 0.01
        /// The share of all steps spent warming up.
        public var warmup: Float = 0.1
        public var maxLength = 128
        public var clipNorm: Float = 1
        public var dropout: Float = 0.1
        public var patience = 2
        public var seed: UInt64 = 42
        /// Batches whose gradients add up before one optimizer step (the effective batch is this times
        /// `batch_size`).
        public var accumulate = 1
        /// Optimizer steps between checkpoints (when the run has a checkpoint folder); each epoch's end saves too.
        public var checkpointEvery = 50

        public init() {}

        enum CodingKeys: String, CodingKey {
            case epochs, warmup, dropout, patience, seed, accumulate
            case checkpointEvery = "checkpoint_every"
            case batchSize = "batch_size"
            case learningRate = "learning_rate"
            case weightDecay = "weight_decay"
            case maxLength = "max_length"
            case clipNorm = "clip_norm"
        }

        public init(from decoder: any Decoder) throws { try self.init(from: decoder, defaults: Settings()) }

        /// Decodes the keys given, `defaults` for the others.
        public init(from decoder: any Decoder, defaults d: Settings) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? d.epochs
            batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
            learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? d.learningRate
            weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? d.weightDecay
            warmup = try c.decodeIfPresent(Float.self, forKey: .warmup) ?? d.warmup
            maxLength = try c.decodeIfPresent(Int.self, forKey: .maxLength) ?? d.maxLength
            clipNorm = try c.decodeIfPresent(Float.self, forKey: .clipNorm) ?? d.clipNorm
            dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? d.dropout
            patience = try c.decodeIfPresent(Int.self, forKey: .patience) ?? d.patience
            seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
            accumulate = try c.decodeIfPresent(Int.self, forKey: .accumulate) ?? d.accumulate
            checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? d.checkpointEvery
        }

        public func validate() throws(TrainingError) {
            func bad(_ key: String, _ why: String) -> TrainingError { TrainingError(.badConfig, "'\(key)' \(why)") }
            guard epochs > 0 else { throw bad("epochs", "must be positive") }
            guard batchSize > 0 else { throw bad("batch_size", "must be positive") }
            guard learningRate > 0, learningRate.isFinite else { throw bad("learning_rate", "must be positive") }
            guard weightDecay >= 0 else { throw bad("weight_decay", "must not be negative") }
            guard warmup >= 0 && warmup < 1 else { throw bad("warmup", "must be in [0, 1)") }
            guard maxLength >= 2 else { throw bad("max_length", "must be at least 2") }
            guard clipNorm > 0 else { throw bad("clip_norm", "must be positive") }
            guard dropout >= 0 && dropout < 1 else { throw bad("dropout", "must be in [0, 1)") }
            guard patience > 0 else { throw bad("patience", "must be positive") }
            guard accumulate > 0 else { throw bad("accumulate", "must be positive") }
            guard checkpointEvery > 0 else { throw bad("checkpoint_every", "must be positive") }
        }
    }

    /// Where training is, for progress lines.
    public struct Step: Sendable {
        public var epoch: Int
        public var step: Int
        public var totalSteps: Int
        public var loss: Double
    }

    public struct Result: Sendable {
        public var epochs: [HeadTraining.Epoch]
        public var bestEpoch: Int
    }

    public let settings: Settings

    public init(_ settings: Settings) { self.settings = settings }

    /// Trains `model` on `train`, evaluating on `validation` after each epoch. With `checkpoints`, saves the run's
    /// whole state every `checkpoint_every` optimizer steps and at each epoch's end, and resumes from the newest
    /// checkpoint there (the same settings required): the resumed run computes what an uninterrupted one would.
    public func train(
        _ model: SentenceEncoderClassifier, texts: [String], labels: [Int], train: [Int], validation: [Int],
        checkpoints: URL? = nil, progress: (Step) -> Void = { _ in },
        evaluated: (HeadTraining.Epoch) -> Void = { _ in }
    ) throws(TrainingError) -> Result {
        try self.train(
            ClassificationObjective(model, texts: texts, labels: labels), lengths: texts.map(\.utf8.count),
            train: train, validation: validation, checkpoints: checkpoints, progress: progress, evaluated: evaluated)
    }

    /// Trains `objective`'s model on the examples `train` (`lengths` their sizes, for batching by length),
    /// evaluating on `validation` after each epoch and keeping the best epoch's weights (by the objective's
    /// metric, higher is better). With `checkpoints`, saves the run's whole state every `checkpoint_every`
    /// optimizer steps and at each epoch's end, and resumes from the newest checkpoint there (the same settings
    /// and `tag` required): the resumed run computes what an uninterrupted one would.
    public func train(
        _ objective: some FineTuningObjective, lengths: [Int], train: [Int], validation: [Int],
        checkpoints: URL? = nil, tag: String? = nil, progress: (Step) -> Void = { _ in },
        evaluated: (HeadTraining.Epoch) -> Void = { _ in }
    ) throws(TrainingError) -> Result {
        try settings.validate()
        objective.dropout = settings.dropout
        let lengths = lengths.map { min($0, settings.maxLength * 4) }
        let batchesPerEpoch = (train.count + settings.batchSize - 1) / settings.batchSize
        let perEpoch = (batchesPerEpoch + settings.accumulate - 1) / settings.accumulate
        let totalSteps = perEpoch * settings.epochs
        let schedule = LearningRateSchedule(
            peak: settings.learningRate, warmupSteps: Int(Float(totalSteps) * settings.warmup), totalSteps: totalSteps)
        let parameters = objective.parameters
        var optimizer = AdamW(parameters, learningRate: settings.learningRate, weightDecay: settings.weightDecay)
        var state = FineTuningCheckpoint.State(
            settings: settings, epoch: 1, group: 0, step: 0, lossSum: 0, history: [],
            stopping: EarlyStopping(patience: settings.patience), generator: SeededGenerator(seed: settings.seed),
            tag: tag)
        var best = parameters.map(\.value)
        if let checkpoints, let saved = try FineTuningCheckpoint.load(from: checkpoints) {
            guard saved.state.settings == settings, saved.state.tag == tag else {
                throw TrainingError(
                    .badState,
                    "\(checkpoints.path) holds a run with other settings; use the same configuration or remove it")
            }
            try saved.restore(parameters: parameters, optimizer: &optimizer, best: &best)
            state = saved.state
        }
        func save() throws(TrainingError) {
            guard let checkpoints else { return }
            try FineTuningCheckpoint.save(
                state, parameters: parameters, optimizer: optimizer, best: best, to: checkpoints)
        }
        while state.epoch <= settings.epochs {
            let batches = Sampling.batchesByLength(
                train, lengths: { lengths[$0] }, size: settings.batchSize, seed: settings.seed &+ UInt64(state.epoch))
            let groups = stride(from: 0, to: batches.count, by: settings.accumulate).map {
                Array(batches[$0..<min($0 + settings.accumulate, batches.count)])
            }
            while state.group < groups.count {
                let group = groups[state.group]
                let loss = try accumulateGradients(
                    objective, group: group, generator: &state.generator, step: state.step)
                clipGradientNorm(parameters, maxNorm: settings.clipNorm)
                optimizer.learningRate = schedule.rate(at: state.step)
                optimizer.step()
                state.step += 1
                state.group += 1
                state.lossSum += loss * Double(group.reduce(0) { $0 + $1.count })
                progress(Step(epoch: state.epoch, step: state.step, totalSteps: totalSteps, loss: loss))
                if state.step % settings.checkpointEvery == 0 && state.group < groups.count { try save() }
            }
            objective.dropout = 0
            let (validationLoss, metric) = objective.evaluate(validation, maxLength: settings.maxLength)
            objective.dropout = settings.dropout
            let record = HeadTraining.Epoch(
                epoch: state.epoch, trainLoss: state.lossSum / Double(train.count), validationLoss: validationLoss,
                validationAccuracy: metric)
            state.history.append(record)
            evaluated(record)
            if state.stopping.record(metric, tieBreak: validationLoss) { best = parameters.map(\.value) }
            let stop = state.stopping.shouldStop
            (state.epoch, state.group, state.lossSum) = (stop ? settings.epochs + 1 : state.epoch + 1, 0, 0)
            try save()
            if stop { break }
        }
        for (p, values) in zip(parameters, best) { p.update { $0 = values } }
        objective.dropout = 0
        return Result(epochs: state.history, bestEpoch: state.stopping.bestEvaluation + 1)
    }

    /// Forward and backward passes over `group`'s batches, the gradients adding up to those of the group's mean
    /// loss (each batch's mean loss weighted by its share of the group's examples); returns that loss.
    public func accumulateGradients(
        _ model: SentenceEncoderClassifier, group: [[Int]], texts: [String], labels: [Int],
        generator: inout SeededGenerator, step: Int
    ) throws(TrainingError) -> Double {
        try accumulateGradients(
            ClassificationObjective(model, texts: texts, labels: labels), group: group, generator: &generator,
            step: step)
    }

    /// Forward and backward passes over `group`'s batches of `objective`, the gradients adding up to those of the
    /// group's mean loss (each batch's mean loss weighted by its share of the group's examples); returns that loss.
    public func accumulateGradients(
        _ objective: some FineTuningObjective, group: [[Int]], generator: inout SeededGenerator, step: Int
    ) throws(TrainingError) -> Double {
        let total = group.reduce(0) { $0 + $1.count }
        for p in objective.parameters { p.zeroGrad() }
        var sum = 0.0
        for batch in group {
            let loss = objective.loss(batch, maxLength: settings.maxLength, generator: &generator)
            guard loss.scalar.isFinite else {
                throw TrainingError(
                    .diverged, "the loss became \(loss.scalar) at step \(step + 1); lower learning_rate")
            }
            let share = Float(batch.count) / Float(total)
            loss.backward(seed: [share])
            sum += Double(loss.scalar) * Double(share)
        }
        return sum
    }

    /// Mean cross-entropy and accuracy on `indices`, without dropout.
    public func evaluate(_ model: SentenceEncoderClassifier, texts: [String], labels: [Int], indices: [Int]) -> (
        loss: Double, accuracy: Double
    ) {
        let (loss, accuracy) = ClassificationObjective(model, texts: texts, labels: labels).evaluate(
            indices, maxLength: settings.maxLength)
        return (loss, accuracy)
    }
}

/// What `FineTuning` trains: a model's parameters and dropout, the loss of a batch of examples, an evaluation.
public protocol FineTuningObjective: AnyObject {
    /// Every trained weight, in a fixed order (checkpoints store them so).
    var parameters: [Variable] { get }
    var dropout: Float { get set }
    /// The mean loss of the examples `batch` (indices), the dropout masks drawn from `generator`.
    func loss(_ batch: [Int], maxLength: Int, generator: inout SeededGenerator) -> Variable
    /// The mean loss and the metric early stopping watches (higher is better) on `indices`, without dropout.
    func evaluate(_ indices: [Int], maxLength: Int) -> (loss: Double, metric: Double)
}

/// Cross-entropy of a sentence encoder's head on labelled texts; accuracy as the metric.
public final class ClassificationObjective: FineTuningObjective {
    public let model: SentenceEncoderClassifier
    public let texts: [String]
    public let labels: [Int]

    public init(_ model: SentenceEncoderClassifier, texts: [String], labels: [Int]) {
        (self.model, self.texts, self.labels) = (model, texts, labels)
    }

    public var parameters: [Variable] { model.parameters }
    public var dropout: Float {
        get { model.encoder.dropout }
        set { model.encoder.dropout = newValue }
    }

    public func loss(_ batch: [Int], maxLength: Int, generator: inout SeededGenerator) -> Variable {
        let (ids, types, mask) = model.batch(batch.map { texts[$0] }, maxLength: maxLength)
        return Loss.crossEntropy(
            model.logits(ids: ids, typeIds: types, mask: mask, generator: &generator), labels: batch.map { labels[$0] })
    }

    public func evaluate(_ indices: [Int], maxLength: Int) -> (loss: Double, metric: Double) {
        guard !indices.isEmpty else { return (0, 0) }
        var generator = SeededGenerator(seed: 0)
        var loss = 0.0
        var correct = 0
        let classes = model.headBias.count
        for start in stride(from: 0, to: indices.count, by: 64) {
            let chunk = Array(indices[start..<min(start + 64, indices.count)])
            let (ids, types, mask) = model.batch(chunk.map { texts[$0] }, maxLength: maxLength)
            let logits = model.logits(ids: ids, typeIds: types, mask: mask, generator: &generator)
            loss += Double(Loss.crossEntropy(logits, labels: chunk.map { labels[$0] }).scalar) * Double(chunk.count)
            for (r, i) in chunk.enumerated() {
                let row = Array(logits.value[(r * classes)..<((r + 1) * classes)])
                if row.firstIndex(of: row.max()!) == labels[i] { correct += 1 }
            }
        }
        return (loss / Double(indices.count), Double(correct) / Double(indices.count))
    }
}
