public import Foundation
public import MassTensor
public import MassTokenizers
import MassWeights

/// A sequence-classification checkpoint as `save_pretrained` writes it (`config.json` with `architectures`
/// `BertForSequenceClassification`, `model.safetensors`, `tokenizer.json`), after Hugging Face transformers'
/// `BertForSequenceClassification`: the encoder, the pooler (`bert.pooler.dense`, tanh on the first token) and the
/// classifier (`classifier`, `num_labels` logits). Dropout is inactive at inference.
///
/// It serves two tasks. Text classification: one text (or a pair) → one logit per label of `id2label`, read as
/// probabilities by softmax (`problem_type` single_label_classification, the default) or by a sigmoid per label
/// (multi_label_classification). Rerank: a cross-encoder with one label; the logit of (query, passage) is its
/// relevance, the sigmoid its score.
///
/// Threading: weights are immutable and shared; each compute thread passes its own workspace and pool.
public final class SequenceClassifier: TextEncoderModel {
    public enum ProblemType: String, Sendable {
        case singleLabel = "single_label_classification"
        case multiLabel = "multi_label_classification"
    }

    /// What turns the encoder's token states into logits.
    public enum Head: Sendable {
        /// BertForSequenceClassification: the pooler (tanh on the first token's dense) and the classifier.
        case pooler(pooler: Linear, classifier: Linear)
        /// A head `mass train` trained on a sentence encoder's pooled vector (`head.safetensors`): the vector
        /// pooled as `pooling` says, then the head's layers.
        case sentence(pooling: Pooling, head: TrainedHead)

        var outFeatures: Int {
            switch self {
            case .pooler(_, let classifier): classifier.outFeatures
            case .sentence(_, let head): head.outFeatures
            }
        }
    }

    public let directory: URL
    public let tokenizer: Tokenizer
    public let encoder: any TextEncoder
    public let head: Head
    /// Label names in logit order (`id2label`; `LABEL_i` where the config names none).
    public let labels: [String]
    public let problemType: ProblemType
    public let maxSequenceLength: Int

    /// Loads the folder with `encoder` building the Transformer from `config.json` and the weights. A
    /// sentence-transformers folder with a `head.safetensors` beside it (what `mass train` writes) loads as a
    /// classifier of single texts.
    public init(directory: URL, encoder makeEncoder: TextEncoderLoader) throws {
        self.directory = directory
        let file = { (name: String) in directory.appendingPathComponent(name) }
        if FileManager.default.fileExists(atPath: file("head.safetensors").path) {
            let sentence = try SentenceEmbedder(directory: directory, encoder: makeEncoder)
            let trained = try Self.loadSentenceHead(file("head.safetensors"), sentence: sentence)
            (encoder, tokenizer, head, labels) = (sentence.encoder, sentence.tokenizer, trained.head, trained.labels)
            problemType = .singleLabel
            maxSequenceLength = min(sentence.maxSequenceLength, trained.maxLength ?? sentence.maxSequenceLength)
            return
        }
        try ConfigLoading.require(["config.json", "model.safetensors", "tokenizer.json"], in: directory)
        let configFile = file("config.json").path
        let heads = try ConfigLoading.decode(HeadConfiguration.self, at: file("config.json"))
        let weights: SafeTensorsFile
        do {
            weights = try SafeTensorsFile(path: file("model.safetensors").path)
            encoder = try makeEncoder(file("config.json"), weights)
            let h = encoder.hiddenSize
            // The pooler sits inside the encoder's module ("bert.pooler", "roberta.pooler").
            let prefix =
                weights.names.first { $0.hasSuffix(".pooler.dense.weight") }.map {
                    String($0.dropLast("pooler.dense.weight".count))
                } ?? ""
            let pooler = try Linear(
                weight: weights.float32(prefix + "pooler.dense.weight", shape: [h, h]),
                bias: weights.float32(prefix + "pooler.dense.bias", shape: [h]))
            let classes = try weights.tensor("classifier.weight").shape.first ?? 0
            let classifier = try Linear(
                weight: weights.float32("classifier.weight", shape: [classes, h]),
                bias: weights.float32("classifier.bias", shape: [classes]))
            head = .pooler(pooler: pooler, classifier: classifier)
        } catch let error as WeightsError {
            throw ModelError(.badConfig, error.description, cause: error)
        } catch let error as TensorError {
            throw ModelError(.badConfig, "\(file("model.safetensors").path): \(error)")
        }
        labels = try heads.labels(count: head.outFeatures, file: configFile)
        switch heads.problemType {
        case nil: problemType = .singleLabel
        case let name?:
            guard let type = ProblemType(rawValue: name) else {
                throw ModelError(
                    .unsupported,
                    "\(configFile): 'problem_type' is '\(name)' (supported: single_label_classification, multi_label_classification)"
                )
            }
            problemType = type
        }
        do {
            tokenizer = try Tokenizer(contentsOf: file("tokenizer.json"))
        } catch let error as TokenizerError {
            throw ModelError(.unsupported, error.description, cause: error)
        }
        maxSequenceLength = encoder.maxPositions
    }

