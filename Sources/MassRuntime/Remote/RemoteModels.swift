import Foundation
import MassModels
import MassRegistry
import Synchronization

/// Service-type models: a provider's API served as a model of the task, through every route of the task, with
/// the provider's resilience and metrics (`RemoteClient`) and fallbacks (`RemoteBackend`). The model manager
/// builds them from a `mass.json` with a `remote` block instead of loading files.
public enum RemoteModels {
    /// The served model for `config.remote`.
    public static func serve(_ remote: RemoteConfig, context: ServingContext) throws -> any ServedModel {
        let backend = RemoteBackend(context: context, remote: remote)
        switch context.config.task {
        case .textEmbedding: return RemoteEmbeddingModel(backend)
        case .rerank: return RemoteRerankModel(backend)
        case .textClassification where remote.api == .teiPredict: return RemoteTextClassifier(backend)
        case .speechRecognition: return RemoteSpeechModel(backend)
        default:
            throw RuntimeError(
                .badConfig, "'remote.api' \(remote.api.rawValue) cannot serve task '\(context.config.task.rawValue)'")
        }
    }
}

/// A service-type model that records calibration pairs on request: each input answered by the provider (never
/// a fallback) and by a local candidate model, written to the registry.
public protocol ServicePairRecording: ServedModel {
    /// Records one pair per input; `candidate` nil: the `remote.record` block's. Answers how many.
    func recordPairs(_ inputs: [String], candidate: String?) async throws -> Int
}

/// A service-type model's statistics since the server started (the services report).
public protocol ServiceStatisticsReporting: ServedModel {
    var serviceStatistics: ServiceStatistics { get }
}

/// The part of `ServedModel` every service-type model answers the same way.
protocol RemoteServedModel: ServiceStatisticsReporting {
    var backend: RemoteBackend { get }
    /// One call that checks the provider (and learns what the model needs from it).
    func probe(deadline: ContinuousClock.Instant) async throws
}

extension RemoteServedModel {
    public var identity: ServedIdentity { backend.identity }
    public var config: ModelConfig { backend.config }
    public var unreadyReason: String? { backend.unreadyReason }
    public func shutdown() { backend.shutdown() }
    public var serviceStatistics: ServiceStatistics { backend.counters.snapshot }
    public func waitUntilStopped() async { await backend.waitUntilStopped() }
    /// Never fails the load: an unreachable provider makes the model unready, with the reason, until it answers.
    public func warmUp() async throws {
        await backend.check { [weak self] deadline in try await self?.probe(deadline: deadline) }
    }
    var providerModel: String { backend.remote.model ?? backend.identity.name }
    /// KServe's infer path for the provider's model name (escaped: a name is one path segment).
    var inferPath: String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let segment = providerModel.addingPercentEncoding(withAllowedCharacters: allowed) ?? providerModel
        return "/v2/models/\(segment)/infer"
    }
}

/// Text embeddings from an OpenAI-style `/v1/embeddings` or a KServe v2 `infer`.
final class RemoteEmbeddingModel: RemoteServedModel, TextEmbeddingServing, ServicePairRecording {
    let backend: RemoteBackend
    private let learned: Mutex<Int?>

    init(_ backend: RemoteBackend) {
        self.backend = backend
        learned = Mutex(backend.remote.dimension)
    }

    var task: ModelTask { .textEmbedding }
    /// The configured dimension, else the provider's (0 until it first answered).
    var dimension: Int { learned.withLock { $0 } ?? 0 }
    var inputs: [TensorSpec] { [TensorSpec("text", "BYTES", [-1])] }
    var outputs: [TensorSpec] { [TensorSpec("embedding", "FP32", [-1, dimension])] }

    func probe(deadline: ContinuousClock.Instant) async throws {
        _ = try await call(["warm-up"], deadline: deadline, retries: false)
    }

    func embed(_ texts: [String]) async throws -> EmbeddingResult {
        try await backend.answer(
            { deadline in
                let started = ContinuousClock.now
                let result = try await self.call(texts, deadline: deadline, retries: true)
                let seconds = (ContinuousClock.now - started).inSeconds
                self.backend.sample {
                    let (name, candidate) = try self.backend.candidate(nil, as: (any TextEmbeddingServing).self)
                    try await self.store(texts, result.embeddings, seconds, name, candidate, origin: "traffic")
                }
                return result
            },
            fallback: { (other: any TextEmbeddingServing) in
                let expected = self.dimension
                guard expected == 0 || other.dimension == expected else {
                    throw RuntimeError(
                        .modelUnavailable, "fallback '\(other.identity.name)' has dimension \(other.dimension)")
                }
                return try await other.embed(texts)
            })
    }

