import Foundation
public import MassAutograd

/// A classification head trained on frozen features (a sentence encoder's embeddings, an image network's pooled
/// features): logistic regression (`hidden` 0) or one hidden ReLU layer, AdamW, mini-batches in a seeded order,
/// early stopping on the validation loss (or accuracy) keeping the best epoch's weights.
public struct HeadTraining: Sendable {
    public struct Settings: Sendable, Codable, Equatable {
        public var hidden = 0
        public var epochs = 100
        public var batchSize = 64
        public var learningRate: Float = 1e-2
        public var weightDecay: Float = 1e-4
        public var labelSmoothing: Float = 0
        /// Epochs without a better monitored value before stopping.
        public var patience = 10
        public var seed: UInt64 = 42
        /// What early stopping watches: "validation_loss" (lower is better) or "validation_accuracy".
        public var monitor = "validation_loss"

        public init() {}

        enum CodingKeys: String, CodingKey {
            case hidden, epochs, patience, seed, monitor
            case batchSize = "batch_size"
            case learningRate = "learning_rate"
            case weightDecay = "weight_decay"
            case labelSmoothing = "label_smoothing"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Settings()
            hidden = try c.decodeIfPresent(Int.self, forKey: .hidden) ?? d.hidden
            epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? d.epochs
            batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
            learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? d.learningRate
            weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? d.weightDecay
            labelSmoothing = try c.decodeIfPresent(Float.self, forKey: .labelSmoothing) ?? d.labelSmoothing
            patience = try c.decodeIfPresent(Int.self, forKey: .patience) ?? d.patience
            seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
            monitor = try c.decodeIfPresent(String.self, forKey: .monitor) ?? d.monitor
        }

        /// Refuses settings that cannot train, naming the key.
        public func validate() throws(TrainingError) {
            func bad(_ key: String, _ why: String) -> TrainingError { TrainingError(.badConfig, "'\(key)' \(why)") }
            guard hidden >= 0 else { throw bad("hidden", "must be 0 (a linear head) or a positive width") }
            guard epochs > 0 else { throw bad("epochs", "must be positive") }
            guard batchSize > 0 else { throw bad("batch_size", "must be positive") }
            guard learningRate > 0, learningRate.isFinite else { throw bad("learning_rate", "must be positive") }
            guard weightDecay >= 0 else { throw bad("weight_decay", "must not be negative") }
            guard labelSmoothing >= 0 && labelSmoothing < 1 else { throw bad("label_smoothing", "must be in [0, 1)") }
            guard patience > 0 else { throw bad("patience", "must be positive") }
            guard ["validation_loss", "validation_accuracy"].contains(monitor) else {
                throw bad("monitor", "must be validation_loss or validation_accuracy")
            }
        }
    }

    /// One epoch's figures.
    public struct Epoch: Sendable, Codable, Equatable {
        public var epoch: Int
        public var trainLoss: Double
        public var validationLoss: Double
        public var validationAccuracy: Double
        /// The accuracy on the validation part's two halves (`ValidationHalves`), for the classification tasks
        /// that measure them.
        public var validationHalves: [Double]? = nil

        enum CodingKeys: String, CodingKey {
            case epoch
            case trainLoss = "train_loss"
            case validationLoss = "validation_loss"
            case validationAccuracy = "validation_accuracy"
            case validationHalves = "validation_accuracy_halves"
        }
    }

    public struct Result: Sendable {
        /// The head's weights at the best epoch, named as a checkpoint (`dense.weight`, ..., `out.bias`).
        public var weights: [(name: String, shape: [Int], values: [Float])]
        public var epochs: [Epoch]
        public var bestEpoch: Int
    }

    public let settings: Settings

    public init(_ settings: Settings) { self.settings = settings }