    /// `head.safetensors` as `mass train` writes it: `out.weight`/`out.bias` (and `dense.*` for a hidden ReLU
    /// layer); metadata `mass.labels` (a JSON array), `mass.head_input` ("embedding": the sentence embedding as
    /// the folder's modules give it; "mean_tokens": the mean of the token states, not normalised) and
    /// `mass.max_length` (the tokens per text it was trained on).
    private static func loadSentenceHead(_ url: URL, sentence: SentenceEmbedder) throws -> (
        head: Head, labels: [String], maxLength: Int?
    ) {
        let head = try TrainedHead(contentsOf: url, inputWidth: sentence.dimension)
        let pooling: Pooling
        switch head.metadata["mass.head_input"] ?? "embedding" {
        case "embedding": pooling = sentence.pooling
        case "mean_tokens": pooling = Pooling(mode: .mean, normalize: false)
        case let other:
            throw ModelError(.unsupported, "\(url.path): 'mass.head_input' is '\(other)' (embedding or mean_tokens)")
        }
        return (
            .sentence(pooling: pooling, head: head), head.labels, head.metadata["mass.max_length"].flatMap(Int.init)
        )
    }

    /// The keys of `config.json` that describe the head.
    private struct HeadConfiguration: Decodable {
        let id2label: [String: String]?
        let problemType: String?

        enum CodingKeys: String, CodingKey {
            case id2label
            case problemType = "problem_type"
        }

        func labels(count: Int, file: String) throws -> [String] {
            guard let id2label else { return (0..<count).map { "LABEL_\($0)" } }
            return try (0..<count).map { i in
                guard let name = id2label[String(i)] else {
                    throw ModelError(
                        .badConfig, "\(file): 'id2label' has no label \(i) (the classifier has \(count) outputs)")
                }
                return name
            }
        }
    }

    public func makeWorkspace() -> EncoderWorkspace { EncoderWorkspace() }

    /// One text with the single-sequence template. With `truncate` false, a text longer than the model takes is
    /// an error naming its token count.
    public func encode(_ text: String, truncate: Bool = true) throws -> Encoding {
        let encoding = tokenizer.encode(text, maxLength: maxSequenceLength)
        try check(encoding, truncate: truncate)
        return encoding
    }

    /// A pair (query and passage, or two texts) with the pair template and longest-first truncation.
    public func encode(pair first: String, _ second: String, truncate: Bool = true) throws -> Encoding {
        if case .sentence = head {
            throw ModelError(
                .unsupported, "\(directory.lastPathComponent): this classifier takes single texts, not pairs")
        }
        let encoding: Encoding
        do {
            encoding = try tokenizer.encode(pair: first, second, maxLength: maxSequenceLength)
        } catch {
            throw ModelError(.unsupported, "\(directory.lastPathComponent)/tokenizer.json: \(error.message)")
        }
        try check(encoding, truncate: truncate)
        return encoding
    }

    private func check(_ encoding: Encoding, truncate: Bool) throws {
        guard truncate || encoding.untruncatedCount <= maxSequenceLength else {
            throw ModelError(
                .inputTooLong,
                "an input has \(encoding.untruncatedCount) tokens; this model takes at most \(maxSequenceLength) (send truncate: true to cut it)"
            )
        }
    }

    /// The logits of a ragged batch of encodings: one row of `labels.count` per input, in order.
    public func logits(_ inputs: [Encoding], workspace: EncoderWorkspace, pool: ComputePool) throws -> [[Float]] {
        let states = try encoder.hiddenStates(
            inputs.map(\.ids), typeIds: inputs.map(\.typeIds), workspace: workspace, pool: pool)
        let h = encoder.hiddenSize
        let n = inputs.count
        let c = head.outFeatures
        let out = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n * c))
        defer { out.deallocate() }
        switch head {
        case .pooler(let pooler, let classifier):
            // The first token of every sequence, gathered; then the pooler and the classifier on those rows only.
            let first = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n * h))
            let pooled = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n * h))
            defer {
                first.deallocate()
                pooled.deallocate()
            }
            var offset = 0
            for (i, input) in inputs.enumerated() {
                (first + i * h).update(from: states + offset * h, count: h)
                offset += input.ids.count
            }
            pool.apply(pooler, first, rows: n, into: pooled)
            for i in 0..<(n * h) { pooled[i] = tanh(pooled[i]) }
            pool.apply(classifier, pooled, rows: n, into: out)
        case .sentence(let pooling, let trained):
            let pooled = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n * h))
            defer { pooled.deallocate() }
            var offset = 0
            for (i, input) in inputs.enumerated() {
                pooling.pool(states + offset * h, rows: input.ids.count, dim: h, into: pooled + i * h)
                offset += input.ids.count
            }
            trained.apply(pooled, rows: n, pool: pool, into: out)
        }
        return (0..<n).map { Array(UnsafeBufferPointer(start: out + $0 * c, count: c)) }
    }

    /// Scores of one row of logits: softmax (single-label) or a sigmoid per label (multi-label).
    public func scores(_ logits: [Float]) -> [Float] { Self.scores(logits, multiLabel: problemType == .multiLabel) }

    public static func scores(_ logits: [Float], multiLabel: Bool) -> [Float] {
        if multiLabel { return logits.map(sigmoid) }
        let top = logits.max() ?? 0
        let e = logits.map { Foundation.exp($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    public static func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
}
