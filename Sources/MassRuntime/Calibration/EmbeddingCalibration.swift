import Foundation
import MassTensor

/// Fits and evaluates what makes a local embedding model agree with a service's: an orthogonal Procrustes map
/// and a least-squares affine map from the local space to the service's, on recorded pairs, judged on a held-out
/// part of them (platform.md section 3; Drift-Adapter, EMNLP 2025).
///
/// The judgement is the one a team moving off the service cares about: a corpus indexed with the service's
/// vectors, queried with the local model's mapped vectors. Mean cosine between a mapped vector and the service's
/// own; recall@10 agreement: the share of the 10 nearest held-out neighbours (by the service's vectors) that the
/// mapped query finds among the service's vectors. Beside them, a full re-embed: the local model's own
/// neighbours in its own space, the quality the maps try to reach without re-indexing.
public enum EmbeddingCalibration {
    /// Agreement of one way of answering with the service, on the held-out pairs.
    public struct Evaluation: Codable, Sendable, Equatable {
        /// Mean cosine to the service's vectors (nil: the spaces differ in dimension and nothing maps them).
        public var meanCosine: Double?
        public var recallAt10: Double?

        enum CodingKeys: String, CodingKey {
            case meanCosine = "mean_cosine"
            case recallAt10 = "recall_at_10"
        }

