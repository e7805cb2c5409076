import Foundation
public import MassTensor

/// Beam search with Whisper's timestamp rules, as CTranslate2's `WhisperReplica::generate` runs it for
/// faster-whisper's defaults (beam 5, patience 1, length penalty 1, temperature 0).
extension WhisperDecoder {
    /// Token ids the rules need.
    public struct SpecialTokens: Sendable {
        public var endOfText = 50256
        public var startOfTranscript = 50257
        public var noSpeech = 50361
        public var noTimestamps = 50362
        public var timestampBegin = 50363
        public var maxInitialTimestamp = 50  // 1.0 s in 0.02 s steps

        public init() {}
    }

    /// The decoding state copied for a new beam (the cross-attention keys and values are shared).
    func copy(_ state: State) -> State {
        let c = State(crossKV: state.crossKV, frames: state.frames)
        c.selfK = state.selfK
        c.selfV = state.selfV
        c.length = state.length
        return c
    }

    /// openai's `ApplyTimestampRules` on one hypothesis's logits.
    static func applyTimestampRules(_ logits: inout [Float], generated: [Int], special: SpecialTokens) {
        let lowest = -Float.greatestFiniteMagnitude
        let begin = special.timestampBegin
        logits[special.noTimestamps] = lowest
        if generated.isEmpty {
            for i in 0..<begin { logits[i] = lowest }
            let last = begin + special.maxInitialTimestamp
            if last + 1 < logits.count { for i in (last + 1)..<logits.count { logits[i] = lowest } }
        } else {
            let lastWasTimestamp = generated.last! >= begin
            let penultimateWasTimestamp = generated.count < 2 || generated[generated.count - 2] >= begin
            if lastWasTimestamp {
                if penultimateWasTimestamp {
                    for i in begin..<logits.count { logits[i] = lowest }
                } else {
                    for i in 0..<special.endOfText { logits[i] = lowest }
                }
            }
            if let lastTimestamp = generated.last(where: { $0 >= begin }) {
                let bound = lastWasTimestamp && !penultimateWasTimestamp ? lastTimestamp : lastTimestamp + 1
                if bound > begin { for i in begin..<min(bound, logits.count) { logits[i] = lowest } }
            }
        }
        // If the timestamps together are more likely than any text token, a timestamp must come.
        let peak = Double(logits.max() ?? 0)
        var total = 0.0
        for v in logits { total += Foundation.exp(Double(v) - peak) }
        let logTotal = Foundation.log(total) + peak
        var timestampSum = 0.0
        for i in begin..<logits.count { timestampSum += Foundation.exp(Double(logits[i]) - peak) }
        let timestampLogProb = Foundation.log(timestampSum) + peak - logTotal
        var bestText = -Double.infinity
        for i in 0..<begin { bestText = max(bestText, Double(logits[i]) - logTotal) }
        if timestampSum > 0 && timestampLogProb > bestText { for i in 0..<begin { logits[i] = lowest } }
    }

