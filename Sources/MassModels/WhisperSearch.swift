import Foundation
import MassTensor

/// Decoding one window as a resumable search, so that the rows of many searches (beams, samples, requests) can
/// share each decoder pass: `rows()` says what to feed next, `take(_:)` receives the logits of the rows that asked
/// for them. The prompt's tokens but the last are fed first, in one pass; the last prompt token is the first
/// decoding input (CTranslate2's `WhisperReplica::generate`).
public class WhisperSearch {
    /// Token ids and limits of the rules.
    public struct Rules: Sendable {
        public var endOfText = 50256
        public var startOfTranscript = 50257
        public var noSpeech = 50361
        public var noTimestamps = 50362
        public var timestampBegin = 50363
        public var maxInitialTimestamp = 50  // 1.0 s in 0.02 s steps
        /// Disabled at every step (config.json `suppress_ids`).
        public var suppress: Set<Int> = []
        /// Disabled at the first step (`suppress_ids_begin`: blank and end of text).
        public var suppressAtBegin: Set<Int> = []
        /// At most this many new tokens (CTranslate2: half the positions).
        public var maxNewTokens = 224

        public init() {}
    }

    let rules: Rules
    let prompt: [Int]
    let root: WhisperDecoder.State
    let maxPositions: Int
    let timestamps: Bool
    var prefilled: Bool
    var noSpeechProbability = 0.0
    public internal(set) var result: WhisperDecoder.Decoded?

    init(prompt: [Int], root: WhisperDecoder.State, maxPositions: Int, rules: Rules) {
        precondition(!prompt.isEmpty, "a Whisper prompt holds at least the start of transcript")
        self.prompt = prompt
        self.root = root
        self.maxPositions = maxPositions
        self.rules = rules
        timestamps = prompt.last != rules.noTimestamps
        prefilled = prompt.count == 1
    }

    /// The rows to feed next; empty once `result` is set.
    public func rows() -> [WhisperDecoder.Row] {
        guard result == nil else { return [] }
        guard prefilled else {
            return prompt.dropLast().map {
                WhisperDecoder.Row(token: $0, state: root, logits: $0 == rules.startOfTranscript)
            }
        }
        return decodingRows()
    }

    /// The logits of the rows of the last `rows()` that asked for them, in order.
    public func take(_ logits: [[Float]]) {
        guard prefilled else {
            if let first = logits.first { takeNoSpeech(first) }
            prefilled = true
            return
        }
        decodingStep(logits)
    }

    /// Overridden by each search; the base one ends the search with no tokens rather than stopping the process.
    func decodingRows() -> [WhisperDecoder.Row] {
        result = WhisperDecoder.Decoded(tokens: [], logProbability: 0, noSpeechProbability: noSpeechProbability)
        return []
    }
    func decodingStep(_ logits: [[Float]]) {}

    /// no_speech_prob: the softmax of the raw logits at the start-of-transcript position.
    func takeNoSpeech(_ logits: [Float]) {
        noSpeechProbability = Foundation.exp(Double(logits[rules.noSpeech] - Self.logSumExp(logits[...])))
    }

    /// log Σ exp over `logits` (disabled entries count as zero).
    static func logSumExp(_ logits: ArraySlice<Float>) -> Float {
        logits.withUnsafeBufferPointer { Kernels.logSumExp($0.baseAddress!, count: $0.count) }
    }

    /// Sets logits[range] to the lowest float (disabled).
    static func disable(_ logits: inout [Float], _ range: Range<Int>) {
        let range = range.clamped(to: 0..<logits.count)
        logits.withUnsafeMutableBufferPointer {
            (($0.baseAddress! + range.lowerBound)).update(repeating: -.greatestFiniteMagnitude, count: range.count)
        }
    }

    /// CTranslate2's logits processors in order: suppressed tokens, blank and end of text at the first step, then
    /// the timestamp rules. Disabled logits become the lowest float.
    func process(_ logits: inout [Float], generated: [Int]) {
        for t in rules.suppress where t < logits.count { logits[t] = -.greatestFiniteMagnitude }
        if generated.isEmpty {
            for t in rules.suppressAtBegin where t < logits.count { logits[t] = -.greatestFiniteMagnitude }
        }
        if timestamps { Self.applyTimestampRules(&logits, generated: generated, rules: rules) }
    }

