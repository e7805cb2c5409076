import Foundation
import MassModels

/// A primary version with a shadow beside it: the same serving protocol as the primary, answering with the
/// primary, then handing a sample of requests to the shadow's mirror with a comparer for the task. One wrapper
/// per task; a task without one is served unshadowed.
enum ShadowServing {
    static func wrap(_ primary: any ServedModel, _ mirror: ShadowMirror) -> any ServedModel {
        switch primary {
        case let p as any TextEmbeddingServing: ShadowedEmbedding(p, mirror)
        case let p as any TextClassificationServing: ShadowedTextClassification(p, mirror)
        case let p as any RerankServing: ShadowedRerank(p, mirror)
        case let p as any SpeechRecognitionServing: ShadowedSpeech(p, mirror)
        case let p as any ImageClassificationServing: ShadowedImages(p, mirror)
        default: primary
        }
    }

    /// Times the primary's call.
    static func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
        let start = ContinuousClock.now
        let result = try await body()
        return (result, (ContinuousClock.now - start).inSeconds)
    }
}

/// The ServedModel half of every wrapper: the primary's identity and lifecycle.
class ShadowedBase<Primary: Sendable>: @unchecked Sendable {  // immutable after init
    let primary: Primary
    let base: any ServedModel
    let mirror: ShadowMirror

    init(_ primary: Primary, base: any ServedModel, _ mirror: ShadowMirror) {
        self.primary = primary
        self.base = base
        self.mirror = mirror
    }

    var identity: ServedIdentity { base.identity }
    var task: ModelTask { base.task }
    var config: ModelConfig { base.config }
    var inputs: [TensorSpec] { base.inputs }
    var outputs: [TensorSpec] { base.outputs }
    var unreadyReason: String? { base.unreadyReason }
    func warmUp() async throws { try await base.warmUp() }
    func shutdown() { base.shutdown() }
    func waitUntilStopped() async { await base.waitUntilStopped() }
}

final class ShadowedEmbedding: ShadowedBase<any TextEmbeddingServing>, TextEmbeddingServing, @unchecked Sendable {
    init(_ p: any TextEmbeddingServing, _ m: ShadowMirror) { super.init(p, base: p, m) }
    var dimension: Int { primary.dimension }

    func embed(_ texts: [String]) async throws -> EmbeddingResult {
        let (result, seconds) = try await ShadowServing.timed { try await primary.embed(texts) }
        mirror.maybe(primaryVersion: identity.version, primarySeconds: seconds) { shadow in
            guard let s = shadow as? any TextEmbeddingServing else { throw RuntimeError(.wrongTask, "shadow") }
            let other = try await s.embed(texts)
            let cosine = Agreement.cosine(result.embeddings, other.embeddings)
            return ShadowComparison(
                scores: ["cosine": cosine], disagrees: cosine < 0.99,
                input: Agreement.excerpt(texts.joined(separator: " | ")),
                primary: "\(result.embeddings.count) vectors", shadow: String(format: "cosine %.4f", cosine))
        }
        return result
    }
}

final class ShadowedTextClassification: ShadowedBase<any TextClassificationServing>, TextClassificationServing,
    @unchecked Sendable
{
    init(_ p: any TextClassificationServing, _ m: ShadowMirror) { super.init(p, base: p, m) }
    var labels: [String] { primary.labels }
    var multiLabel: Bool { primary.multiLabel }

    func classify(_ inputs: [TextClassificationInput], truncate: Bool) async throws -> [[Float]] {
        let (logits, seconds) = try await ShadowServing.timed { try await primary.classify(inputs, truncate: truncate) }
        let labels = primary.labels
        mirror.maybe(primaryVersion: identity.version, primarySeconds: seconds) { shadow in
            guard let s = shadow as? any TextClassificationServing else { throw RuntimeError(.wrongTask, "shadow") }
            let other = try await s.classify(inputs, truncate: truncate)
            let top1 = Agreement.top1(logits, other)
            func names(_ rows: [[Float]], _ names: [String]) -> [String] {
                rows.map {
                    let i = Agreement.argmax($0); return i < names.count ? names[i] : "\(i)"
                }
            }
            let mine = names(logits, labels), theirs = names(other, s.labels)
            let text = inputs.map {
                if case .text(let t) = $0 { t } else if case .pair(let a, let b) = $0 { a + " / " + b } else { "" }
            }
            return ShadowComparison(
                scores: ["top1": top1], labels: (mine, theirs), disagrees: top1 < 1,
                input: Agreement.excerpt(text.joined(separator: " | ")), primary: mine.joined(separator: ", "),
                shadow: theirs.joined(separator: ", "))
        }
        return logits
    }
}

