import MassAutograd

/// Variants of a distillation's training texts (`distill.augment`): each keeps a contiguous run of a text's words
/// and leaves some of the rest out. The teacher embeds them as any text, so the student sees more inputs near the
/// data it must generalise from (TinyBERT's augmentation does this with replaced words; cropping and dropping need
/// no other model). Only the training part is varied: a variant of a held-out text would leak it.
public struct TextAugmentation: Sendable, Codable, Equatable {
    /// Variants per training text (1 to 10).
    public var copies: Int
    /// The shortest share of a text's words a variant keeps together (0 < crop <= 1; 1: all of them).
    public var crop: Double
    /// The chance that each kept word is then left out (0 <= drop < 1; at least one word stays).
    public var drop: Double

    public init(copies: Int = 1, crop: Double = 0.5, drop: Double = 0.1) {
        (self.copies, self.crop, self.drop) = (copies, crop, drop)
    }

    enum CodingKeys: String, CodingKey { case copies, crop, drop }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        copies = try c.decodeIfPresent(Int.self, forKey: .copies) ?? 1
        crop = try c.decodeIfPresent(Double.self, forKey: .crop) ?? 0.5
        drop = try c.decodeIfPresent(Double.self, forKey: .drop) ?? 0.1
    }

    public func validate() throws(TrainingError) {
        guard (1...10).contains(copies) else {
            throw TrainingError(.badConfig, "'augment.copies' must be from 1 to 10")
        }
        guard crop > 0, crop <= 1 else {
            throw TrainingError(.badConfig, "'augment.crop' must be above 0 and at most 1")
        }
        guard drop >= 0, drop < 1 else { throw TrainingError(.badConfig, "'augment.drop' must be from 0 to below 1") }
        guard crop < 1 || drop > 0 else {
            throw TrainingError(.badConfig, "'augment' with crop 1 and drop 0 would only repeat the texts")
        }
    }

    /// `copies` variants of each text, in order (copy 1 of every text, then copy 2, ...), the same for the same
    /// seed; a text of one word, and a variant that came out as its text, give none.
    public func variants(of texts: [String], seed: UInt64) -> [String] {
        var generator = SeededGenerator(seed: seed)
        var result: [String] = []
        for _ in 0..<copies {
            for text in texts {
                let words = text.split(whereSeparator: \.isWhitespace)
                guard words.count > 1 else { continue }
                let shortest = min(words.count, max(1, Int((crop * Double(words.count)).rounded(.up))))
                let length = shortest + Int(generator.next() % UInt64(words.count - shortest + 1))
                let start = Int(generator.next() % UInt64(words.count - length + 1))
                let run = words[start..<(start + length)]
                var kept = run.filter { _ in Double(generator.next() >> 11) / Double(1 << 53) >= drop }
                if kept.isEmpty { kept = [run[start + Int(generator.next() % UInt64(length))]] }
                let variant = kept.joined(separator: " ")
                if variant != words.joined(separator: " ") { result.append(variant) }
            }
        }
        return result
    }
}