    /// openai's `ApplyTimestampRules` on one hypothesis's logits.
    static func applyTimestampRules(_ logits: inout [Float], generated: [Int], rules: Rules) {
        let begin = rules.timestampBegin
        let end = logits.count
        logits[rules.noTimestamps] = -.greatestFiniteMagnitude
        if generated.isEmpty {
            disable(&logits, 0..<begin)
            disable(&logits, (begin + rules.maxInitialTimestamp + 1)..<end)
        } else {
            let lastWasTimestamp = generated.last! >= begin
            let penultimateWasTimestamp = generated.count < 2 || generated[generated.count - 2] >= begin
            if lastWasTimestamp {
                if penultimateWasTimestamp {
                    disable(&logits, begin..<end)
                } else {
                    disable(&logits, 0..<rules.endOfText)
                }
            }
            if let lastTimestamp = generated.last(where: { $0 >= begin }) {
                let bound = lastWasTimestamp && !penultimateWasTimestamp ? lastTimestamp : lastTimestamp + 1
                if bound > begin { disable(&logits, begin..<bound) }
            }
        }
        // If the timestamps together are more likely than any text token, a timestamp must come.
        let logTotal = logSumExp(logits[...])
        let timestamps = logSumExp(logits[begin...]) - logTotal
        let bestText = logits.withUnsafeBufferPointer { Kernels.maximum($0.baseAddress!, count: begin) } - logTotal
        if timestamps > bestText { disable(&logits, 0..<begin) }
    }
}

/// Beam search as CTranslate2's `BeamSearch` runs it for faster-whisper at temperature 0 (length penalty 1): the
/// top 2·beams candidates over all beams, end of text among the first `beams` finishing a hypothesis, no early
/// exit, stopping when round(beams · patience) hypotheses finished. One beam is greedy decoding.
public final class WhisperBeamSearch: WhisperSearch {
    struct Beam {
        var tokens: [Int]
        var logProbability: Double
        var state: WhisperDecoder.State
        var input: Int
    }

    let beamCount: Int
    let wanted: Int
    var beams: [Beam] = []
    var finished: [(tokens: [Int], logProbability: Double, score: Double)] = []
    var stepIndex = 0

    public init(
        prompt: [Int], root: WhisperDecoder.State, maxPositions: Int, beams: Int, patience: Double = 1, rules: Rules
    ) {
        beamCount = max(1, beams)
        wanted = max(1, Int((Double(beamCount) * patience).rounded()))
        super.init(prompt: prompt, root: root, maxPositions: maxPositions, rules: rules)
        self.beams = [Beam(tokens: [], logProbability: 0, state: root, input: prompt.last!)]
    }

    override func decodingRows() -> [WhisperDecoder.Row] {
        if stepIndex >= rules.maxNewTokens || beams.first!.state.length >= maxPositions {
            finish()
            return []
        }
        return beams.map { WhisperDecoder.Row(token: $0.input, state: $0.state) }
    }

    static func score(_ tokens: [Int], _ logProbability: Double) -> Double {
        logProbability / Double(max(1, tokens.count))
    }

    override func decodingStep(_ allLogits: [[Float]]) {
        var candidates: [(beam: Int, token: Int, logProbability: Double)] = []
        for (b, beam) in beams.enumerated() {
            var logits = allLogits[b]
            if beam.input == rules.startOfTranscript && stepIndex == 0 { takeNoSpeech(logits) }
            process(&logits, generated: beam.tokens)
            let logTotal = Self.logSumExp(logits[...])
            // This beam's best 2·beams tokens are enough for the global top 2·beams.
            var best: [(token: Int, logit: Float)] = []
            logits.withUnsafeBufferPointer { p in
                var floor = -Float.greatestFiniteMagnitude
                for i in 0..<p.count where p[i] > floor {
                    if best.count == 2 * beamCount { best.removeLast() }
                    best.insert((i, p[i]), at: best.firstIndex { $0.logit < p[i] } ?? best.count)
                    if best.count == 2 * beamCount { floor = best.last!.logit }
                }
            }
            for (token, logit) in best {
                candidates.append((b, token, beam.logProbability + Double(logit - logTotal)))
            }
        }
        candidates.sort { $0.logProbability > $1.logProbability }
        let top = Array(candidates.prefix(2 * beamCount))
        var next: [Beam] = []
        func extend(_ c: (beam: Int, token: Int, logProbability: Double)) {
            let parent = beams[c.beam]
            next.append(
                Beam(
                    tokens: parent.tokens + [c.token], logProbability: c.logProbability, state: parent.state,
                    input: c.token))
        }
        for (rank, c) in top.enumerated() where rank < beamCount {
            if c.token == rules.endOfText {
                let tokens = beams[c.beam].tokens
                finished.append((tokens, c.logProbability, Self.score(tokens, c.logProbability)))
            } else {
                extend(c)
            }
        }
        for c in top.dropFirst(beamCount) where next.count < beamCount && c.token != rules.endOfText { extend(c) }
        stepIndex += 1
        if finished.count >= wanted || next.isEmpty {
            beams = []
            finish()
            return
        }
        // Each surviving hypothesis gets its own cache.
        var used = Set<ObjectIdentifier>()
        for i in next.indices {
            let id = ObjectIdentifier(next[i].state)
            if used.contains(id) { next[i].state = next[i].state.copy() } else { used.insert(id) }
        }
        beams = next
    }

