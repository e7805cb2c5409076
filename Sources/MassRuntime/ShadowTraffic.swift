public import Foundation
import MassModels
import Synchronization

/// Shadow traffic for one deployment: a sample of live requests is sent again to a candidate version after the
/// primary has answered. The client gets the primary's answer and never waits for the shadow; the shadow runs on
/// its own model's workers, at most `maxInFlight` requests at a time (beyond that a sample is dropped and
/// counted), and its failures are counted, never returned. Each pair of answers is compared by task.
public final class ShadowMirror: Sendable {
    public let model: String
    public let shadowVersion: Int
    public let sample: Double
    let shadow: any ServedModel
    let maxInFlight: Int
    private let state = Mutex(ShadowStatistics())
    private let metrics: MetricsRegistry?

    init(model: String, shadow: any ServedModel, sample: Double, maxInFlight: Int = 16, metrics: MetricsRegistry?) {
        self.model = model
        self.shadow = shadow
        shadowVersion = shadow.identity.version
        self.sample = sample
        self.maxInFlight = maxInFlight
        self.metrics = metrics
    }

    /// After the primary answered in `primarySeconds`: with probability `sample`, runs `compare` (which calls
    /// the shadow and scores the pair) in a task of its own.
    func maybe(
        primaryVersion: Int, primarySeconds: Double,
        _ compare: @escaping @Sendable (any ServedModel) async throws -> ShadowComparison
    ) {
        guard sample > 0, Double.random(in: 0..<1) < sample else { return }
        let admitted = state.withLock { s -> Bool in
            guard s.inFlight < maxInFlight else {
                s.dropped += 1
                return false
            }
            s.inFlight += 1
            return true
        }
        guard admitted else {
            count("dropped")
            return
        }
        let shadow = self.shadow
        Task.detached(priority: .low) { [self] in
            let start = ContinuousClock.now
            do {
                let comparison = try await compare(shadow)
                let seconds = (ContinuousClock.now - start).inSeconds
                state.withLock { s in
                    s.inFlight -= 1
                    s.record(comparison, primaryVersion: primaryVersion, primary: primarySeconds, shadow: seconds)
                }
                count("compared")
                metrics?.observe(
                    "mass_shadow_latency_seconds", seconds, labels: [("model", model), ("role", "shadow")],
                    help: "Latency of the primary and of its shadow, for the same requests.")
                metrics?.observe(
                    "mass_shadow_latency_seconds", primarySeconds, labels: [("model", model), ("role", "primary")],
                    help: "Latency of the primary and of its shadow, for the same requests.")
                for (measure, value) in comparison.scores {
                    let mean = state.withLock { $0.means[measure].map { $0.sum / Double($0.count) } } ?? value
                    metrics?.set(
                        "mass_shadow_agreement", mean, labels: [("model", model), ("measure", measure)],
                        help: "Mean agreement between the primary's and the shadow's answers, by measure.")
                }
            } catch {
                state.withLock { s in
                    s.inFlight -= 1
                    s.failed += 1
                }
                count("failed")
            }
        }
    }

    private func count(_ outcome: String) {
        metrics?.add(
            "mass_shadow_requests_total", labels: [("model", model), ("outcome", outcome)],
            help: "Requests mirrored to a shadow: compared, dropped (its queue was full) or failed.")
    }

    /// The report of what has been compared so far.
    public func report(primary: [Int]) -> ShadowReport {
        state.withLock { $0.report(model: model, primary: primary, shadow: shadowVersion, sample: sample) }
    }
}

/// One compared pair: scores by measure (1 is full agreement, except `wer`, where 0 is), the labels each side
/// gave (classification tasks), and a short description of both answers for the examples.
struct ShadowComparison: Sendable {
    var scores: [String: Double]
    var labels: (primary: [String], shadow: [String]) = ([], [])
    /// Whether the pair disagrees enough to be kept as an example.
    var disagrees: Bool
    var input: String
    var primary: String
    var shadow: String
}

/// What `GET /admin/v1/deployments/{name}/report` and `mass deploy report` show.
public struct ShadowReport: Codable, Sendable {
    public struct Latency: Codable, Sendable {
        public var p50Ms: Double
        public var p99Ms: Double
    }

    public struct Example: Codable, Sendable {
        public var input: String
        public var primary: String
        public var shadow: String
        public var scores: [String: Double]
        public var primaryVersion: Int
    }

    public var model: String
    public var primaryVersions: [Int]
    public var shadowVersion: Int
    public var sample: Double
    public var compared: Int
    public var dropped: Int
    public var failed: Int
    /// Mean of each measure over the compared pairs.
    public var agreement: [String: Double]
    public var primaryLatency: Latency?
    public var shadowLatency: Latency?
    /// Classification tasks: how often each label was the top one, on each side.
    public var labelDistribution: [String: [String: Int]]
    /// The latest disagreements (at most 20), newest last.
    public var disagreements: [Example]
}

struct ShadowStatistics {
    var inFlight = 0
    var compared = 0
    var dropped = 0
    var failed = 0
    var means: [String: (sum: Double, count: Int)] = [:]
    var primaryLatencies: [Double] = []
    var shadowLatencies: [Double] = []
    var primaryLabels: [String: Int] = [:]
    var shadowLabels: [String: Int] = [:]
    var examples: [ShadowReport.Example] = []
    static let keptLatencies = 4096
    static let keptExamples = 20

