public import Foundation
import SQLKit

/// One input answered by a service-type model (the provider) and by a local candidate model: the data
/// calibration fits and judges on.
public struct ServicePair: Codable, Sendable, Equatable {
    public var service: String
    public var candidate: String
    /// What the outputs are: "embedding" (vectors), "logits" (classification or rerank scores), "transcript"
    /// (texts, in `serviceText` and `candidateText`).
    public var kind: String
    /// The label of each logit, in order ("logits" pairs; empty for embeddings).
    public var labels: [String]
    public var input: String
    public var serviceOutput: [Float]
    public var candidateOutput: [Float]
    /// The outputs of "transcript" pairs (empty for the others).
    public var serviceText: String
    public var candidateText: String
    public var serviceMilliseconds: Double
    public var candidateMilliseconds: Double
    /// "traffic" (sampled live requests) or "inputs" (a list sent to record).
    public var origin: String
    /// Milliseconds since 1970 (set when recorded).
    public var at: Int

    public init(
        service: String, candidate: String, kind: String, labels: [String] = [], input: String,
        serviceOutput: [Float],
        candidateOutput: [Float], serviceText: String = "", candidateText: String = "", serviceMilliseconds: Double,
        candidateMilliseconds: Double, origin: String, at: Int = 0
    ) {
        self.service = service
        self.candidate = candidate
        self.kind = kind
        self.labels = labels
        self.input = input
        self.serviceOutput = serviceOutput
        self.candidateOutput = candidateOutput
        self.serviceText = serviceText
        self.candidateText = candidateText
        self.serviceMilliseconds = serviceMilliseconds
        self.candidateMilliseconds = candidateMilliseconds
        self.origin = origin
        self.at = at
    }
}

/// The recorded pairs, in the registry's database (table `service_pairs`): appended, read back for a fit,
/// counted, deleted for a (service, candidate) when a team starts over.
public final class ServicePairStore: Sendable {
    public let database: any RegistryDatabase

    public init(database: any RegistryDatabase) { self.database = database }

    private struct Row: Codable {
        var service: String
        var candidate: String
        var kind: String
        var labels: String
        var input: String
        var serviceOutput: String
        var candidateOutput: String
        var serviceText: String
        var candidateText: String
        var serviceMs: Double
        var candidateMs: Double
        var origin: String
        var at: Int
    }

    /// Appends pairs in one transaction.
    public func record(_ pairs: [ServicePair]) async throws {
        guard !pairs.isEmpty else { return }
        let now = Timestamp.now()
        let rows = try pairs.map { p in
            Row(
                service: p.service, candidate: p.candidate, kind: p.kind,
                labels: String(decoding: try JSONEncoder().encode(p.labels), as: UTF8.self), input: p.input,
                serviceOutput: try Self.text(p.serviceOutput), candidateOutput: try Self.text(p.candidateOutput),
                serviceText: p.serviceText, candidateText: p.candidateText, serviceMs: p.serviceMilliseconds,
                candidateMs: p.candidateMilliseconds, origin: p.origin,
                at: p.at == 0 ? now : p.at)
        }
        try await database.transaction { db in
            for chunk in stride(from: 0, to: rows.count, by: 200) {
                try await db.insert(into: "service_pairs")
                    .models(Array(rows[chunk..<min(rows.count, chunk + 200)]), keyEncodingStrategy: .convertToSnakeCase)
                    .run()
            }
        }
    }

    /// The pairs of a service and candidate, oldest first (at most `limit`, the newest ones when there are more).
    public func pairs(service: String, candidate: String, limit: Int = 100_000) async throws -> [ServicePair] {
        let rows = try await database.transaction(readOnly: true) { db in
            try await db.select().columns("*").from("service_pairs")
                .where("service", .equal, service).where("candidate", .equal, candidate)
                .orderBy("id", .descending).limit(limit)
                .all(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
        }
        return try rows.reversed().map { r in
            ServicePair(
                service: r.service, candidate: r.candidate, kind: r.kind,
                labels: (try? JSONDecoder().decode([String].self, from: Data(r.labels.utf8))) ?? [], input: r.input,
                serviceOutput: try Self.floats(r.serviceOutput), candidateOutput: try Self.floats(r.candidateOutput),
                serviceText: r.serviceText, candidateText: r.candidateText, serviceMilliseconds: r.serviceMs,
                candidateMilliseconds: r.candidateMs, origin: r.origin, at: r.at)
        }
    }

    /// Pairs recorded per (service, candidate).
    public func counts() async throws -> [(service: String, candidate: String, pairs: Int)] {
        struct Count: Decodable {
            let service: String
            let candidate: String
            let n: Int
        }
        return try await database.transaction(readOnly: true) { db in
            try await db.select().column("service").column("candidate")
                .column(SQLFunction("count", args: SQLLiteral.all), as: "n")
                .from("service_pairs").groupBy("service").groupBy("candidate")
                .orderBy("service").orderBy("candidate")
                .all(decoding: Count.self)
        }.map { ($0.service, $0.candidate, $0.n) }
    }

    /// Deletes the pairs of a service (and candidate, when given); answers how many.
    @discardableResult
    public func delete(service: String, candidate: String? = nil) async throws -> Int {
        try await database.transaction { db in
            var count = db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from("service_pairs")
                .where("service", .equal, service)
            var delete = db.delete(from: "service_pairs").where("service", .equal, service)
            if let candidate {
                count = count.where("candidate", .equal, candidate)
                delete = delete.where("candidate", .equal, candidate)
            }
            let n = try await count.first()?.decode(column: "n", as: Int.self) ?? 0
            try await delete.run()
            return n
        }
    }

    static func text(_ values: [Float]) throws -> String {
        guard values.allSatisfy(\.isFinite) else { throw RegistryError(.invalid, "a pair's output is not finite") }
        return String(decoding: try JSONEncoder().encode(values), as: UTF8.self)
    }

    static func floats(_ text: String) throws -> [Float] {
        do {
            return try JSONDecoder().decode([Float].self, from: Data(text.utf8))
        } catch {
            throw RegistryError(.integrity, "a recorded pair's output is not a list of numbers")
        }
    }
}
