import Foundation
import MassRegistry
import Synchronization

/// What a service-type model has cost and how it behaved since the server started: requests (recording pairs
/// included: the provider answered and billed them), the provider's failures, fallbacks, the units the provider
/// counted (what it bills), and the latency of its answers.
public struct ServiceStatistics: Codable, Sendable, Equatable {
    public var requests = 0
    /// Requests the provider did not answer (a fallback may have).
    public var providerFailures = 0
    public var fallbacks = 0
    /// Requests no model answered.
    public var failures = 0
    /// Units the provider reported, by kind ("tokens").
    public var units: [String: Double] = [:]
    /// Latency of the provider's answers, milliseconds (the most recent ones).
    public var latency: Percentiles?

    enum CodingKeys: String, CodingKey {
        case requests, fallbacks, failures, units
        case providerFailures = "provider_failures"
        case latency = "latency_ms"
    }
}

public struct Percentiles: Codable, Sendable, Equatable {
    public var p50: Double
    public var p95: Double
    public var p99: Double
    public var samples: Int

    public init?(_ values: [Double]) {
        let sorted = values.sorted()
        guard let p50 = nearestRank(sorted, 0.5), let p95 = nearestRank(sorted, 0.95),
            let p99 = nearestRank(sorted, 0.99)
        else { return nil }
        self.p50 = p50
        self.p95 = p95
        self.p99 = p99
        samples = sorted.count
    }
}

/// Counts a service-type model's requests (kept by its backend).
final class ServiceCounters: Sendable {
    private struct State {
        var statistics = ServiceStatistics()
        var latencies: [Double] = []
        var next = 0
    }
    static let kept = 2_000
    private let state = Mutex(State())

    func answered(milliseconds: Double) {
        state.withLock { s in
            s.statistics.requests += 1
            if s.latencies.count < Self.kept {
                s.latencies.append(milliseconds)
            } else {
                s.latencies[s.next] = milliseconds
                s.next = (s.next + 1) % Self.kept
            }
        }
    }

    func providerFailed(fellBack: Bool) {
        state.withLock { s in
            s.statistics.requests += 1
            s.statistics.providerFailures += 1
            if fellBack { s.statistics.fallbacks += 1 } else { s.statistics.failures += 1 }
        }
    }

    func units(_ kind: String, _ amount: Double) { state.withLock { $0.statistics.units[kind, default: 0] += amount } }

    var snapshot: ServiceStatistics {
        state.withLock { s in
            var out = s.statistics
            out.latency = Percentiles(s.latencies)
            return out
        }
    }
}

/// A service and its local candidates side by side, so that a team can decide to move traffic: the service's
/// requests, failures and units since start, and per candidate, from the recorded pairs, its agreement with the
/// service and the latency of both on the same inputs.
public struct ServiceReport: Codable, Sendable {
    public struct Candidate: Codable, Sendable {
        public var name: String
        public var pairs: Int
        /// Mean cosine between the candidate's and the service's vectors (meaningful when they share a space).
        public var meanCosine: Double?
        /// Recall@10 agreement of nearest neighbours, each model in its own space (a full re-embed).
        public var recallAt10: Double?
        /// Classification: the share of inputs given the service's top label.
        public var topLabelAgreement: Double?
        /// Speech: word error rate of the candidate's transcripts against the service's (all words of all pairs),
        /// and the share of transcripts that are the same word for word.
        public var wordErrorRate: Double?
        public var sameTranscript: Double?
        /// The same inputs, per input: the service's and the candidate's time.
        public var serviceLatency: Percentiles?
        public var candidateLatency: Percentiles?

        enum CodingKeys: String, CodingKey {
            case name, pairs
            case meanCosine = "mean_cosine"
            case recallAt10 = "recall_at_10"
            case topLabelAgreement = "top_label_agreement"
            case wordErrorRate = "word_error_rate"
            case sameTranscript = "same_transcript"
            case serviceLatency = "service_latency_ms"
            case candidateLatency = "candidate_latency_ms"
        }
    }

    public var service: String
    public var statistics: ServiceStatistics
    public var candidates: [Candidate]

    /// The report from a service's statistics and its recorded pairs (grouped by candidate; the newest 2,000 of
    /// each are compared; 1,000 for the neighbour search).
    public static func make(service: String, statistics: ServiceStatistics, pairs: [ServicePair]) -> ServiceReport {
        let byCandidate = Dictionary(grouping: pairs, by: \.candidate)
        let candidates = byCandidate.keys.sorted().map { name -> Candidate in
            let all = byCandidate[name]!
            let recent = Array(all.suffix(2_000)).filter { $0.kind == "embedding" }
            let same = recent.filter { $0.serviceOutput.count == $0.candidateOutput.count }
            let cosine =
                same.isEmpty ? nil : Agreement.cosine(same.map(\.serviceOutput), same.map(\.candidateOutput))
            var recall: Double?
            if recent.count > 10 {
                let recent = recent.suffix(1_000)
                let service = recent.map { LinearAdapter.unit($0.serviceOutput) }
                let local = recent.map { LinearAdapter.unit($0.candidateOutput) }
                recall = EmbeddingCalibration.recall(
                    EmbeddingCalibration.neighbours(queries: local, corpus: local),
                    EmbeddingCalibration.neighbours(queries: service, corpus: service))
            }
            let logits = all.suffix(2_000).filter { $0.kind == "logits" }
            let topAgreement =
                logits.isEmpty ? nil : Agreement.top1(logits.map(\.serviceOutput), logits.map(\.candidateOutput))
            let speech = TranscriptAgreement(all.suffix(2_000).filter { $0.kind == "transcript" })
            return Candidate(
                name: name, pairs: all.count, meanCosine: cosine, recallAt10: recall, topLabelAgreement: topAgreement,
                wordErrorRate: speech?.wordErrorRate, sameTranscript: speech?.same,
                serviceLatency: Percentiles(all.map(\.serviceMilliseconds)),
                candidateLatency: Percentiles(all.map(\.candidateMilliseconds)))
        }
        return ServiceReport(service: service, statistics: statistics, candidates: candidates)
    }
}

/// How far a candidate's transcripts are from a service's: corpus word error rate (every pair's word edits over
/// every reference word) and the share of identical transcripts (words compared as `Agreement` does).
public struct TranscriptAgreement: Codable, Sendable {
    public var pairs: Int
    public var wordErrorRate: Double
    public var same: Double

    enum CodingKeys: String, CodingKey {
        case pairs
        case wordErrorRate = "word_error_rate"
        case same = "same_transcript"
    }

    /// nil for no pairs.
    public init?(_ pairs: [ServicePair]) {
        guard !pairs.isEmpty else { return nil }
        let errors = Agreement.wordErrors(
            references: pairs.map(\.serviceText), hypotheses: pairs.map(\.candidateText))
        self.pairs = pairs.count
        wordErrorRate = errors.rate
        same = Double(errors.unchanged) / Double(pairs.count)
    }
}
