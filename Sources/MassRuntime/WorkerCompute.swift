import MassModels
import MassTensor

/// One embedding worker's compute resources. A single sequence runs with every thread inside each layer
/// (`pool`: lowest latency). A batch of several is split into one share per thread, balanced by tokens, and each
/// share runs whole on its own single-threaded lane: no per-layer synchronisation, the layout `mass embed` found
/// fastest for throughput (one single-threaded worker per core).
public final class WorkerCompute {
    private let workspace = EncoderWorkspace()
    private let pool: ComputePool
    private let lanes: [(workspace: EncoderWorkspace, pool: ComputePool)]

    public init(threads: Int) {
        pool = ComputePool(threads: threads, pinned: true)
        lanes = threads > 1 ? (0..<threads).map { _ in (EncoderWorkspace(), ComputePool(threads: 1)) } : []
    }

    /// Lets the compute helpers sleep until the next batch.
    public func rest() { pool.rest() }

    /// A single sequence shorter than this, arriving after the worker was idle for `coldGap`, runs on one thread.
    /// After an idle gap the weights are out of cache and the layers are memory-bound: measured over HTTP with one
    /// short sentence every 0.2 s, a second thread made the request no faster (p50 9-14 ms against 7-9 ms) at twice
    /// the CPU. Back to back, two threads halve the latency, so they are kept there (docs/benchmarks.md).
    static let parallelTokenThreshold = 64
    static let coldGap: Duration = .milliseconds(20)
    private var lastCall = ContinuousClock.now

    func embed(_ sequences: [[Int32]], model: SentenceEmbedder) throws -> [[Float]] {
        let now = ContinuousClock.now
        let cold = now - lastCall > Self.coldGap
        defer { lastCall = ContinuousClock.now }
        if cold, sequences.count == 1, sequences[0].count < Self.parallelTokenThreshold, let lane = lanes.first {
            return try model.embed(sequences, workspace: lane.workspace, pool: lane.pool)
        }
        guard lanes.count > 1, sequences.count >= lanes.count else {
            return try model.embed(sequences, workspace: workspace, pool: pool)
        }
        // Longest first, each to the lane with the fewest tokens so far.
        var shares = [[Int]](repeating: [], count: lanes.count)
        var tokens = [Int](repeating: 0, count: lanes.count)
        for i in sequences.indices.sorted(by: { sequences[$0].count > sequences[$1].count }) {
            let lane = tokens.indices.min { tokens[$0] < tokens[$1] }!
            shares[lane].append(i)
            tokens[lane] += sequences[i].count
        }
        let outputs = UnsafeMutableBufferPointer<[[Float]]>.allocate(capacity: lanes.count)
        outputs.initialize(repeating: [])
        let failures = UnsafeMutableBufferPointer<(any Error)?>.allocate(capacity: lanes.count)
        failures.initialize(repeating: nil)
        defer {
            outputs.deinitialize().deallocate()
            failures.deinitialize().deallocate()
        }
        pool.parallelFor(lanes.count) { lane in
            do {
                outputs[lane] = try model.embed(
                    shares[lane].map { sequences[$0] }, workspace: lanes[lane].workspace, pool: lanes[lane].pool)
            } catch {
                failures[lane] = error
            }
        }
        if let failure = failures.lazy.compactMap({ $0 }).first { throw failure }
        var result = [[Float]](repeating: [], count: sequences.count)
        for (lane, share) in shares.enumerated() {
            for (k, i) in share.enumerated() { result[i] = outputs[lane][k] }
        }
        return result
    }
}
