import Foundation
import MassAudio
import MassTesting
import Testing

/// Decoding as faster-whisper does (`faster_whisper.decode_audio`: FFmpeg's decoders, then libswresample to 16-bit
/// mono at 16 kHz) on WAV, FLAC and MP3, mono and stereo (a different speaker on each channel), at 8, 16, 22.05, 44.1
/// and 48 kHz: goldens recorded offline by scripts/make-decode-audio-goldens.py (Tests/MassAudioTests/Decoding/).
/// WAV and FLAC sample for sample; MP3 within one 16-bit step (libsndfile's mpg123 and FFmpeg's decoder differ in
/// their last float bits).
@Suite struct SwresampleDecodingTests {
    struct Golden: Decodable {
        struct File: Decodable {
            let file: String
            let rate: Int
            let channels: Int
            let samples: Int
            let s16: String
        }
        let files: [File]
    }

    static let folder = FixturePaths.packageRoot.appendingPathComponent("Tests/MassAudioTests/Decoding")

    @Test func matchesFasterWhisperDecodeAudio() throws {
        let golden = try JSONDecoder().decode(
            Golden.self, from: Data(contentsOf: Self.folder.appendingPathComponent("goldens.json")))
        #expect(golden.files.count == 30)
        var worstMP3 = 0
        var floatPathDiffers = 0
        for f in golden.files {
            let data = Array(try Data(contentsOf: Self.folder.appendingPathComponent(f.file)))
            let clip = try AudioDecoder.decode(data, rate: 16000, conversion: .swresample)
            #expect(clip.sampleRate == 16000)
            let ours = clip.samples.map { Int(($0 * 32768).rounded()) }
            let theirs = Data(base64Encoded: f.s16)!.withUnsafeBytes { raw in
                raw.bindMemory(to: Int16.self).map { Int(Int16(littleEndian: $0)) }
            }
            #expect(ours.count == f.samples && theirs.count == f.samples, "\(f.file): \(ours.count) samples")
            let worst = zip(ours, theirs).map { abs($0 - $1) }.max() ?? 0
            if f.file.hasSuffix(".mp3") {
                worstMP3 = max(worstMP3, worst)
                #expect(worst <= 1, "\(f.file): \(worst) steps apart")
            } else {
                #expect(worst == 0, "\(f.file): \(worst) steps apart")
            }
            // The float path is still there, and for a resampled or stereo file it is not the same samples.
            let float = try AudioDecoder.decode(data, rate: 16000, conversion: .float)
            if float.samples.map({ Int(($0 * 32768).rounded()) }) != theirs { floatPathDiffers += 1 }
        }
        print(
            "swresample decoding: MP3 at most \(worstMP3) step(s) from faster-whisper; float path differs on \(floatPathDiffers) of 30"
        )
        #expect(floatPathDiffers > 0)
    }
}
