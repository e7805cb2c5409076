import Foundation
public import MassAutograd

/// Knowledge distillation of a sentence encoder (task "text-embedding-distill"): a student that keeps some of
/// its teacher's layers (initialised from them, as DistilBERT is) learns to put each text's mean-pooled embedding
/// where the teacher puts it (the cosine loss), on unlabelled text. `FineTuning` runs the steps, checkpoints and
/// early stopping (on the validation texts' mean cosine to the teacher).
public enum Distillation {
    public struct Settings: Sendable, Codable, Equatable {
        /// The teacher's layers the student starts from, strictly increasing (default: half of them, rounded up,
        /// the first and the last and the rest evenly between: 0, 3, 5 of six).
        public var layers: [Int]?
        /// A student to continue from instead of the teacher's layers: a sentence-transformers folder an earlier
        /// distillation of the same teacher saved (its `mass.teacher_layers` say which layers it holds; `layers`,
        /// when given, must be those).
        public var from: String?
        /// The weight of the token term: the mean squared difference between the student's and the teacher's
        /// last hidden state of every token, added to the embeddings' cosine loss (0: the cosine loss alone).
        public var tokenWeight: Float
        /// Variants of the training part's texts (not the `train_only` files') that join it, embedded by the
        /// teacher as any text.
        public var augment: TextAugmentation?
        /// Steps, optimizer, schedule and checkpoints, as `finetune` (different defaults: `defaultTraining`).
        public var training: FineTuning.Settings

        public init(
            layers: [Int]? = nil, from: String? = nil, tokenWeight: Float = 1, augment: TextAugmentation? = nil,
            training: FineTuning.Settings = Distillation.defaultTraining
        ) {
            self.layers = layers
            self.from = from
            self.tokenWeight = tokenWeight
            self.augment = augment
            self.training = training
        }

        enum CodingKeys: String, CodingKey {
            case layers, from, augment
            case tokenWeight = "token_weight"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            layers = try c.decodeIfPresent([Int].self, forKey: .layers)
            from = try c.decodeIfPresent(String.self, forKey: .from)
            tokenWeight = try c.decodeIfPresent(Float.self, forKey: .tokenWeight) ?? 1
            augment = try c.decodeIfPresent(TextAugmentation.self, forKey: .augment)
            training = try FineTuning.Settings(from: decoder, defaults: Distillation.defaultTraining)
        }

        public func encode(to encoder: any Encoder) throws {
            try training.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(layers, forKey: .layers)
            try c.encodeIfPresent(from, forKey: .from)
            try c.encode(tokenWeight, forKey: .tokenWeight)
            try c.encodeIfPresent(augment, forKey: .augment)
        }

        /// The student's layers for a teacher of `teacherLayers`.
        public func studentLayers(teacherLayers: Int) -> [Int] {
            if let layers { return layers }
            let count = (teacherLayers + 1) / 2
            guard count > 1 else { return [teacherLayers - 1] }
            // Measured on MiniLM-L6 before training (validation cosine to the teacher): 0, 3, 5 0.72; 1, 3, 5 (every
            // other, ending with the last) 0.57; 0, 2, 4 (DistilBERT's choice) 0.38.
            return (0..<count).map { Int((Double($0 * (teacherLayers - 1)) / Double(count - 1)).rounded()) }
        }

        public func validate() throws(TrainingError) {
            try training.validate()
            if let from, from.isEmpty { throw TrainingError(.badConfig, "'from' is empty") }
            guard tokenWeight >= 0, tokenWeight.isFinite else {
                throw TrainingError(.badConfig, "'token_weight' must not be negative")
            }
            try augment?.validate()
            if let layers {
                guard !layers.isEmpty, layers.allSatisfy({ $0 >= 0 }),
                    zip(layers, layers.dropFirst()).allSatisfy({ $0 < $1 })
                else {
                    throw TrainingError(.badConfig, "'layers' must be teacher layer numbers, strictly increasing")
                }
            }
        }
    }

    /// Distillation's defaults where they differ from fine-tuning's: more epochs of a larger learning rate, no
    /// dropout (the student imitates a deterministic teacher).
    public static let defaultTraining: FineTuning.Settings = {
        var settings = FineTuning.Settings()
        settings.epochs = 10
        settings.learningRate = 1e-4
        settings.dropout = 0
        settings.patience = 3
        return settings
    }()
}

