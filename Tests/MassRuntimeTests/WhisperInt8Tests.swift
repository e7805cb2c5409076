import Foundation
import MassAudio
import MassModels
import MassRuntime
import MassTensor
import MassTesting
import Testing

/// Whisper tiny.en with int8 linear layers against the fp32 goldens (faster-whisper's defaults, which Mass's fp32
/// matches word for word): each clip's word error rate against the fp32 transcript, as docs/compression.md
/// reports it.
@Suite(.serialized) struct WhisperInt8Tests {
    /// Word edits against the fp32 transcript, per clip, measured with the int8 kernels (case and punctuation
    /// ignored): only the fast Scottish speaker's clip moves.
    static let expectedEdits = [
        "clip1_us_short": 0, "clip2_gb_female": 0, "clip3_scotland_fast": 4, "clip4_lancaster_tiny": 0,
        "clip5_long_us": 0,
    ]

    @Test func int8TranscriptsAgainstTheFP32Goldens() throws {
        let transcriber = try WhisperTranscriber(directory: WhisperFixture.modelDirectory, precision: .int8)
        let fixture = try WhisperFixture.load()
        var edits = 0
        var words = 0
        for id in WhisperFixture.clipIDs {
            let clip = try fixture.clip(id)
            let samples = try AudioDecoder.decode(
                Array(Data(contentsOf: WhisperFixture.audio.appendingPathComponent(clip.file)))
            ).resampled(to: 16000).samples
            let text = transcriber.transcribe(samples, pool: ComputePool(threads: 2)).text
            let e = Agreement.wordEdits(reference: clip.results.defaults.text, hypothesis: text)
            print("whisper int8 \(id): \(e.edits) word edits in \(e.words)")
            #expect(e.edits == Self.expectedEdits[id], "\(id): \(text)")
            edits += e.edits
            words += e.words
        }
        print("whisper int8: WER \(Double(edits) / Double(words)) over \(words) words")
    }
}