    func recordPairs(_ inputs: [String], candidate: String?) async throws -> Int {
        let (name, local) = try backend.candidate(candidate, as: (any TextEmbeddingServing).self)
        let (result, seconds) = try await backend.direct { deadline in
            try await self.call(inputs, deadline: deadline, retries: true)
        }
        try await store(inputs, result.embeddings, seconds, name, local, origin: "inputs")
        return inputs.count
    }

    /// Embeds the inputs with the candidate and writes one pair per input (times are per input, averaged).
    private func store(
        _ texts: [String], _ service: [[Float]], _ serviceSeconds: Double, _ name: String,
        _ candidate: any TextEmbeddingServing, origin: String
    ) async throws {
        let started = ContinuousClock.now
        let local = try await candidate.embed(texts).embeddings
        let localSeconds = (ContinuousClock.now - started).inSeconds
        let n = Double(max(1, texts.count))
        try await backend.store(
            texts.indices.map { i in
                ServicePair(
                    service: identity.name, candidate: name, kind: "embedding", input: texts[i],
                    serviceOutput: service[i], candidateOutput: local[i],
                    serviceMilliseconds: serviceSeconds * 1000 / n, candidateMilliseconds: localSeconds * 1000 / n,
                    origin: origin)
            })
    }

    private func call(_ texts: [String], deadline: ContinuousClock.Instant, retries: Bool) async throws
        -> EmbeddingResult
    {
        let expected = learned.withLock { $0 }
        let client = backend.client
        let vectors: [[Float]]
        var tokens: Int?
        switch backend.remote.api {
        case .kserveV2:
            let answer = try await client.post(
                inferPath,
                body: RemoteWire.kserveRequest([RemoteWire.kserveTensor("text", texts)]), deadline: deadline,
                retries: retries)
            vectors = try RemoteWire.kserveEmbeddings(answer.body, count: texts.count, dimension: expected)
        default:
            let answer = try await client.post(
                "/v1/embeddings", body: RemoteWire.openAIEmbeddingsRequest(texts, model: providerModel),
                deadline: deadline, retries: retries)
            (vectors, tokens) = try RemoteWire.openAIEmbeddings(answer.body, count: texts.count, dimension: expected)
        }
        if expected == nil, let first = vectors.first { learned.withLock { $0 = $0 ?? first.count } }
        // What the provider bills: its token count, spread over the inputs (the sum is exact).
        let total = tokens ?? 0
        var counts = [Int](repeating: texts.isEmpty ? 0 : total / texts.count, count: texts.count)
        if !counts.isEmpty { counts[0] += total - counts.reduce(0, +) }
        if let tokens, tokens > 0 {
            backend.counters.units("tokens", Double(tokens))
            try RequestRouting.current?.charge("tokens", Double(tokens))
        }
        return EmbeddingResult(embeddings: vectors, tokenCounts: counts)
    }
}

/// Rerank logits from TEI's (or Mass's) `/rerank`, or a KServe v2 `infer` (BYTES `query` and `texts`).
final class RemoteRerankModel: RemoteServedModel, RerankServing {
    let backend: RemoteBackend

    init(_ backend: RemoteBackend) { self.backend = backend }

    var task: ModelTask { .rerank }
    var inputs: [TensorSpec] { [TensorSpec("query", "BYTES", [1]), TensorSpec("texts", "BYTES", [-1])] }
    var outputs: [TensorSpec] { [TensorSpec("logits", "FP32", [-1]), TensorSpec("scores", "FP32", [-1])] }

    func probe(deadline: ContinuousClock.Instant) async throws {
        _ = try await call(query: "warm-up", texts: ["warm-up"], truncate: true, deadline: deadline, retries: false)
    }

    func rerank(query: String, texts: [String], truncate: Bool) async throws -> [Float] {
        try await backend.answer(
            { deadline in
                try await self.call(query: query, texts: texts, truncate: truncate, deadline: deadline, retries: true)
            },
            fallback: { (other: any RerankServing) in
                try await other.rerank(query: query, texts: texts, truncate: truncate)
            })
    }

    private func call(
        query: String, texts: [String], truncate: Bool, deadline: ContinuousClock.Instant, retries: Bool
    ) async throws -> [Float] {
        switch backend.remote.api {
        case .kserveV2:
            let request = RemoteWire.kserveRequest(
                [RemoteWire.kserveTensor("query", [query]), RemoteWire.kserveTensor("texts", texts)],
                parameters: ["truncate": truncate])
            let answer = try await backend.client.post(
                inferPath, body: request, deadline: deadline, retries: retries)
            return try RemoteWire.kserveOutput(answer.body, name: "logits", rows: texts.count).values
        default:
            let answer = try await backend.client.post(
                "/rerank", body: RemoteWire.teiRerankRequest(query: query, texts: texts, truncate: truncate),
                deadline: deadline, retries: retries)
            return try RemoteWire.teiRerank(answer.body, count: texts.count)
        }
    }
}

