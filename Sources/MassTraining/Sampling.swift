import Foundation
public import MassAutograd

/// Deterministic data order: seeded shuffles, train/validation/test splits, and batches of similar lengths.
public enum Sampling {
    /// A Fisher–Yates shuffle of 0..<count drawn from `seed` (the same order on every machine and run).
    public static func shuffled(_ count: Int, seed: UInt64) -> [Int] {
        var generator = SeededGenerator(seed: seed)
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(generator.next() % UInt64(i + 1)))
        }
        return order
    }

    /// Indices of 0..<count split into train, validation and test by the given fractions of a seeded shuffle
    /// (validation and test rounded down; train takes the rest). Each part keeps the shuffled order. The test part
    /// comes first, then the validation part is block `fold` of what follows (0: the first), so other folds hold
    /// other validation examples and the very same test part.
    public static func split(_ count: Int, validation: Double, test: Double = 0, seed: UInt64, fold: Int = 0) -> (
        train: [Int], validation: [Int], test: [Int]
    ) {
        precondition(validation >= 0 && test >= 0 && validation + test < 1, "split: fractions must leave a train part")
        precondition((0..<folds(validation: validation, test: test)).contains(fold), "split: fold past the data")
        let order = shuffled(count, seed: seed)
        let (v, t) = (Int(Double(count) * validation), Int(Double(count) * test))
        let start = t + fold * v
        return (
            Array(order[t..<start] + order[(start + v)...]), Array(order[start..<(start + v)]), Array(order[0..<t])
        )
    }

    /// How many validation blocks of fraction `validation` fit beside a test part of fraction `test` (the folds
    /// `split` takes: 0 to this minus 1).
    public static func folds(validation: Double, test: Double) -> Int { Int((1 - test) / validation + 1e-9) }

    /// Batches of `size` examples for one epoch: shuffled by `seed`, then within windows of `size · 50` examples
    /// sorted by length so a batch pads little, and the batches themselves shuffled (so lengths do not rise
    /// through the epoch). Every index appears once; the last batch may be smaller.
    public static func batchesByLength(_ indices: [Int], lengths: (Int) -> Int, size: Int, seed: UInt64) -> [[Int]] {
        precondition(size > 0, "batchesByLength: size must be positive")
        var generator = SeededGenerator(seed: seed)
        var order = indices
        order.shuffle(using: &generator)
        let window = size * 50
        var batches: [[Int]] = []
        for start in stride(from: 0, to: order.count, by: window) {
            let sorted = order[start..<min(start + window, order.count)].sorted { lengths($0) < lengths($1) }
            for b in stride(from: 0, to: sorted.count, by: size) {
                batches.append(Array(sorted[b..<min(b + size, sorted.count)]))
            }
        }
        batches.shuffle(using: &generator)
        return batches
    }
}

/// The learning rate through training: a linear warm-up from 0, then constant, linear decay to 0, or cosine
/// decay to 0 (Hugging Face's `get_linear_schedule_with_warmup` and `get_cosine_schedule_with_warmup`).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Decay: String, Sendable, Codable {
        case constant, linear, cosine
    }

    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    public var decay: Decay

    public init(peak: Float, warmupSteps: Int = 0, totalSteps: Int, decay: Decay = .linear) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.decay = decay
    }

    /// The rate for step `step` (0-based: the first optimizer step uses step 0).
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step) / Float(max(1, warmupSteps)) }
        let progress = Float(step - warmupSteps) / Float(max(1, totalSteps - warmupSteps))
        switch decay {
        case .constant: return peak
        case .linear: return peak * max(0, 1 - progress)
        case .cosine: return peak * max(0, 0.5 * (1 + Foundation.cos(Float.pi * min(progress, 1))))
        }
    }
}

/// Scales every gradient so that their joint L2 norm is at most `maxNorm` (PyTorch's `clip_grad_norm_`, with its
/// 1e-6 in the divisor); returns the norm before clipping. A non-finite norm is returned as is, nothing scaled
/// (the caller stops: the loss diverged).
@discardableResult
public func clipGradientNorm(_ parameters: [Variable], maxNorm: Float) -> Float {
    var squares: Double = 0
    for p in parameters { for g in p.grad ?? [] { squares += Double(g) * Double(g) } }
    let norm = Float(squares.squareRoot())
    guard norm.isFinite else { return norm }
    let scale = maxNorm / (norm + 1e-6)
    if scale < 1 {
        for p in parameters where p.grad != nil { p.grad = p.grad!.map { $0 * scale } }
    }
    return norm
}

/// Stops training when the validation metric has not improved by more than `minDelta` for `patience`
/// evaluations, and remembers the best. Where a tie-break is recorded too (the validation loss beside an
/// accuracy), an evaluation whose metric is no worse than the best and whose loss is lower is the better model: an
/// accuracy that saturates early (every validation example right after one epoch) would otherwise keep that
/// first, barely trained epoch.
public struct EarlyStopping: Sendable, Codable, Equatable {
    public let patience: Int
    public let minDelta: Double
    public let higherIsBetter: Bool
    public private(set) var best: Double?
    public private(set) var bestTieBreak: Double?
    public private(set) var bestEvaluation = -1
    private var evaluations = 0

    public init(patience: Int, minDelta: Double = 0, higherIsBetter: Bool = true) {
        self.patience = patience
        self.minDelta = minDelta
        self.higherIsBetter = higherIsBetter
    }

    /// Records a metric and, optionally, a lower-is-better tie-break; true when this one is the best so far
    /// (save a checkpoint).
    public mutating func record(_ metric: Double, tieBreak: Double? = nil) -> Bool {
        defer { evaluations += 1 }
        let improved: Bool
        if let best {
            let better = higherIsBetter ? metric > best + minDelta : metric < best - minDelta
            let noWorse = higherIsBetter ? metric >= best : metric <= best
            let lower = tieBreak.map { candidate in bestTieBreak.map { candidate < $0 } ?? false } ?? false
            improved = better || (noWorse && lower)
        } else {
            improved = true
        }
        if improved {
            best = metric
            bestTieBreak = tieBreak
            bestEvaluation = evaluations
        }
        return improved
    }

    /// Whether `patience` evaluations have passed without improvement.
    public var shouldStop: Bool { evaluations - 1 - bestEvaluation >= patience }
}