final class ShadowedRerank: ShadowedBase<any RerankServing>, RerankServing, @unchecked Sendable {
    init(_ p: any RerankServing, _ m: ShadowMirror) { super.init(p, base: p, m) }

    func rerank(query: String, texts: [String], truncate: Bool) async throws -> [Float] {
        let (scores, seconds) = try await ShadowServing.timed {
            try await primary.rerank(query: query, texts: texts, truncate: truncate)
        }
        mirror.maybe(primaryVersion: identity.version, primarySeconds: seconds) { shadow in
            guard let s = shadow as? any RerankServing else { throw RuntimeError(.wrongTask, "shadow") }
            let other = try await s.rerank(query: query, texts: texts, truncate: truncate)
            let tau = Agreement.kendall(scores, other)
            let top1 = Agreement.argmax(scores) == Agreement.argmax(other) ? 1.0 : 0.0
            func order(_ v: [Float]) -> String {
                v.indices.sorted { v[$0] > v[$1] }.map(String.init).joined(separator: " ")
            }
            return ShadowComparison(
                scores: ["kendall_tau": tau, "top1": top1], disagrees: tau < 1,
                input: Agreement.excerpt(query), primary: order(scores), shadow: order(other))
        }
        return scores
    }
}

final class ShadowedSpeech: ShadowedBase<any SpeechRecognitionServing>, SpeechRecognitionServing,
    @unchecked Sendable
{
    init(_ p: any SpeechRecognitionServing, _ m: ShadowMirror) { super.init(p, base: p, m) }

    func transcribe(file: [UInt8], request: SpeechRequest) async throws -> Transcription {
        let (result, seconds) = try await ShadowServing.timed {
            try await primary.transcribe(file: file, request: request)
        }
        let text = result.transcript.text
        mirror.maybe(primaryVersion: identity.version, primarySeconds: seconds) { shadow in
            guard let s = shadow as? any SpeechRecognitionServing else { throw RuntimeError(.wrongTask, "shadow") }
            let other = try await s.transcribe(file: file, request: request).transcript.text
            let wer = Agreement.wordErrorRate(reference: text, hypothesis: other)
            return ShadowComparison(
                scores: ["wer": wer], disagrees: wer > 0, input: String(format: "%.1f s of audio", result.seconds),
                primary: Agreement.excerpt(text), shadow: Agreement.excerpt(other))
        }
        return result
    }
}

final class ShadowedImages: ShadowedBase<any ImageClassificationServing>, ImageClassificationServing,
    @unchecked Sendable
{
    init(_ p: any ImageClassificationServing, _ m: ShadowMirror) { super.init(p, base: p, m) }
    var classifier: ImageClassifier { primary.classifier }

    func classify(encoded files: [[UInt8]]) async throws -> [[Float]] {
        let (logits, seconds) = try await ShadowServing.timed { try await primary.classify(encoded: files) }
        compare(logits, seconds) { try await $0.classify(encoded: files) }
        return logits
    }

    func classify(prepared inputs: [Float]) async throws -> [[Float]] {
        let (logits, seconds) = try await ShadowServing.timed { try await primary.classify(prepared: inputs) }
        compare(logits, seconds) { try await $0.classify(prepared: inputs) }
        return logits
    }

    private func compare(
        _ logits: [[Float]], _ seconds: Double,
        _ run: @escaping @Sendable (any ImageClassificationServing) async throws -> [[Float]]
    ) {
        let labels = classifier.labels
        mirror.maybe(primaryVersion: identity.version, primarySeconds: seconds) { shadow in
            guard let s = shadow as? any ImageClassificationServing else { throw RuntimeError(.wrongTask, "shadow") }
            let other = try await run(s)
            let top1 = Agreement.top1(logits, other)
            func names(_ rows: [[Float]], _ names: [String]) -> [String] {
                rows.map {
                    let i = Agreement.argmax($0); return i < names.count ? names[i] : "\(i)"
                }
            }
            let mine = names(logits, labels), theirs = names(other, s.classifier.labels)
            return ShadowComparison(
                scores: ["top1": top1], labels: (mine, theirs), disagrees: top1 < 1,
                input: "\(logits.count) images", primary: mine.joined(separator: ", "),
                shadow: theirs.joined(separator: ", "))
        }
    }
}