/// Text classification logits from TEI's (or Mass's) `/predict` with raw scores; the labels are the provider's,
/// learned from its first answer and sorted by name.
final class RemoteTextClassifier: RemoteServedModel, TextClassificationServing, ServicePairRecording {
    let backend: RemoteBackend
    private let learned = Mutex<[String]?>(nil)

    init(_ backend: RemoteBackend) { self.backend = backend }

    var task: ModelTask { .textClassification }
    var labels: [String] { learned.withLock { $0 } ?? [] }
    var multiLabel: Bool { false }
    var inputs: [TensorSpec] { [TensorSpec("text", "BYTES", [-1])] }
    var outputs: [TensorSpec] {
        [TensorSpec("logits", "FP32", [-1, labels.count]), TensorSpec("probabilities", "FP32", [-1, labels.count])]
    }

    func probe(deadline: ContinuousClock.Instant) async throws {
        _ = try await call([.text("warm-up")], truncate: true, deadline: deadline, retries: false)
    }

    func classify(_ inputs: [TextClassificationInput], truncate: Bool) async throws -> [[Float]] {
        try await backend.answer(
            { deadline in
                let started = ContinuousClock.now
                let logits = try await self.call(inputs, truncate: truncate, deadline: deadline, retries: true)
                let seconds = (ContinuousClock.now - started).inSeconds
                self.backend.sample {
                    let (name, candidate) = try self.backend.candidate(nil, as: (any TextClassificationServing).self)
                    try await self.store(inputs, logits, seconds, name, candidate, origin: "traffic")
                }
                return logits
            },
            fallback: { (other: any TextClassificationServing) in
                let theirs = other.labels
                let mine = self.learned.withLock { learned -> [String] in
                    learned = learned ?? theirs.sorted()
                    return learned ?? []
                }
                guard Set(theirs) == Set(mine), theirs.count == mine.count else {
                    throw RuntimeError(.modelUnavailable, "fallback '\(other.identity.name)' has other labels")
                }
                // In this model's label order.
                let position = Dictionary(theirs.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
                return try await other.classify(inputs, truncate: truncate).map { row in
                    mine.map { row[position[$0]!] }
                }
            })
    }

    func recordPairs(_ inputs: [String], candidate: String?) async throws -> Int {
        let (name, local) = try backend.candidate(candidate, as: (any TextClassificationServing).self)
        let texts = inputs.map { TextClassificationInput.text($0) }
        let (logits, seconds) = try await backend.direct { deadline in
            try await self.call(texts, truncate: true, deadline: deadline, retries: true)
        }
        try await store(texts, logits, seconds, name, local, origin: "inputs")
        return inputs.count
    }

    /// Classifies the inputs with the candidate and writes one pair per input: both logits in this model's
    /// label order (the provider's, sorted by name); the candidate must have the same labels.
    private func store(
        _ inputs: [TextClassificationInput], _ service: [[Float]], _ serviceSeconds: Double, _ name: String,
        _ candidate: any TextClassificationServing, origin: String
    ) async throws {
        let mine = labels
        let theirs = candidate.labels
        guard Set(theirs) == Set(mine), theirs.count == mine.count else {
            throw RuntimeError(
                .invalidInput,
                "candidate '\(name)' has labels \(theirs.sorted()); the service has \(mine)", param: "candidate")
        }
        let position = Dictionary(theirs.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let started = ContinuousClock.now
        let local = try await candidate.classify(inputs, truncate: true).map { row in mine.map { row[position[$0]!] } }
        let localSeconds = (ContinuousClock.now - started).inSeconds
        let n = Double(max(1, inputs.count))
        try await backend.store(
            inputs.indices.map { i in
                let text: String
                switch inputs[i] {
                case .text(let t): text = t
                case .pair(let a, let b): text = a + "\u{1F}" + b
                }
                return ServicePair(
                    service: identity.name, candidate: name, kind: "logits", labels: mine, input: text,
                    serviceOutput: service[i], candidateOutput: local[i],
                    serviceMilliseconds: serviceSeconds * 1000 / n, candidateMilliseconds: localSeconds * 1000 / n,
                    origin: origin)
            })
    }

    private func call(
        _ inputs: [TextClassificationInput], truncate: Bool, deadline: ContinuousClock.Instant, retries: Bool
    ) async throws -> [[Float]] {
        let request = RemoteWire.teiPredictRequest(inputs, truncate: truncate)
        let answer = try await backend.client.post(
            "/predict", body: request.body, deadline: deadline, retries: retries)
        let known = learned.withLock { $0 }
        let (logits, names) = try RemoteWire.teiPredict(
            answer.body, count: inputs.count, sent: request.sent, labels: known)
        if known == nil { learned.withLock { $0 = $0 ?? names } }
        return logits
    }
}
