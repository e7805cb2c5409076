import Foundation
import MassModels
import MassTensor

/// Embeds a whole list of texts as fast as the engine can: texts sorted by token count, cut into ragged
/// batches (no padding) of up to `batchSize` texts and `tokenBudget` tokens, run by `workers` threads that
/// each own a workspace and single-threaded BLAS. With one worker it uses `threadsPerWorker` threads inside
/// each call instead (lowest latency per call).
final class OfflineEmbedder: @unchecked Sendable {  // `run` is called by one thread at a time
    let model: SentenceEmbedder
    let workers: Int
    let threadsPerWorker: Int
    private let workspaces: [EncoderWorkspace]
    private let pools: [ComputePool]

    init(model: SentenceEmbedder, workers: Int, threadsPerWorker: Int) {
        self.model = model
        self.workers = max(1, workers)
        self.threadsPerWorker = max(1, threadsPerWorker)
        workspaces = (0..<self.workers).map { _ in EncoderWorkspace() }
        pools = (0..<self.workers).map { _ in ComputePool(threads: max(1, threadsPerWorker)) }
    }

    struct Batch {
        let indices: [Int]
    }

    /// Groups item indices into batches in order of increasing length.
    static func plan(lengths: [Int], batchSize: Int, tokenBudget: Int) -> [Batch] {
        let order = lengths.indices.sorted { lengths[$0] < lengths[$1] }
        var batches: [Batch] = []
        var current: [Int] = []
        var tokens = 0
        for i in order {
            if !current.isEmpty && (current.count >= batchSize || tokens + lengths[i] > tokenBudget) {
                batches.append(Batch(indices: current))
                current = []
                tokens = 0
            }
            current.append(i)
            tokens += lengths[i]
        }
        if !current.isEmpty { batches.append(Batch(indices: current)) }
        return batches
    }

    /// Shared progress of one `run`; every field is guarded by `lock`.
    private final class Progress: @unchecked Sendable {
        let lock = NSLock()
        var next = 0
        var failure: (any Error)?
        var results: [[Float]]
        var seconds: [Double]
        init(items: Int, batches: Int) {
            results = [[Float]](repeating: [], count: items)
            seconds = [Double](repeating: 0, count: batches)
        }
    }

    /// Embeds `sequences` (token ids); returns embeddings in input order, and each call's seconds.
    func run(_ sequences: [[Int32]], batches: [Batch]) throws -> (embeddings: [[Float]], callSeconds: [Double]) {
        let progress = Progress(items: sequences.count, batches: batches.count)
        let work: @Sendable (Int) -> Void = { [self] worker in
            while true {
                let b: Int = progress.lock.withLock {
                    defer { progress.next += 1 }
                    return progress.failure == nil ? progress.next : Int.max
                }
                if b >= batches.count { return }
                let batch = batches[b]
                let start = DispatchTime.now().uptimeNanoseconds
                do {
                    let out = try model.embed(
                        batch.indices.map { sequences[$0] }, workspace: workspaces[worker], pool: pools[worker])
                    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    progress.lock.withLock {
                        for (k, i) in batch.indices.enumerated() { progress.results[i] = out[k] }
                        progress.seconds[b] = elapsed
                    }
                } catch {
                    progress.lock.withLock { progress.failure = error }
                }
            }
        }
        if workers == 1 {
            work(0)
        } else {
            let group = DispatchGroup()
            for w in 1..<workers {
                group.enter()
                let thread = Thread {
                    work(w)
                    group.leave()
                }
                thread.stackSize = 1 << 20
                thread.start()
            }
            work(0)
            group.wait()
        }
        if let failure = progress.failure { throw failure }
        return (progress.results, progress.seconds)
    }
}