    func finish() {
        for beam in beams {
            finished.append((beam.tokens, beam.logProbability, Self.score(beam.tokens, beam.logProbability)))
        }
        beams = []
        let best = finished.max { $0.score < $1.score }!
        result = .init(
            tokens: best.tokens, logProbability: best.logProbability, noSpeechProbability: noSpeechProbability)
    }
}

/// Sampling at a temperature, as faster-whisper falls back to it (`beam_size=1, num_hypotheses=best_of,
/// sampling_topk=0`): `count` hypotheses sampled independently from softmax(logits / temperature) over the whole
/// vocabulary, the one with the best length-normalised log-probability kept. Mass draws from its own seeded
/// generator, so a window decodes the same way every time (but not as CTranslate2's generator would).
public final class WhisperSamplingSearch: WhisperSearch {
    struct Hypothesis {
        var tokens: [Int] = []
        var logProbability = 0.0
        var state: WhisperDecoder.State
        var input: Int
        var done = false
    }

    let temperature: Double
    /// Hypotheses sampled (best_of).
    let count: Int
    var hypotheses: [Hypothesis] = []
    var generator: SplitMix64
    var stepIndex = 0

    public init(
        prompt: [Int], root: WhisperDecoder.State, maxPositions: Int, count: Int, temperature: Double, seed: UInt64,
        rules: Rules
    ) {
        precondition(temperature > 0, "sampling needs a positive temperature")
        self.temperature = temperature
        self.count = max(1, count)
        generator = SplitMix64(seed: seed)
        super.init(prompt: prompt, root: root, maxPositions: maxPositions, rules: rules)
        hypotheses = [Hypothesis(state: root, input: prompt.last!)]
    }

    override func decodingRows() -> [WhisperDecoder.Row] {
        if stepIndex == 0 && hypotheses.count == 1 && count > 1 {
            // The prompt is fed once; then every hypothesis gets its own cache.
            let first = hypotheses[0]
            hypotheses = [first] + (1..<count).map { _ in Hypothesis(state: first.state.copy(), input: first.input) }
        }
        let active = hypotheses.filter { !$0.done }
        if active.isEmpty || stepIndex >= rules.maxNewTokens || active[0].state.length >= maxPositions {
            finish()
            return []
        }
        return active.map { WhisperDecoder.Row(token: $0.input, state: $0.state) }
    }

    override func decodingStep(_ allLogits: [[Float]]) {
        var k = 0
        for i in hypotheses.indices where !hypotheses[i].done {
            var logits = allLogits[k]
            k += 1
            if hypotheses[i].input == rules.startOfTranscript && stepIndex == 0 && i == 0 { takeNoSpeech(logits) }
            process(&logits, generated: hypotheses[i].tokens)
            let token = sample(logits)
            hypotheses[i].logProbability += Double(logits[token] - Self.logSumExp(logits[...]))
            if token == rules.endOfText {
                hypotheses[i].done = true
            } else {
                hypotheses[i].tokens.append(token)
                hypotheses[i].input = token
            }
        }
        stepIndex += 1
    }

    /// A token drawn from softmax(logits / temperature) (disabled logits never).
    func sample(_ logits: [Float]) -> Int {
        let peak = logits.withUnsafeBufferPointer { Kernels.maximum($0.baseAddress!, count: $0.count) }
        let t = Float(temperature)
        var weights = [Float](repeating: 0, count: logits.count)
        var total: Float = 0
        for i in logits.indices where logits[i] > -1e30 {
            weights[i] = Foundation.exp((logits[i] - peak) / t)
            total += weights[i]
        }
        var u = Float(generator.nextUnit()) * total
        var last = 0
        for i in weights.indices where weights[i] > 0 {
            u -= weights[i]
            last = i
            if u <= 0 { return i }
        }
        return last
    }

    func finish() {
        let best = hypotheses.max {
            WhisperBeamSearch.score($0.tokens, $0.logProbability)
                < WhisperBeamSearch.score($1.tokens, $1.logProbability)
        }!
        hypotheses = []
        result = .init(
            tokens: best.tokens, logProbability: best.logProbability, noSpeechProbability: noSpeechProbability)
    }
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64).
struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }
}
