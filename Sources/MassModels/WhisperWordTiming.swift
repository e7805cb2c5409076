import Foundation
import MassTensor
import MassTokenizers

/// Word-level timestamps as faster-whisper computes them (`find_alignment` over CTranslate2's `align`, then
/// `add_word_timestamps`): the cross-attention of the model's alignment heads over a teacher-forced pass of the
/// window's text, softmax over the audio frames, normalised per frame across tokens, median-filtered (width 7),
/// averaged over heads, and aligned to the tokens by dynamic time warping; words are runs of tokens split at
/// spaces and punctuation, or, in languages written without spaces, every complete character.
extension WhisperTranscriber {
    /// One word of a segment: its text (leading space included), times in seconds and mean token probability.
    public struct Word: Sendable, Equatable {
        public var word: String
        public var start: Double
        public var end: Double
        public var probability: Double

        public init(word: String, start: Double, end: Double, probability: Double = 0) {
            self.word = word
            self.start = start
            self.end = end
            self.probability = probability
        }
    }

    struct AlignedWord {
        var word: String
        var tokens: [Int]
        var start: Double
        var end: Double
        var probability: Double
    }

    /// The words of `text` (text tokens of a window) with times relative to the window start.
    /// `start` is the window's start sequence (`<|startoftranscript|>`, and a multilingual model's language and
    /// task); `language` decides how words are split.
    func findAlignment(
        _ text: [Int], start: [Int], language: String?, memory: WhisperDecoder.Memory, frames: Int, pool: ComputePool
    ) -> [AlignedWord] {
        guard !text.isEmpty, !alignmentHeads.isEmpty else { return [] }
        let eot = tokenizer.endOfText
        let input = start + [rules.noTimestamps] + text + [eot]
        let offset = start.count  // the logits after <|notimestamps|> predict the first text token
        let (scores, logits) = decoder.alignmentPass(input, memory: memory, heads: alignmentHeads, pool: pool)
        // Probability of each text token among the text tokens.
        let probabilities = text.indices.map { t -> Double in
            let row = logits[offset + t]
            let logTotal = row.withUnsafeBufferPointer { Kernels.logSumExp($0.baseAddress!, count: eot) }
            return Foundation.exp(Double(row[text[t]] - logTotal))
        }
        let rows = input.count
        let total = memory.frames
        let content = min(total, frames / 2)
        var matrix = [Float](repeating: 0, count: rows * content)
        for head in scores {
            var w = [Float](repeating: 0, count: rows * content)
            for r in 0..<rows {
                for f in 0..<content { w[r * content + f] = head[r * total + f] }
                w.withUnsafeMutableBufferPointer {
                    Kernels.softmaxRows($0.baseAddress! + r * content, rows: 1, cols: content, ld: content)
                }
            }
            for f in 0..<content {
                var mean = 0.0
                for r in 0..<rows { mean += Double(w[r * content + f]) }
                mean /= Double(rows)
                var variance = 0.0
                for r in 0..<rows { variance += pow(Double(w[r * content + f]) - mean, 2) }
                let std = (variance / Double(rows)).squareRoot()
                for r in 0..<rows { w[r * content + f] = Float((Double(w[r * content + f]) - mean) / std) }
            }
            for r in 0..<rows {
                let filtered = Self.medianFilter(Array(w[(r * content)..<((r + 1) * content)]), width: 7)
                for f in 0..<content { matrix[r * content + f] += filtered[f] / Float(scores.count) }
            }
        }
        // Rows from <|notimestamps|> to the last text token: row t predicts text token t (the last, end of text).
        let alignRows = rows - offset - 1
        let path = Self.negativeDTW(
            Array(matrix[(offset * content)..<((offset + alignRows) * content)]),
            rows: alignRows, cols: content)
        var jumpTimes: [Double] = []
        var previous: Int? = nil
        for (i, j) in path where previous != i {
            jumpTimes.append(Double(j) / 50)
            previous = i
        }
        let (words, wordTokens) = tokenizer.splitToWordTokens(text + [eot], language: language)
        guard wordTokens.count > 1 else { return [] }
        var boundaries = [0]
        for tokens in wordTokens.dropLast() { boundaries.append(boundaries.last! + tokens.count) }
        var result: [AlignedWord] = []
        for k in 0..<(boundaries.count - 1) {
            let (a, b) = (boundaries[k], boundaries[k + 1])
            guard b < jumpTimes.count else { break }
            let probability = probabilities[a..<min(b, probabilities.count)].reduce(0, +) / Double(max(1, b - a))
            result.append(
                AlignedWord(
                    word: words[k], tokens: wordTokens[k], start: jumpTimes[a], end: jumpTimes[b],
                    probability: probability))
        }
        return result
    }

    /// Median of each `width`-wide window along `x`, mirrored at the edges (CTranslate2's MedianFilter).
    static func medianFilter(_ x: [Float], width: Int) -> [Float] {
        let rank = width / 2
        let depth = x.count
        guard depth > rank else { return x }
        var out = x
        var window = [Float](repeating: 0, count: width)
        for j in 0..<depth {
            for k in -rank...rank {
                var read = abs(j + k)
                if read >= depth { read = depth - (read - depth) - 2 }
                window[k + rank] = x[read]
            }
            window.sort()
            out[j] = window[rank]
        }
        return out
    }

    /// Dynamic time warping on −x (rows × cols): the path of (row, column) pairs from (0, 0) to the end, ties
    /// resolved as CTranslate2's `negative_dtw` does.
    static func negativeDTW(_ x: [Float], rows n: Int, cols m: Int) -> [(Int, Int)] {
        var cost = [Float](repeating: .infinity, count: (n + 1) * (m + 1))
        var trace = [Int8](repeating: -1, count: (n + 1) * (m + 1))
        cost[0] = 0
        for j in 1...max(1, m) where m > 0 {
            for i in 1...max(1, n) where n > 0 {
                let c0 = cost[(i - 1) * (m + 1) + j - 1]
                let c1 = cost[(i - 1) * (m + 1) + j]
                let c2 = cost[i * (m + 1) + j - 1]
                let (c, t): (Float, Int8) = c0 < c1 && c0 < c2 ? (c0, 0) : c1 < c0 && c1 < c2 ? (c1, 1) : (c2, 2)
                cost[i * (m + 1) + j] = -x[(i - 1) * m + (j - 1)] + c
                trace[i * (m + 1) + j] = t
            }
        }
        for k in 0...m { trace[k] = 2 }
        for k in 0...n { trace[k * (m + 1)] = 1 }
        var (i, j) = (n, m)
        var path: [(Int, Int)] = []
        while i > 0 || j > 0 {
            path.append((i - 1, j - 1))
            switch trace[i * (m + 1) + j] {
            case 0:
                i -= 1
                j -= 1
            case 1: i -= 1
            default: j -= 1
            }
        }
        return path.reversed()
    }
}
