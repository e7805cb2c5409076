import Foundation
import Synchronization

/// Process metrics in Prometheus' text format: counters, gauges and fixed-bucket histograms keyed by name and
/// labels. Names are stable and prefixed `mass_`; labels never carry request ids or raw paths.
/// Thread-safe (one lock; every update is a few dictionary operations).
public final class MetricsRegistry: Sendable {
    public static let durationBuckets: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]
    public static let batchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128]

    private struct Histogram {
        var buckets: [Double]
        var counts: [UInt64]
        var sum = 0.0
        var count: UInt64 = 0

        mutating func add(_ value: Double) {
            for i in buckets.indices where value <= buckets[i] { counts[i] += 1 }
            sum += value
            count += 1
        }
    }

    private struct Storage {
        var help: [String: (type: String, text: String)] = [:]
        var values: [String: [String: Double]] = [:]  // name → rendered labels → value
        var histograms: [String: [String: Histogram]] = [:]
    }

    private let storage = Mutex(Storage())

    public init() {}

    private static func render(_ labels: [(String, String)]) -> String {
        if labels.isEmpty { return "" }
        // Called for every observation: escape (Prometheus' text format: backslash, quote, newline) only the
        // values that need it, byte by byte rather than through Foundation's replacingOccurrences.
        let escaped = labels.map { key, value in
            guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == 10 })
            else {
                return "\(key)=\"\(value)\""
            }
            var v = ""
            for c in value.unicodeScalars {
                switch c {
                case "\\": v += "\\\\"
                case "\"": v += "\\\""
                case "\n": v += "\\n"
                default: v.unicodeScalars.append(c)
                }
            }
            return "\(key)=\"\(v)\""
        }
        return "{" + escaped.joined(separator: ",") + "}"
    }

    public func add(_ name: String, _ value: Double = 1, labels: [(String, String)] = [], help: String) {
        let key = Self.render(labels)  // outside the lock: the model workers observe under it too
        storage.withLock { s in
            if s.help[name] == nil { s.help[name] = ("counter", help) }
            s.values[name, default: [:]][key, default: 0] += value
        }
    }

    public func set(_ name: String, _ value: Double, labels: [(String, String)] = [], help: String) {
        let key = Self.render(labels)
        storage.withLock { s in
            if s.help[name] == nil { s.help[name] = ("gauge", help) }
            s.values[name, default: [:]][key] = value
        }
    }

    public func observe(
        _ name: String, _ value: Double, labels: [(String, String)] = [], buckets: [Double] = durationBuckets,
        help: String
    ) {
        let key = Self.render(labels)
        storage.withLock { s in
            if s.help[name] == nil { s.help[name] = ("histogram", help) }
            // Updated in place: a copy out and back would copy the bucket counts on every observation.
            s.histograms[name, default: [:]][
                key, default: Histogram(buckets: buckets, counts: Array(repeating: 0, count: buckets.count))
            ].add(value)
        }
    }

    /// The Prometheus text exposition (version 0.0.4).
    public func exposition() -> String {
        storage.withLock { s in
            var out = ""
            for name in s.help.keys.sorted() {
                let (type, help) = s.help[name]!
                out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
                for (labels, value) in (s.values[name] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    out += "\(name)\(labels) \(Self.number(value))\n"
                }
                for (labels, h) in (s.histograms[name] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    let inner = labels.isEmpty ? "" : String(labels.dropFirst().dropLast()) + ","
                    for (bound, count) in zip(h.buckets, h.counts) {
                        out += "\(name)_bucket{\(inner)le=\"\(Self.number(bound))\"} \(count)\n"
                    }
                    out += "\(name)_bucket{\(inner)le=\"+Inf\"} \(h.count)\n"
                    out += "\(name)_sum\(labels) \(Self.number(h.sum))\n\(name)_count\(labels) \(h.count)\n"
                }
            }
            return out
        }
    }

    private static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
