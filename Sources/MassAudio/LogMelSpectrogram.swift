import Foundation

/// Whisper's log-mel front end as faster-whisper 1.2 computes it (`FeatureExtractor`): 160 zeros appended,
/// STFT (n_fft 400, hop 160, periodic Hann, centred with reflect padding), power, the last frame dropped,
/// an 80-band Slaney mel filterbank, `log10(max(m, 1e-10))` clamped below at the clip's maximum − 8, then
/// `(x + 4) / 4`. The transform runs in double precision.
public struct LogMelSpectrogram: Sendable {
    public static let sampleRate = 16000
    public static let fftSize = 400
    public static let hop = 160
    public static let bins = 201
    public let melBands: Int
    /// [melBands, 201], row-major.
    public let filters: [Float]
    let window: [Double]
    let fft: FFT

    public init(melBands: Int = 80) {
        self.melBands = melBands
        filters = Self.slaneyFilters(bands: melBands)
        window = (0..<Self.fftSize).map {
            Double(Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(Self.fftSize))))
        }
        fft = FFT(size: Self.fftSize)
    }

    /// librosa `filters.mel(sr=16000, n_fft=400, n_mels=bands)` (Slaney scale, `norm="slaney"`), as faster-whisper
    /// recomputes it.
    static func slaneyFilters(bands: Int) -> [Float] {
        let n = bins
        let fftFrequencies = (0..<n).map { Double($0) * Double(sampleRate) / Double(fftSize) }
        func hzToMel(_ f: Double) -> Double {
            f < 1000 ? f * 3 / 200 : 15 + log(f / 1000) / (log(6.4) / 27)
        }
        func melToHz(_ m: Double) -> Double { m < 15 ? m * 200 / 3 : 1000 * exp(log(6.4) / 27 * (m - 15)) }
        let top = hzToMel(Double(sampleRate) / 2)
        let edges = (0..<(bands + 2)).map { melToHz(top * Double($0) / Double(bands + 1)) }
        var out = [Float](repeating: 0, count: bands * n)
        for i in 0..<bands {
            let scale = 2 / (edges[i + 2] - edges[i])
            for (j, f) in fftFrequencies.enumerated() {
                let lower = (f - edges[i]) / (edges[i + 1] - edges[i])
                let upper = (edges[i + 2] - f) / (edges[i + 2] - edges[i + 1])
                out[i * n + j] = Float(max(0, min(lower, upper)) * scale)
            }
        }
        return out
    }

    /// Frames of a clip: `samples.count / 160 + 1`.
    public static func frameCount(samples: Int) -> Int { samples / hop + 1 }

    /// Log-mel features [melBands, frames] (row-major) of 16 kHz mono samples.
    public func callAsFunction(_ samples: [Float]) -> (values: [Float], frames: Int) {
        let length = samples.count + Self.hop  // 160 zeros appended
        let half = Self.fftSize / 2
        let frames = Self.frameCount(samples: samples.count)
        func sample(_ i: Int) -> Double { i < samples.count ? Double(samples[i]) : 0 }
        // Reflect padding (the edge sample itself is not repeated).
        func padded(_ i: Int) -> Double {
            let j = i - half
            if j < 0 { return sample(-j) }
            if j >= length { return sample(2 * (length - 1) - j) }
            return sample(j)
        }
        var power = [Double](repeating: 0, count: Self.bins * frames)
        var re = [Double](repeating: 0, count: Self.fftSize)
        var im = [Double](repeating: 0, count: Self.fftSize)
        var scratch = [Double](repeating: 0, count: 2 * Self.fftSize)
        for f in 0..<frames {
            for n in 0..<Self.fftSize {
                re[n] = Double(Float(padded(f * Self.hop + n) * window[n]))
                im[n] = 0
            }
            re.withUnsafeMutableBufferPointer { r in
                im.withUnsafeMutableBufferPointer { i in
                    scratch.withUnsafeMutableBufferPointer { s in
                        fft.transform(re: r.baseAddress!, im: i.baseAddress!, scratch: s.baseAddress!)
                    }
                }
            }
            for k in 0..<Self.bins { power[k * frames + f] = re[k] * re[k] + im[k] * im[k] }
        }
        var out = [Float](repeating: 0, count: melBands * frames)
        var peak = -Double.infinity
        var logs = [Double](repeating: 0, count: melBands * frames)
        for b in 0..<melBands {
            for f in 0..<frames {
                var m = 0.0
                for k in 0..<Self.bins where filters[b * Self.bins + k] != 0 {
                    m += Double(filters[b * Self.bins + k]) * power[k * frames + f]
                }
                let l = log10(max(m, 1e-10))
                logs[b * frames + f] = l
                peak = max(peak, l)
            }
        }
        for i in 0..<logs.count { out[i] = Float((max(logs[i], peak - 8) + 4) / 4) }
        return (out, frames)
    }

    /// The features of one 30-second window as the Whisper encoder takes them: frames `start ..< start + count`
    /// of `features` (`frames` wide), zero-padded (in the normalised domain) to 3000.
    public func window(
        _ features: [Float], frames: Int, start: Int, count: Int, width: Int = 3000
    ) -> [Float] {
        var out = [Float](repeating: 0, count: melBands * width)
        let n = min(count, width, frames - start)
        guard n > 0 else { return out }
        for b in 0..<melBands {
            for t in 0..<n { out[b * width + t] = features[b * frames + start + t] }
        }
        return out
    }
}