/// The cosine loss of a student's mean-pooled embeddings against the teacher's embeddings of the same texts
/// (`targets`, computed once), plus, with `tokenWeight` and `teacherStates`, the mean squared difference of every
/// token's last hidden state from the teacher's (computed per batch: `teacherStates` takes the batch's unpadded
/// token ids and returns their states concatenated, [Σ lengths, hidden]). The metric is the mean cosine.
public final class DistillationObjective: FineTuningObjective {
    public let student: TrainableSentenceEncoder
    public let texts: [String]
    public let targets: [[Float]]
    public let tokenWeight: Float
    public let teacherStates: (([[Int32]]) throws -> [Float])?

    public init(
        _ student: TrainableSentenceEncoder, texts: [String], targets: [[Float]], tokenWeight: Float = 0,
        teacherStates: (([[Int32]]) throws -> [Float])? = nil
    ) {
        precondition(
            texts.count == targets.count, "DistillationObjective: \(targets.count) targets, \(texts.count) texts")
        (self.student, self.texts, self.targets) = (student, texts, targets)
        (self.tokenWeight, self.teacherStates) = (teacherStates == nil ? 0 : tokenWeight, teacherStates)
    }

    public var parameters: [Variable] { student.parameters.map(\.variable) }
    public var dropout: Float {
        get { student.dropout }
        set { student.dropout = newValue }
    }

    public func loss(_ batch: [Int], maxLength: Int, generator: inout SeededGenerator) -> Variable {
        parts(batch, maxLength: maxLength, generator: &generator).total
    }

    /// The cosine term and the whole loss of a batch.
    private func parts(_ batch: [Int], maxLength: Int, generator: inout SeededGenerator) -> (
        cosine: Variable, total: Variable
    ) {
        let (ids, types, mask) = student.batch(batch.map { texts[$0] }, maxLength: maxLength)
        let hidden = student.bert.hidden(ids: ids, typeIds: types, mask: mask, generator: &generator)
        let pooled = hidden.meanPooled(mask: mask)
        let cosine = Loss.cosine(pooled, Variable(batch.flatMap { targets[$0] }, shape: pooled.shape))
        guard tokenWeight > 0, let teacherStates else { return (cosine, cosine) }
        // The teacher's states laid out as the student's padded batch, zero (and weighed zero) at padding.
        let width = hidden.shape[1]
        let length = ids.first?.count ?? 0
        let unpadded = zip(ids, mask).map { ids, mask in Array(ids.prefix(mask.filter { $0 }.count)) }
        let states: [Float]
        do { states = try teacherStates(unpadded) } catch {
            // The ids come from the teacher's own tokenizer, cut to a length the run checked it takes.
            preconditionFailure("DistillationObjective: the teacher refused a batch: \(error)")
        }
        var target = [Float](repeating: 0, count: hidden.count)
        var weights = [Float](repeating: 0, count: hidden.count)
        var offset = 0
        for (row, sequence) in unpadded.enumerated() {
            let start = row * length * width
            for i in 0..<(sequence.count * width) {
                target[start + i] = states[offset + i]
                weights[start + i] = 1
            }
            offset += sequence.count * width
        }
        let tokens = unpadded.reduce(0) { $0 + $1.count }
        let difference = (hidden - Variable(target, shape: hidden.shape)) * Variable(weights, shape: hidden.shape)
        let squared = (difference * difference).sum().scaled(tokenWeight / Float(tokens * width))
        return (cosine, cosine + squared)
    }

    /// The mean whole loss and the mean cosine to the teacher on `indices`, without dropout.
    public func evaluate(_ indices: [Int], maxLength: Int) -> (loss: Double, metric: Double) {
        guard !indices.isEmpty else { return (0, 0) }
        var generator = SeededGenerator(seed: 0)
        var (total, cosine) = (0.0, 0.0)
        for start in stride(from: 0, to: indices.count, by: 64) {
            let chunk = Array(indices[start..<min(start + 64, indices.count)])
            let (c, t) = parts(chunk, maxLength: maxLength, generator: &generator)
            total += Double(t.scalar) * Double(chunk.count)
            cosine += Double(c.scalar) * Double(chunk.count)
        }
        return (total / Double(indices.count), 1 - cosine / Double(indices.count))
    }
}
