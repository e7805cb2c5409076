public import Foundation
public import MassTensor
public import MassWeights

/// A Transformer text encoder: token ids (and segments) in, one hidden state per token out. Sentence embedders
/// and sequence classifiers are heads over any encoder, so a new encoder architecture (MPNet, RoBERTa) is one
/// file with a type conforming to this and one architecture-registry line that hands its loader to the heads.
public protocol TextEncoder: AnyObject, Sendable {
    /// Width of every hidden state.
    var hiddenSize: Int { get }
    /// Longest sequence the position embeddings cover, special tokens included.
    var maxPositions: Int { get }
    /// The last hidden states of a ragged batch, concatenated in order: [Σ lengths, hiddenSize], valid until the
    /// workspace is used again. `typeIds`, when given, are the segments of each token (all 0 without).
    func hiddenStates(
        _ sequences: [[Int32]], typeIds: [[Int32]]?, workspace: EncoderWorkspace, pool: ComputePool
    ) throws -> UnsafePointer<Float>
    /// Floating-point operations of one forward pass over sequences of these lengths (for benchmarks' GFLOP/s).
    func forwardFlops(lengths: [Int]) -> Double
}

/// The checks every encoder makes on a ragged batch of token ids before running it.
enum TextEncoderInput {
    /// Refuses sequences longer than `maxLength` or with ids outside the vocabulary; returns the total token
    /// count, the longest sequence and where each sequence starts in the concatenated batch.
    static func check(_ sequences: [[Int32]], vocabulary: Int, maxLength: Int) throws
        -> (total: Int, longest: Int, offsets: [Int])
    {
        let longest = sequences.map(\.count).max() ?? 0
        guard longest <= maxLength else {
            throw ModelError(
                .invalidInput, "a sequence has \(longest) tokens; this model takes at most \(maxLength)")
        }
        var offsets: [Int] = []
        var total = 0
        for ids in sequences {
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
                throw ModelError(.invalidInput, "token id \(bad) is outside the vocabulary (size \(vocabulary))")
            }
            offsets.append(total)
            total += ids.count
        }
        return (total, longest, offsets)
    }
}

/// Builds an encoder from a checkpoint's `config.json` and its weights.
public typealias TextEncoderLoader =
    @Sendable (_ configFile: URL, _ weights: any WeightSource) throws -> any TextEncoder

/// Scratch memory for one encoder forward pass; one per compute thread, reused across batches. It grows to the
/// largest batch seen and is freed with the workspace.
public final class EncoderWorkspace {
    var capacity = 0
    var hidden = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var qkv = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var context = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var intermediate = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    /// One attention score matrix per pool thread, each `scoreCapacity` floats.
    var scores: [UnsafeMutablePointer<Float>] = []
    var scoreCapacity = 0
    private var width = (hidden: 0, intermediate: 0)

    public init() {}

    /// Makes room for `tokens` tokens of the given widths and attention over sequences up to `maxLength`.
    func reserve(tokens: Int, hidden h: Int, intermediate f: Int, headDimension: Int, maxLength: Int, threads: Int) {
        let needed = Kernels.attentionScratchCount(tokens: maxLength, d: headDimension)
        if scores.count < threads || scoreCapacity < needed {
            for s in scores { s.deallocate() }
            scoreCapacity = max(scoreCapacity, needed)
            scores = (0..<threads).map { _ in .allocate(capacity: scoreCapacity) }
        }
        guard tokens > capacity || h > width.hidden || f > width.intermediate else { return }
        release()
        capacity = max(tokens, capacity, 64)
        width = (max(h, width.hidden), max(f, width.intermediate))
        hidden = .allocate(capacity: capacity * width.hidden)
        qkv = .allocate(capacity: capacity * 3 * width.hidden)
        context = .allocate(capacity: capacity * width.hidden)
        intermediate = .allocate(capacity: capacity * width.intermediate)
    }

    private func release() {
        hidden.deallocate()
        qkv.deallocate()
        context.deallocate()
        intermediate.deallocate()
    }

    deinit {
        release()
        for s in scores { s.deallocate() }
    }
}