    /// Beam search over one window. `timestamps` applies the timestamp rules (the prompt does not end with
    /// no-timestamps). Returns the best hypothesis: its tokens (end-of-text excluded), its cumulative log-probability
    /// (end-of-text included) and the no-speech probability.
    public func beamSearch(
        memory: [Float], prompt: [Int], beams beamCount: Int, patience: Double = 1, timestamps: Bool,
        special: SpecialTokens, suppress: Set<Int>, suppressAtBegin: Set<Int>, maxNewTokens: Int, pool: ComputePool
    ) -> Decoded {
        let root = start(memory: memory, pool: pool)
        var noSpeechProbability = 0.0
        func takeNoSpeech(_ logits: [Float]) {
            let peak = Double(logits.max() ?? 0)
            let total = logits.reduce(0.0) { $0 + Foundation.exp(Double($1) - peak) }
            noSpeechProbability = Foundation.exp(Double(logits[special.noSpeech]) - peak) / total
        }
        for token in prompt.dropLast() {
            let logits = step(token, state: root, pool: pool)
            if token == special.startOfTranscript { takeNoSpeech(logits) }
        }
        struct Beam {
            var tokens: [Int]
            var logProbability: Double
            var state: State
            var input: Int
        }
        var beams = [Beam(tokens: [], logProbability: 0, state: root, input: prompt.last!)]
        var finished: [(tokens: [Int], logProbability: Double, score: Double)] = []
        let wanted = max(1, Int((Double(beamCount) * patience).rounded()))
        func score(_ tokens: [Int], _ logProbability: Double) -> Double {
            logProbability / Double(max(1, tokens.count))
        }
        for stepIndex in 0..<maxNewTokens {
            guard beams.first!.state.length < maxPositions else { break }
            var candidates: [(beam: Int, token: Int, logProbability: Double)] = []
            let allLogits = step(beams.map(\.input), states: beams.map(\.state), pool: pool)
            for (b, beam) in beams.enumerated() {
                var logits = allLogits[b]
                if beam.input == special.startOfTranscript && stepIndex == 0 { takeNoSpeech(logits) }
                for t in suppress where t < logits.count { logits[t] = -.greatestFiniteMagnitude }
                if stepIndex == 0 {
                    for t in suppressAtBegin where t < logits.count { logits[t] = -.greatestFiniteMagnitude }
                }
                if timestamps { Self.applyTimestampRules(&logits, generated: beam.tokens, special: special) }
                let peak = Double(logits.max()!)
                let logTotal = Foundation.log(logits.reduce(0.0) { $0 + Foundation.exp(Double($1) - peak) }) + peak
                // This beam's best 2·beams tokens are enough for the global top 2·beams.
                var best: [(Int, Double)] = []
                for (i, v) in logits.enumerated() where v > -Float.greatestFiniteMagnitude {
                    let lp = Double(v) - logTotal
                    if best.count < 2 * beamCount {
                        best.append((i, lp))
                        best.sort { $0.1 > $1.1 }
                    } else if lp > best.last!.1 {
                        best[best.count - 1] = (i, lp)
                        best.sort { $0.1 > $1.1 }
                    }
                }
                for (token, lp) in best { candidates.append((b, token, beam.logProbability + lp)) }
            }
            candidates.sort { $0.logProbability > $1.logProbability }
            let top = Array(candidates.prefix(2 * beamCount))
            var next: [Beam] = []
            for (rank, c) in top.enumerated() where rank < beamCount {
                let parent = beams[c.beam]
                if c.token == special.endOfText {
                    finished.append((parent.tokens, c.logProbability, score(parent.tokens, c.logProbability)))
                } else {
                    next.append(
                        Beam(
                            tokens: parent.tokens + [c.token], logProbability: c.logProbability, state: parent.state,
                            input: c.token))
                }
            }
            for c in top.dropFirst(beamCount) where next.count < beamCount && c.token != special.endOfText {
                let parent = beams[c.beam]
                next.append(
                    Beam(
                        tokens: parent.tokens + [c.token], logProbability: c.logProbability, state: parent.state,
                        input: c.token))
            }
            if finished.count >= wanted || next.isEmpty {
                beams = []
                break
            }
            // Each surviving hypothesis gets its own cache (copies share nothing mutable).
            var used = Set<ObjectIdentifier>()
            for i in next.indices {
                let id = ObjectIdentifier(next[i].state)
                if used.contains(id) { next[i].state = copy(next[i].state) } else { used.insert(id) }
            }
            beams = next
        }
        for beam in beams {
            finished.append((beam.tokens, beam.logProbability, score(beam.tokens, beam.logProbability)))
        }
        let best = finished.max { $0.score < $1.score }!
        return Decoded(
            tokens: best.tokens, logProbability: best.logProbability, noSpeechProbability: noSpeechProbability)
    }
}
