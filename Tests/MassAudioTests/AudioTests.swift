import Foundation
import MassAudio
import MassTesting
import Testing

/// Writes WAV files: PCM of 8 (unsigned), 16, 24 or 32 bits, or IEEE float, interleaved channels.
enum WAV {
    static func make(_ channels: [[Double]], rate: Int, bits: Int, float: Bool = false) -> [UInt8] {
        let frames = channels[0].count
        let bytesPerSample = bits / 8
        var data: [UInt8] = []
        for i in 0..<frames {
            for c in channels {
                let v = c[i]
                if float {
                    withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { data += $0 }
                } else if bits == 8 {
                    data.append(UInt8(clamping: Int((v * 128).rounded()) + 128))
                } else {
                    let scale = Double(1 << (bits - 1))
                    let q = Int64(max(-scale, min(scale - 1, (v * scale).rounded())))
                    for b in 0..<bytesPerSample { data.append(UInt8(truncatingIfNeeded: q >> (8 * b))) }
                }
            }
        }
        var out: [UInt8] = []
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { out += $0 } }
        out += Array("RIFF".utf8)
        u32(36 + data.count)
        out += Array("WAVEfmt ".utf8)
        u32(16)
        u16(float ? 3 : 1)
        u16(channels.count)
        u32(rate)
        u32(rate * channels.count * bytesPerSample)
        u16(channels.count * bytesPerSample)
        u16(bits)
        out += Array("data".utf8)
        u32(data.count)
        return out + data
    }

    static func sine(_ hz: Double, rate: Int, seconds: Double, amplitude: Double = 0.5) -> [Double] {
        (0..<Int(Double(rate) * seconds)).map { amplitude * sin(2 * Double.pi * hz * Double($0) / Double(rate)) }
    }
}

@Suite struct AudioDecoderTests {
    @Test(arguments: [(8, false), (16, false), (24, false), (32, false), (32, true)])
    func wavSampleFormats(bits: Int, float: Bool) throws {
        let values: [Double] = [0, 0.5, -0.5, 0.25, -1, 0.125]
        let clip = try AudioDecoder.decode(WAV.make([values], rate: 16000, bits: bits, float: float))
        #expect(clip.sampleRate == 16000 && clip.samples.count == values.count)
        let tolerance = bits == 8 ? 1.0 / 128 : 1e-6
        for (got, want) in zip(clip.samples, values) { #expect(abs(Double(got) - want) <= tolerance, "\(bits) bits") }
    }

    @Test func channelsAreAveraged() throws {
        let left: [Double] = [0.5, 0.25, -0.5]
        let right: [Double] = [-0.5, 0.75, 0.5]
        let clip = try AudioDecoder.decode(WAV.make([left, right], rate: 8000, bits: 16))
        #expect(clip.samples == [0, 0.5, 0])
        let six = try AudioDecoder.decode(WAV.make(Array(repeating: left, count: 6), rate: 8000, bits: 16))
        #expect(six.samples == left.map(Float.init))
    }

    /// The real-speech fixture: stereo 44.1 kHz 24-bit FLAC, and a 16 kHz 16-bit mono WAV clip.
    @Test func fixtureFilesDecode() throws {
        let jfk = try AudioDecoder.decode(
            Array(Data(contentsOf: FixturePaths.fixtures.appendingPathComponent("audio/jfk.flac"))))
        #expect(jfk.sampleRate == 44100 && (10...12).contains(jfk.seconds))
        let resampled = jfk.resampled(to: 16000)
        #expect(resampled.sampleRate == 16000)
        #expect(resampled.samples.count == Int((Double(jfk.samples.count) * 16000 / 44100).rounded()))
        let clip = try AudioDecoder.decode(
            Array(Data(contentsOf: FixturePaths.fixtures.appendingPathComponent("audio/clip1_us_short.wav"))))
        #expect(clip.sampleRate == 16000 && abs(clip.seconds - 7.864) < 0.001)
        #expect(clip.samples.allSatisfy { $0 >= -1 && $0 < 1 })
    }

    @Test func badFilesGetClearErrors() throws {
        func error(_ bytes: [UInt8], maxSeconds: Double = 3600) -> AudioError? {
            caught(AudioError.self) { _ = try AudioDecoder.decode(bytes, maxSeconds: maxSeconds) }
        }
        #expect(error([])?.code == .empty)
        #expect(error(Array("this is not audio at all, just text".utf8))?.code == .unsupported)
        let wav = WAV.make([WAV.sine(440, rate: 16000, seconds: 2)], rate: 16000, bits: 16)
        #expect(error(Array(wav.prefix(30)))?.code == .unsupported, "a header cut short")
        let truncated = error(Array(wav.prefix(wav.count / 2)))
        #expect(
            truncated?.code == .corrupt && truncated!.message.contains("truncated"), "\(String(describing: truncated))")
        let long = error(wav, maxSeconds: 1)
        #expect(long?.code == .tooLong && long!.message.contains("2.0 s"), "\(String(describing: long))")
        let flac = try Array(Data(contentsOf: FixturePaths.fixtures.appendingPathComponent("audio/jfk.flac")))
        #expect(error(Array(flac.prefix(flac.count / 3))) != nil, "a FLAC cut short")
    }
}