    /// Trains on `features[train]` and stops on `features[validation]`; `progress` hears each finished epoch.
    public func train(
        features: [[Float]], labels: [Int], classes: Int, train: [Int], validation: [Int],
        progress: (Epoch) -> Void = { _ in }
    ) throws(TrainingError) -> Result {
        try settings.validate()
        guard let width = features.first?.count, !train.isEmpty, !validation.isEmpty else {
            throw TrainingError(.badConfig, "the train and validation parts must not be empty")
        }
        var generator = SeededGenerator(seed: settings.seed)
        func initial(_ rows: Int, _ columns: Int) -> Variable {
            // PyTorch's nn.Linear default: uniform in ±1/√fan_in.
            let bound = 1 / Float(columns).squareRoot()
            let values = (0..<(rows * columns)).map { _ in Float.random(in: -bound...bound, using: &generator) }
            return Variable(values, shape: [rows, columns], requiresGrad: true)
        }
        var layers: [(String, Variable, Variable)] = []
        if settings.hidden > 0 {
            layers.append(
                (
                    "dense", initial(settings.hidden, width),
                    Variable(
                        [Float](repeating: 0, count: settings.hidden), shape: [settings.hidden], requiresGrad: true)
                ))
        }
        let last = settings.hidden > 0 ? settings.hidden : width
        layers.append(
            (
                "out", initial(classes, last),
                Variable([Float](repeating: 0, count: classes), shape: [classes], requiresGrad: true)
            ))
        let parameters = layers.flatMap { [$0.1, $0.2] }
        var optimizer = AdamW(parameters, learningRate: settings.learningRate, weightDecay: settings.weightDecay)
        func forward(_ indices: [Int]) -> Variable {
            var x = Variable(indices.flatMap { features[$0] }, shape: [indices.count, width])
            for (i, (_, w, b)) in layers.enumerated() {
                x = x.linear(w, b)
                if i < layers.count - 1 { x = x.relu() }
            }
            return x
        }
        func evaluate(_ indices: [Int]) -> (loss: Double, accuracy: Double, halves: [Double]?) {
            var loss = 0.0
            var correct: [Bool] = []
            for start in stride(from: 0, to: indices.count, by: 1024) {
                let chunk = Array(indices[start..<min(start + 1024, indices.count)])
                let logits = forward(chunk)
                loss += Double(Loss.crossEntropy(logits, labels: chunk.map { labels[$0] }).scalar) * Double(chunk.count)
                for (r, i) in chunk.enumerated() {
                    let row = logits.value[(r * classes)..<((r + 1) * classes)]
                    correct.append(row.firstIndex(of: row.max()!)! - r * classes == labels[i])
                }
            }
            let right = Double(correct.filter { $0 }.count)
            return (loss / Double(indices.count), right / Double(indices.count), ValidationHalves.accuracies(correct))
        }
        let byLoss = settings.monitor == "validation_loss"
        var stopping = EarlyStopping(patience: settings.patience, higherIsBetter: !byLoss)
        var best = parameters.map(\.value)
        var history: [Epoch] = []
        for epoch in 1...settings.epochs {
            let order = Sampling.shuffled(train.count, seed: settings.seed &+ UInt64(epoch)).map { train[$0] }
            var total = 0.0
            for start in stride(from: 0, to: order.count, by: settings.batchSize) {
                let batch = Array(order[start..<min(start + settings.batchSize, order.count)])
                let loss = Loss.crossEntropy(
                    forward(batch), labels: batch.map { labels[$0] }, labelSmoothing: settings.labelSmoothing)
                guard loss.scalar.isFinite else {
                    throw TrainingError(
                        .diverged, "the loss became \(loss.scalar) in epoch \(epoch); lower learning_rate")
                }
                total += Double(loss.scalar) * Double(batch.count)
                for p in parameters { p.zeroGrad() }
                loss.backward()
                optimizer.step()
            }
            let (validationLoss, accuracy, halves) = evaluate(validation)
            let record = Epoch(
                epoch: epoch, trainLoss: total / Double(order.count), validationLoss: validationLoss,
                validationAccuracy: accuracy, validationHalves: halves)
            history.append(record)
            progress(record)
            if stopping.record(byLoss ? validationLoss : accuracy, tieBreak: byLoss ? nil : validationLoss) {
                best = parameters.map(\.value)
            }
            if stopping.shouldStop { break }
        }
        for (p, values) in zip(parameters, best) { p.update { $0 = values } }
        var weights: [(name: String, shape: [Int], values: [Float])] = []
        for (name, w, b) in layers {
            weights.append(("\(name).weight", w.shape, w.value))
            weights.append(("\(name).bias", b.shape, b.value))
        }
        return Result(weights: weights, epochs: history, bestEpoch: stopping.bestEvaluation + 1)
    }

    /// Accuracy of trained head weights on `features[indices]`.
    public static func accuracy(
        _ weights: [(name: String, shape: [Int], values: [Float])], features: [[Float]], labels: [Int], indices: [Int]
    ) -> Double {
        guard !indices.isEmpty else { return 0 }
        var correct = 0
        for i in indices {
            var x = features[i]
            for layer in stride(from: 0, to: weights.count, by: 2) {
                let (w, b) = (weights[layer], weights[layer + 1])
                let (rows, columns) = (w.shape[0], w.shape[1])
                var y = b.values
                for r in 0..<rows {
                    for c in 0..<columns { y[r] += w.values[r * columns + c] * x[c] }
                }
                x = layer + 2 < weights.count ? y.map { max($0, 0) } : y
            }
            if x.firstIndex(of: x.max()!) == labels[i] { correct += 1 }
        }
        return Double(correct) / Double(indices.count)
    }
}
