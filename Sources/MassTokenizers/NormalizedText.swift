/// A text being normalized, as Hugging Face tokenizers' `NormalizedString`: its current characters (Unicode
/// scalars) and, for each, the range of original characters it came from, so a token's offsets in the input can
/// be recovered. The alignment rules are the reference's: a replacing character takes the alignment of the one it
/// replaces, an inserted character that of the last character consumed before it, and removed characters vanish.
public struct NormalizedText: Sendable {
    public private(set) var scalars: [Unicode.Scalar]
    /// Per character, its original range (start, end) in characters of the input.
    public private(set) var alignments: [(start: Int, end: Int)]

    public init(_ text: some StringProtocol) {
        scalars = Array(text.unicodeScalars)
        alignments = scalars.indices.map { ($0, $0 + 1) }
    }

    init(scalars: [Unicode.Scalar], alignments: [(start: Int, end: Int)]) {
        self.scalars = scalars
        self.alignments = alignments
    }

    public var string: String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    /// Rewrites the whole text: each new character with its change, as the reference's `transform`:
    /// 0 replaces the next original character, 1 is inserted, −N replaces the next one and removes the N after it.
    /// Characters left unconsumed at the end are removed.
    mutating func transform(_ changes: [(Unicode.Scalar, Int)]) {
        var next = 0
        var newScalars: [Unicode.Scalar] = []
        var newAlignments: [(start: Int, end: Int)] = []
        newScalars.reserveCapacity(changes.count)
        newAlignments.reserveCapacity(changes.count)
        for (c, change) in changes {
            let align: (start: Int, end: Int)
            if change > 0 {
                align = next < 1 ? (0, 0) : alignments[next - 1]
            } else {
                align =
                    next < alignments.count ? alignments[next] : (alignments.last?.end ?? 0, alignments.last?.end ?? 0)
                next += 1
                if change < 0 { next += -change }
            }
            newScalars.append(c)
            newAlignments.append(align)
        }
        scalars = newScalars
        alignments = newAlignments
    }

    /// Replaces each character by `map`'s characters (none removes it), every one aligned to its source: the
    /// reference's behaviour for per-character maps, filters and insertions around a character.
    mutating func map(_ map: (Unicode.Scalar) -> [Unicode.Scalar]?) {
        var newScalars: [Unicode.Scalar] = []
        var newAlignments: [(start: Int, end: Int)] = []
        newScalars.reserveCapacity(scalars.count)
        newAlignments.reserveCapacity(scalars.count)
        for (s, align) in zip(scalars, alignments) {
            guard let replacement = map(s) else {
                newScalars.append(s)
                newAlignments.append(align)
                continue
            }
            for r in replacement {
                newScalars.append(r)
                newAlignments.append(align)
            }
        }
        scalars = newScalars
        alignments = newAlignments
    }

    /// Replaces the characters in each of `ranges` (ascending, disjoint) by `content`, as the reference's
    /// `replace`: the new characters take the alignment of the last character of the match.
    mutating func replace(_ ranges: [Range<Int>], with content: [Unicode.Scalar]) {
        guard !ranges.isEmpty else { return }
        var newScalars: [Unicode.Scalar] = []
        var newAlignments: [(start: Int, end: Int)] = []
        var last = 0
        for range in ranges {
            newScalars += scalars[last..<range.lowerBound]
            newAlignments += alignments[last..<range.lowerBound]
            let align = range.upperBound > 0 ? alignments[range.upperBound - 1] : (0, 0)
            newScalars += content
            newAlignments += Array(repeating: align, count: content.count)
            last = range.upperBound
        }
        newScalars += scalars[last...]
        newAlignments += alignments[last...]
        scalars = newScalars
        alignments = newAlignments
    }

    /// Puts `prefix` before the text (nothing when it is empty), aligned to the first character.
    mutating func prepend(_ prefix: Unicode.Scalar) {
        guard let first = alignments.first else { return }
        scalars.insert(prefix, at: 0)
        alignments.insert(first, at: 0)
    }

    /// The part of the text in `range` (of current characters), keeping its alignments.
    func slice(_ range: Range<Int>) -> NormalizedText {
        NormalizedText(scalars: Array(scalars[range]), alignments: Array(alignments[range]))
    }

    /// The original range the current characters in `range` cover (the smallest start and largest end of their
    /// alignments, as the reference's `convert_offsets`).
    func originalRange(_ range: Range<Int>) -> (start: Int, end: Int) {
        guard !range.isEmpty else { return (range.lowerBound, range.lowerBound) }
        let covered = alignments[range]
        return (covered.map(\.start).min()!, covered.map(\.end).max()!)
    }
}