@Suite struct ResamplerTests {
    /// A 1 kHz tone resampled from common rates matches the tone computed at 16 kHz, away from the edges.
    @Test(arguments: [44100, 48000, 22050, 8000, 11025, 44101])
    func tonesSurvive(rate: Int) {
        let input = WAV.sine(1000, rate: rate, seconds: 1).map(Float.init)
        let output = Resampler(from: rate, to: 16000).resample(input)
        #expect(output.count == Int((Double(input.count) * 16000 / Double(rate)).rounded()))
        let expected = WAV.sine(1000, rate: 16000, seconds: 1).map(Float.init)
        let interior = 400..<(min(output.count, expected.count) - 400)
        let worst = interior.map { abs(output[$0] - expected[$0]) }.max()!
        #expect(worst < 2e-3, "\(rate) Hz: worst \(worst)")
    }

    /// Content above the new Nyquist frequency (8 kHz) is filtered out instead of folding back.
    @Test func aliasesAreFilteredOut() {
        let input = WAV.sine(11000, rate: 44100, seconds: 1).map(Float.init)
        let output = Resampler(from: 44100, to: 16000).resample(input)
        let interior = output[400..<(output.count - 400)]
        let rms = (interior.reduce(0) { $0 + Double($1 * $1) } / Double(interior.count)).squareRoot()
        #expect(rms < 0.003, "RMS \(rms) of an 11 kHz tone after resampling to 16 kHz")
        let dc = Resampler(from: 48000, to: 16000).resample([Float](repeating: 0.3, count: 4800))
        #expect(dc[100..<(dc.count - 100)].allSatisfy { abs($0 - 0.3) < 1e-5 })
    }
}

@Suite struct LogMelTests {
    @Test func fftMatchesTheDefinition() {
        for size in [400, 16, 25, 30, 7] {
            let fft = FFT(size: size)
            var re = (0..<size).map { sin(Double($0) * 0.37) + 0.1 * Double($0 % 5) }
            var im = (0..<size).map { cos(Double($0) * 0.11) }
            let (x, y) = (re, im)
            var scratch = [Double](repeating: 0, count: 2 * size)
            fft.transform(re: &re, im: &im, scratch: &scratch)
            var worst = 0.0
            for k in 0..<size {
                var sr = 0.0
                var si = 0.0
                for n in 0..<size {
                    let a = -2 * Double.pi * Double(k * n % size) / Double(size)
                    sr += x[n] * cos(a) - y[n] * sin(a)
                    si += x[n] * sin(a) + y[n] * cos(a)
                }
                worst = max(worst, abs(sr - re[k]), abs(si - im[k]))
            }
            #expect(worst < 1e-9, "size \(size): \(worst)")
        }
    }

    /// Clip 1 of the fixtures through Mass's WAV reader and front end, against faster-whisper's features
    /// (gates: max |diff| <= 1e-4, mean <= 1e-6, padded frames exactly 0).
    @Test func clipOneMatchesFasterWhisper() throws {
        let audio = FixturePaths.fixtures.appendingPathComponent("audio")
        let clip = try AudioDecoder.decode(Array(Data(contentsOf: audio.appendingPathComponent("clip1_us_short.wav"))))
        let golden = try FixturePaths.readFloats(audio.appendingPathComponent("clip1_us_short.logmel.f32"))
        let front = LogMelSpectrogram()
        let (features, frames) = front(clip.samples)
        #expect(frames == 787)
        let window = front.window(features, frames: frames, start: 0, count: frames - 1)  // content frames: 786
        #expect(window.count == golden.count)
        let diffs = zip(window, golden).map { abs($0 - $1) }
        let worst = diffs.max()!
        let mean = diffs.reduce(0, +) / Float(diffs.count)
        #expect(worst <= 1e-4 && mean <= 1e-6, "max \(worst), mean \(mean)")
        for b in 0..<80 { #expect(window[(b * 3000 + 786)..<((b + 1) * 3000)].allSatisfy { $0 == 0 }) }
    }
}