    mutating func record(_ c: ShadowComparison, primaryVersion: Int, primary: Double, shadow: Double) {
        compared += 1
        for (measure, value) in c.scores {
            let old = means[measure] ?? (0, 0)
            means[measure] = (old.sum + value, old.count + 1)
        }
        // A sliding window of latencies: the report describes recent traffic.
        primaryLatencies.append(primary)
        shadowLatencies.append(shadow)
        if primaryLatencies.count > Self.keptLatencies {
            primaryLatencies.removeFirst(primaryLatencies.count - Self.keptLatencies)
            shadowLatencies.removeFirst(shadowLatencies.count - Self.keptLatencies)
        }
        for label in c.labels.primary { primaryLabels[label, default: 0] += 1 }
        for label in c.labels.shadow { shadowLabels[label, default: 0] += 1 }
        if c.disagrees {
            examples.append(
                .init(
                    input: c.input, primary: c.primary, shadow: c.shadow, scores: c.scores,
                    primaryVersion: primaryVersion))
            if examples.count > Self.keptExamples { examples.removeFirst() }
        }
    }

    func report(model: String, primary: [Int], shadow: Int, sample: Double) -> ShadowReport {
        func latency(_ values: [Double]) -> ShadowReport.Latency? {
            let sorted = values.sorted()
            guard let p50 = nearestRank(sorted, 0.5), let p99 = nearestRank(sorted, 0.99) else { return nil }
            return .init(p50Ms: p50 * 1000, p99Ms: p99 * 1000)
        }
        return ShadowReport(
            model: model, primaryVersions: primary, shadowVersion: shadow, sample: sample, compared: compared,
            dropped: dropped, failed: failed, agreement: means.mapValues { $0.sum / Double($0.count) },
            primaryLatency: latency(primaryLatencies), shadowLatency: latency(shadowLatencies),
            labelDistribution: primaryLabels.isEmpty ? [:] : ["primary": primaryLabels, "shadow": shadowLabels],
            disagreements: examples)
    }
}

/// How two answers of one task agree.
public enum Agreement {
    /// Mean cosine similarity of the paired vectors.
    public static func cosine(_ a: [[Float]], _ b: [[Float]]) -> Double {
        guard a.count == b.count, !a.isEmpty else { return 0 }
        return cosines(a, b).reduce(0, +) / Double(a.count)
    }

    /// The cosine of each pair of vectors (0 for a zero vector), in Double.
    public static func cosines(_ a: [[Float]], _ b: [[Float]]) -> [Double] {
        zip(a, b).map { x, y in
            var dot = 0.0, nx = 0.0, ny = 0.0
            for (u, v) in zip(x, y) {
                dot += Double(u) * Double(v)
                nx += Double(u) * Double(u)
                ny += Double(v) * Double(v)
            }
            return nx > 0 && ny > 0 ? dot / (nx.squareRoot() * ny.squareRoot()) : 0
        }
    }

    public static func argmax(_ row: [Float]) -> Int { row.indices.max { row[$0] < row[$1] } ?? 0 }

    /// The fraction of rows whose top index is the same.
    public static func top1(_ a: [[Float]], _ b: [[Float]]) -> Double {
        guard a.count == b.count, !a.isEmpty else { return 0 }
        return Double(zip(a, b).filter { argmax($0) == argmax($1) }.count) / Double(a.count)
    }

    /// Kendall's tau between two scorings of the same items (1: the same order, -1: reversed).
    public static func kendall(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count, a.count > 1 else { return 1 }
        var concordant = 0, discordant = 0
        for i in 0..<a.count {
            for j in (i + 1)..<a.count {
                let s = (a[i] - a[j]) * (b[i] - b[j])
                if s > 0 { concordant += 1 } else if s < 0 { discordant += 1 }
            }
        }
        let pairs = a.count * (a.count - 1) / 2
        return Double(concordant - discordant) / Double(pairs)
    }

    /// Word error rate of `hypothesis` against `reference` (words by whitespace, case and punctuation ignored).
    public static func wordErrorRate(reference: String, hypothesis: String) -> Double {
        wordErrors(references: [reference], hypotheses: [hypothesis]).rate
    }

    /// A corpus's word error rate, each hypothesis against its reference: the word edits summed over the
    /// references' words summed (not the mean of per-text rates; 0 for no edits over no words, 1 for edits over
    /// none), and how many hypotheses have no word edit at all.
    public static func wordErrors(references: [String], hypotheses: [String]) -> (rate: Double, unchanged: Int) {
        var edits = 0, words = 0, unchanged = 0
        for (reference, hypothesis) in zip(references, hypotheses) {
            let counted = wordEdits(reference: reference, hypothesis: hypothesis)
            edits += counted.edits
            words += counted.words
            if counted.edits == 0 { unchanged += 1 }
        }
        return (words == 0 ? (edits == 0 ? 0 : 1) : Double(edits) / Double(words), unchanged)
    }

    /// Word-level Levenshtein distance of `hypothesis` to `reference`, and the reference's word count (a corpus's
    /// WER is the sum of the first over the sum of the second).
    public static func wordEdits(reference: String, hypothesis: String) -> (edits: Int, words: Int) {
        func words(_ s: String) -> [Substring] {
            s.lowercased().split { !$0.isLetter && !$0.isNumber && $0 != "'" }
        }
        let r = words(reference), h = words(hypothesis)
        guard !r.isEmpty, !h.isEmpty else { return (max(r.count, h.count), r.count) }
        // Levenshtein over words, one row at a time.
        var previous = Array(0...h.count)
        for i in 1...r.count {
            var current = [i] + [Int](repeating: 0, count: h.count)
            for j in 1...h.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r[i - 1] == h[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return (previous[h.count], r.count)
    }

    static func excerpt(_ text: String) -> String { text.count <= 200 ? text : String(text.prefix(200)) + "…" }
}