        /// Absent figures are written as null (not left out): "before" has none when the spaces differ.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(meanCosine, forKey: .meanCosine)
            try container.encode(recallAt10, forKey: .recallAt10)
        }
    }

    public struct Report: Codable, Sendable, Equatable {
        public var trainPairs: Int
        public var heldOutPairs: Int
        public var localDimension: Int
        public var serviceDimension: Int
        /// The local model's vectors as they are, in the service's index.
        public var before: Evaluation
        public var procrustes: Evaluation
        public var affine: Evaluation
        /// The local model re-embedding the corpus: its neighbours against the service's.
        public var reembedRecallAt10: Double

        enum CodingKeys: String, CodingKey {
            case trainPairs = "train_pairs"
            case heldOutPairs = "held_out_pairs"
            case localDimension = "local_dimension"
            case serviceDimension = "service_dimension"
            case before, procrustes, affine
            case reembedRecallAt10 = "reembed_recall_at_10"
        }
    }

    /// Pairs go to the held-out part by a hash of their input (the same text always lands on the same side).
    public static func isHeldOut(_ key: String, fraction: Double) -> Bool {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Double(hash % 10_000) < fraction * 10_000
    }

    /// Fits both maps on the training pairs and evaluates everything on the held-out ones.
    public static func calibrate(
        local: [[Float]], service: [[Float]], keys: [String], heldOut fraction: Double = 0.2
    ) throws -> (report: Report, procrustes: LinearAdapter, affine: LinearAdapter) {
        guard local.count == service.count, local.count == keys.count, let dx = local.first?.count,
            let dy = service.first?.count, dx > 0, dy > 0,
            local.allSatisfy({ $0.count == dx }), service.allSatisfy({ $0.count == dy })
        else { throw RuntimeError(.invalidInput, "pairs must have vectors of one length per side") }
        var train: [Int] = []
        var held: [Int] = []
        for i in keys.indices {
            if isHeldOut(keys[i], fraction: fraction) { held.append(i) } else { train.append(i) }
        }
        guard train.count >= 2, held.count >= 11 else {
            throw RuntimeError(
                .invalidInput,
                "\(local.count) pairs give \(train.count) to fit and \(held.count) to judge; at least 2 and 11 are needed"
            )
        }
        let x = train.map { LinearAdapter.unit(local[$0]) }
        let y = train.map { LinearAdapter.unit(service[$0]) }
        let orthogonal = try procrustes(x, y)
        let affine = try affine(x, y)
        let heldLocal = held.map { LinearAdapter.unit(local[$0]) }
        let heldService = held.map { LinearAdapter.unit(service[$0]) }
        let truth = neighbours(queries: heldService, corpus: heldService)
        func judge(_ mapped: [[Float]]?) -> Evaluation {
            guard let mapped else { return Evaluation(meanCosine: nil, recallAt10: nil) }
            return Evaluation(
                meanCosine: Agreement.cosine(mapped, heldService),
                recallAt10: recall(neighbours(queries: mapped, corpus: heldService), truth))
        }
        let report = Report(
            trainPairs: train.count, heldOutPairs: held.count, localDimension: dx, serviceDimension: dy,
            before: judge(dx == dy ? heldLocal : nil), procrustes: judge(try orthogonal.apply(heldLocal)),
            affine: judge(try affine.apply(heldLocal)),
            reembedRecallAt10: recall(neighbours(queries: heldLocal, corpus: heldLocal), truth))
        return (report, orthogonal, affine)
    }

    /// The orthogonal (semi-orthogonal when the dimensions differ) W minimising |X W - Y|: W = U Vᵀ for
    /// XᵀY = U Σ Vᵀ, computed as M (MᵀM)^(-1/2) (or (MMᵀ)^(-1/2) M) from a symmetric eigen-decomposition.
    static func procrustes(_ x: [[Float]], _ y: [[Float]]) throws -> LinearAdapter {
        let dx = x[0].count
        let dy = y[0].count
        let m = LinearAlgebra.transposeTimes(
            x.flatMap { $0.map(Double.init) }, y.flatMap { $0.map(Double.init) }, rows: x.count, p: dx, q: dy)
        let w: [Double]
        if dy <= dx {
            let gram = LinearAlgebra.transposeTimes(m, m, rows: dx, p: dy, q: dy)  // MᵀM
            w = LinearAlgebra.times(m, try inverseSquareRoot(gram, n: dy), n: dx, k: dy, m: dy)
        } else {
            let mt = transpose(m, rows: dx, columns: dy)
            let gram = LinearAlgebra.transposeTimes(mt, mt, rows: dy, p: dx, q: dx)  // MMᵀ
            w = LinearAlgebra.times(try inverseSquareRoot(gram, n: dx), m, n: dx, k: dx, m: dy)
        }
        return LinearAdapter(
            kind: "procrustes", inputDimension: dx, outputDimension: dy, weight: w.map(Float.init), bias: nil)
    }

    /// The W, b minimising |X W + b - Y|² + λ|W|² (λ: 1e-3 of the mean diagonal of XᵀX, for pairs fewer than
    /// dimensions), by the normal equations.
    static func affine(_ x: [[Float]], _ y: [[Float]]) throws -> LinearAdapter {
        let dx = x[0].count
        let dy = y[0].count
        let n = dx + 1
        let a: [Double] = x.flatMap { row -> [Double] in row.map(Double.init) + [1.0] }
        var gram = LinearAlgebra.transposeTimes(a, a, rows: x.count, p: n, q: n)
        let ridge = 1e-3 * (0..<dx).reduce(0.0) { $0 + gram[$1 * n + $1] } / Double(dx)
        for i in 0..<dx { gram[i * n + i] += ridge }
        let rhs = LinearAlgebra.transposeTimes(a, y.flatMap { $0.map(Double.init) }, rows: x.count, p: n, q: dy)
        let solution = try LinearAlgebra.solvePositiveDefinite(gram, n: n, rhs, columns: dy)
        return LinearAdapter(
            kind: "affine", inputDimension: dx, outputDimension: dy,
            weight: solution[0..<(dx * dy)].map(Float.init), bias: solution[(dx * dy)...].map(Float.init))
    }

    /// S^(-1/2) of a symmetric positive semi-definite S, over the eigenvalues above 1e-9 of the largest (the
    /// rest, directions no pair spans, are left out).
    static func inverseSquareRoot(_ s: [Double], n: Int) throws -> [Double] {
        let (values, vectors) = try LinearAlgebra.symmetricEigen(s, n: n)
        let largest = values.max() ?? 0
        var out = [Double](repeating: 0, count: n * n)
        for k in 0..<n where values[k] > largest * 1e-9 && values[k] > 0 {
            let scale = 1 / values[k].squareRoot()
            for i in 0..<n {
                let vi = vectors[i * n + k] * scale
                if vi == 0 { continue }
                for j in 0..<n { out[i * n + j] += vi * vectors[j * n + k] }
            }
        }
        return out
    }

    static func transpose(_ a: [Double], rows: Int, columns: Int) -> [Double] {
        var t = [Double](repeating: 0, count: a.count)
        for i in 0..<rows {
            for j in 0..<columns { t[j * rows + i] = a[i * columns + j] }
        }
        return t
    }

    /// For each query i, the indexes of its 10 nearest corpus vectors by cosine (all unit length), leaving out
    /// corpus item i (queries and corpus are the same held-out pairs). The similarities come from one SGEMM.
    static func neighbours(queries: [[Float]], corpus: [[Float]]) -> [[Int]] {
        let n = queries.count
        let m = corpus.count
        let d = corpus.first?.count ?? 0
        let k = min(10, m - 1)
        guard n > 0, m > 1, d > 0, (try? BLAS.load()) != nil else { return Array(repeating: [], count: n) }
        let q = queries.flatMap { $0 }
        let c = corpus.flatMap { $0 }
        var similarity = [Float](repeating: 0, count: n * m)
        q.withUnsafeBufferPointer { q in
            c.withUnsafeBufferPointer { c in
                similarity.withUnsafeMutableBufferPointer { s in
                    BLAS.sgemm(
                        transA: false, transB: true, m: n, n: m, k: d, alpha: 1, a: q.baseAddress!, lda: d,
                        b: c.baseAddress!, ldb: d, beta: 0, c: s.baseAddress!, ldc: m)
                }
            }
        }
        return (0..<n).map { i in
            let row = similarity[(i * m)..<((i + 1) * m)]
            var order = Array(0..<m).filter { $0 != i }
            order.sort { row[row.startIndex + $0] > row[row.startIndex + $1] }
            return Array(order.prefix(k))
        }
    }

    static func recall(_ found: [[Int]], _ truth: [[Int]]) -> Double {
        let total = zip(found, truth).reduce(0.0) { sum, pair in
            sum + Double(Set(pair.0).intersection(pair.1).count) / Double(max(1, pair.1.count))
        }
        return total / Double(max(1, found.count))
    }
}
