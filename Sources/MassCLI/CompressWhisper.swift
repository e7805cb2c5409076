import Foundation
import MassModels
import MassRuntime
import MassTensor
import MassWeights

/// `mass compress` of a Whisper CTranslate2 folder: a model.bin in CTranslate2's own int8 layout (what
/// `ct2-transformers-converter --quantization int8` writes), so faster-whisper loads it as well as Mass; word
/// error rate against the original on calibration audio.
extension CompressCommand {
    func compressWhisper(_ model: CTranslate2Model, _ source: URL, _ target: URL) async throws -> Report {
        var report = Report()
        var variables: [String: CTranslate2Writer.Variable] = [:]
        for name in model.variables.keys.sorted() {
            let v = model.variables[name]!
            let stored = try model.tensor(name)
            let bytes = Data(bytes: stored.storage.pointer, count: v.byteCount)
            // The weights CTranslate2 gives a `_scale` slot: linear, conv1d and embedding weights.
            guard name.hasSuffix("/weight"), v.shape.count >= 2 else {
                variables[name] = .init(shape: v.shape, dtype: v.dtype, bytes: bytes)
                continue
            }
            guard v.dtype.isFloat else {
                throw CLIError("\(self.model): '\(name)' is already \(v.dtype.rawValue); compress a float model")
            }
            let original = try model.float32(name).array
            let rows = v.shape[0]
            let columns = original.count / max(1, rows)
            var kept = original
            if let prune { Self.prune(&kept, rows: rows, columns: columns, share: prune, twoOfFour: pattern == "2:4") }
            var served = kept
            if int8 {
                let (q, scales) = CTranslate2Writer.int8(kept, rows: rows)
                for r in 0..<rows {
                    for i in (r * columns)..<((r + 1) * columns) { served[i] = Float(q[i]) / scales[r] }
                }
                variables[name] = .init(shape: v.shape, int8: q)
                variables[name + "_scale"] = .init(shape: [rows], float32: scales)
            } else if v.dtype == .float16 {
                let half = kept.map { Float16($0).bitPattern }
                variables[name] = .init(shape: v.shape, dtype: .float16, bytes: half.withUnsafeBytes { Data($0) })
            } else {
                variables[name] = .init(shape: v.shape, float32: kept)
            }
            report.layers.append(Self.layer(name, shape: v.shape, original: original, served: served))
        }
        let data = try CTranslate2Writer.encode(
            specName: model.specName ?? "WhisperSpec", revision: model.specRevision, variables: variables,
            aliases: model.aliases)
        try Self.copyFolder(source, target, except: ["model.bin"])
        try data.write(to: target.appendingPathComponent("model.bin"))
        let sourceBin = source.appendingPathComponent("model.bin").path
        report.bytesBefore = (try FileManager.default.attributesOfItem(atPath: sourceBin)[.size] as? Int) ?? 0
        report.bytesAfter = data.count
        if let calibration { try await wordErrorRate(calibration, source, target, &report) }
        return report
    }

    /// Each calibration file (an audio file, or every file of a folder) transcribed by the original model in
    /// float32 and by the compressed one as it loads: the corpus word error rate (word edits over the original's
    /// words) and how many transcripts have no word edit (case and punctuation aside), as the services report
    /// counts them.
    func wordErrorRate(_ path: String, _ source: URL, _ target: URL, _ report: inout Report) async throws {
        let files = try Self.files(path, extensions: ["wav", "flac", "mp3", "ogg"])
        let threads = ProcessInfo.processInfo.activeProcessorCount
        func transcripts(_ folder: URL) async throws -> [String] {
            let service = try OfflineServing.serve(
                folder.path, task: .speechRecognition, as: (any SpeechRecognitionServing).self, threads: threads)
            defer { service.shutdown() }
            var texts: [String] = []
            for file in files {
                let audio = try Data(contentsOf: URL(fileURLWithPath: file))
                texts.append(try await service.transcribe(file: Array(audio), request: SpeechRequest()).transcript.text)
            }
            return texts
        }
        let original = try await transcripts(source)
        let compressed = try await transcripts(target)
        let errors = Agreement.wordErrors(references: original, hypotheses: compressed)
        report.calibrationFiles = files.count
        report.wordErrorRate = errors.rate
        report.sameTranscripts = errors.unchanged
    }
}
