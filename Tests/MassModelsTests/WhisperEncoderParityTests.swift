import Foundation
import MassModels
import MassTensor
import MassTesting
import MassWeights
import Testing

/// The Whisper tiny.en encoder against CTranslate2's float32 output for clip 1's golden log-mel
/// (fixtures/README.md gate: max |diff| <= 1e-3, every frame's cosine >= 0.99999).
@Suite struct WhisperEncoderParityTests {
    @Test(arguments: [2]) func encoderMatchesCTranslate2(threads: Int) throws {
        let model = try CTranslate2Model(
            path: FixturePaths.models.appendingPathComponent("whisper-tiny.en/1/model.bin").path)
        let encoder = try WhisperEncoder(model: model)
        #expect(encoder.width == 384 && encoder.heads == 6 && encoder.frames == 1500 && encoder.melBands == 80)
        let audio = FixturePaths.fixtures.appendingPathComponent("audio")
        let features = try FixturePaths.readFloats(audio.appendingPathComponent("clip1_us_short.logmel.f32"))
        let golden = try FixturePaths.readFloats(audio.appendingPathComponent("clip1_us_short.encoder_out.f32"))
        let out = encoder(features, pool: ComputePool(threads: threads))
        #expect(out.count == golden.count)
        let worst = Comparison.maxAbsDiff(out, golden)
        var lowest = 1.0
        for t in 0..<1500 {
            lowest = min(
                lowest,
                Comparison.cosine(Array(out[(t * 384)..<((t + 1) * 384)]), Array(golden[(t * 384)..<((t + 1) * 384)])))
        }
        #expect(worst <= 1e-3, "max |diff| \(worst)")
        #expect(lowest >= 0.99999, "lowest frame cosine \(lowest)")
    }
}
