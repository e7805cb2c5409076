import Foundation
public import MassAutograd

/// Full fine-tuning of a sentence encoder with a classification head: AdamW over every weight, a linear warm-up
/// then linear decay, gradient clipping, batches of similar length, evaluation on the validation part after each
/// epoch, and the best epoch's weights kept (early stopping on validation accuracy).
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

        public init() {}

        enum CodingKeys: String, CodingKey {
            case epochs, warmup, dropout, patience, seed
            case batchSize = "batch_size"
            case learningRate = "learning_rate"
            case weightDecay = "weight_decay"
            case maxLength = "max_length"
            case clipNorm = "clip_norm"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Settings()
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

    public func train(
        _ model: SentenceEncoderClassifier, texts: [String], labels: [Int], train: [Int], validation: [Int],
        progress: (Step) -> Void = { _ in }, evaluated: (HeadTraining.Epoch) -> Void = { _ in }
    ) throws(TrainingError) -> Result {
        try settings.validate()
        model.encoder.dropout = settings.dropout
        let lengths = texts.map { min($0.utf8.count, settings.maxLength * 4) }
        let perEpoch = (train.count + settings.batchSize - 1) / settings.batchSize
        let totalSteps = perEpoch * settings.epochs
        let schedule = LearningRateSchedule(
            peak: settings.learningRate, warmupSteps: Int(Float(totalSteps) * settings.warmup), totalSteps: totalSteps)
        let parameters = model.parameters
        var optimizer = AdamW(parameters, learningRate: settings.learningRate, weightDecay: settings.weightDecay)
        var generator = SeededGenerator(seed: settings.seed)
        var stopping = EarlyStopping(patience: settings.patience)
        var best = parameters.map(\.value)
        var history: [HeadTraining.Epoch] = []
        var step = 0
        for epoch in 1...settings.epochs {
            var lossSum = 0.0
            let batches = Sampling.batchesByLength(
                train, lengths: { lengths[$0] }, size: settings.batchSize, seed: settings.seed &+ UInt64(epoch))
            for batch in batches {
                let (ids, types, mask) = model.batch(batch.map { texts[$0] }, maxLength: settings.maxLength)
                let loss = Loss.crossEntropy(
                    model.logits(ids: ids, typeIds: types, mask: mask, generator: &generator),
                    labels: batch.map { labels[$0] })
                guard loss.scalar.isFinite else {
                    throw TrainingError(
                        .diverged, "the loss became \(loss.scalar) at step \(step + 1); lower learning_rate")
                }
                for p in parameters { p.zeroGrad() }
                loss.backward()
                clipGradientNorm(parameters, maxNorm: settings.clipNorm)
                optimizer.learningRate = schedule.rate(at: step)
                optimizer.step()
                step += 1
                lossSum += Double(loss.scalar) * Double(batch.count)
                progress(Step(epoch: epoch, step: step, totalSteps: totalSteps, loss: Double(loss.scalar)))
            }
            model.encoder.dropout = 0
            let (validationLoss, accuracy) = evaluate(model, texts: texts, labels: labels, indices: validation)
            model.encoder.dropout = settings.dropout
            let record = HeadTraining.Epoch(
                epoch: epoch, trainLoss: lossSum / Double(train.count), validationLoss: validationLoss,
                validationAccuracy: accuracy)
            history.append(record)
            evaluated(record)
            if stopping.record(accuracy) { best = parameters.map(\.value) }
            if stopping.shouldStop { break }
        }
        for (p, values) in zip(parameters, best) { p.update { $0 = values } }
        model.encoder.dropout = 0
        return Result(epochs: history, bestEpoch: stopping.bestEvaluation + 1)
    }

    /// Mean cross-entropy and accuracy on `indices`, without dropout.
    public func evaluate(_ model: SentenceEncoderClassifier, texts: [String], labels: [Int], indices: [Int]) -> (
        loss: Double, accuracy: Double
    ) {
        guard !indices.isEmpty else { return (0, 0) }
        var generator = SeededGenerator(seed: 0)
        var loss = 0.0
        var correct = 0
        let classes = model.headBias.count
        for start in stride(from: 0, to: indices.count, by: 64) {
            let chunk = Array(indices[start..<min(start + 64, indices.count)])
            let (ids, types, mask) = model.batch(chunk.map { texts[$0] }, maxLength: settings.maxLength)
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
