/// The validation part in two halves (its even and its odd positions), to check a run's choice of epoch: the
/// epoch with the best accuracy on one half, scored on the other, both ways, averaged. A run's own best validation
/// accuracy picks the epoch on the very examples it scores, so it favours runs whose accuracy swings from epoch to
/// epoch (their best epoch is partly luck, and a test part sees less of it); the crossed accuracy does not.
public enum ValidationHalves {
    /// The accuracy on the even and on the odd positions of a part, from each position's correctness; nil when
    /// either half is empty.
    public static func accuracies(_ correct: [Bool]) -> [Double]? {
        guard correct.count >= 2 else { return nil }
        return (0..<2).map { half in
            let picked = stride(from: half, to: correct.count, by: 2).map { correct[$0] }
            return Double(picked.filter { $0 }.count) / Double(picked.count)
        }
    }

    /// The crossed accuracy of a run from its epochs' two half accuracies (oldest first): for each half, the
    /// other half's accuracy at the epoch with the best accuracy on it (the mean over tied epochs), the two
    /// averaged. Nil without epochs or when an epoch does not hold two halves.
    public static func crossed(_ epochs: [[Double]]) -> Double? {
        guard !epochs.isEmpty, epochs.allSatisfy({ $0.count == 2 }) else { return nil }
        let scores = [(0, 1), (1, 0)].map { pick, score in
            let best = epochs.map { $0[pick] }.max()!
            let tied = epochs.filter { $0[pick] == best }
            return tied.map { $0[score] }.reduce(0, +) / Double(tied.count)
        }
        return (scores[0] + scores[1]) / 2
    }
}
