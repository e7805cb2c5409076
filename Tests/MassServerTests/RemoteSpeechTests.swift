import Foundation
import MassTesting
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A speech service-type model: a second `mass serve` hosting Whisper is the provider (OpenAI's transcription
/// API), reached through a fault-injecting proxy; the front serves it through every speech route, falls back to
/// its local Whisper, records transcript pairs and reports their word error rate.
@Suite(.serialized) struct RemoteSpeechTests {
    static let jfk =
        "And so, my fellow Americans ask not what your country can do for you ask what you can do for your country."

    final class Rig: @unchecked Sendable {  // fields are set once in init
        let provider: LiveServer
        let proxy: FaultProxy
        let front: LiveServer
        let empty: URL

        init() async throws {
            provider = try LiveServer(
                massJSON: #"{"task": "speech-recognition"}"#, model: "whisper",
                modelDirectory: WhisperFixture.modelDirectory)
            proxy = try await FaultProxy(target: provider.base)
            empty = FileManager.default.temporaryDirectory.appendingPathComponent("mass-asr-\(UUID())")
            try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
            let remote =
                #"{"task": "speech-recognition", "remote": {"api": "openai-transcriptions", "url": "\#(proxy.base)", "model": "whisper", "call_timeout_ms": 20000, "fallback": ["asr-local"], "retry": {"attempts": 2, "base_delay_ms": 1}, "record": {"candidate": "asr-local", "sample_rate": 1}}}"#
            front = try LiveServer(
                massJSON: #"{"task": "text-embedding"}"#, model: "minilm",
                also: [
                    ("asr", remote, empty),
                    ("asr-local", #"{"task": "speech-recognition"}"#, WhisperFixture.modelDirectory),
                ])
        }

        func stop() {
            front.stop()
            provider.stop()
            try? FileManager.default.removeItem(at: empty)
            let proxy = self.proxy
            Task { await proxy.stop() }
        }

        func transcribe(_ model: String, _ file: String, _ extra: [(String, String)] = []) throws -> (
            status: Int, body: String, answeredBy: String?
        ) {
            let fields =
                [("model", nil, Array(model.utf8))] + extra.map { ($0.0, nil, Array($0.1.utf8)) }
                + [("file", file, try AudioServingTests.audio(file))]
            let (body, headers) = ImageServingTests.multipart(fields)
            let r = front.rawPost("/v1/audio/transcriptions", body: body, headers: headers)
            let answeredBy = r.headers.first { $0.lowercased().hasPrefix("x-mass-answered-by:") }
                .map { String($0.dropFirst("x-mass-answered-by:".count)).trimmingCharacters(in: .whitespaces) }
            return (r.status, String(decoding: r.body, as: UTF8.self), answeredBy)
        }

        func json(_ text: String) -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
        }

        func report() throws -> [String: Any] {
            let (_, data) = try LiveServer.sync(
                URLRequest(url: front.base.appendingPathComponent("admin/v1/services/asr/report")))
            return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
        }
    }

    @Test func aProviderTranscribesThroughEverySpeechRouteAndFallsBackToTheLocalWhisper() async throws {
        let rig = try await Rig()
        defer { rig.stop() }
        // The provider's verbose_json is the transcript every format is rendered from.
        let json = try rig.transcribe("asr", "jfk.flac")
        #expect(json.status == 200 && json.answeredBy == "asr")
        #expect(rig.json(json.body)["text"] as? String == Self.jfk)
        let srt = try rig.transcribe("asr", "clip1_us_short.wav", [("response_format", "srt")])
        #expect(
            srt.body
                == "1\n00:00:00,000 --> 00:00:05,400\nGood morning. This is a short test on the speech recognition system. Please confirm that\n\n2\n00:00:05,400 --> 00:00:07,560\nevery word is transcribed correctly.\n\n"
        )
        // Words (and segments) as the local Whisper gives them.
        let wordsOf = { (model: String) throws -> ([String], [Double]) in
            let verbose = rig.json(
                try rig.transcribe(
                    model, "clip1_us_short.wav",
                    [("response_format", "verbose_json"), ("timestamp_granularities[]", "word")]
                ).body)
            let words = verbose["words"] as? [[String: Any]] ?? []
            #expect(verbose["language"] as? String == "english")
            #expect(abs((verbose["duration"] as? Double ?? 0) - 7.864) < 1e-6)
            return (
                words.compactMap { $0["word"] as? String },
                words.flatMap { [$0["start"] as? Double ?? -1, $0["end"] as? Double ?? -1] }
            )
        }
        let (remoteWords, remoteTimes) = try wordsOf("asr")
        let (localWords, localTimes) = try wordsOf("asr-local")
        #expect(remoteWords.count == 20 && remoteWords == localWords && remoteTimes == localTimes)
        // KServe v2 infer with audio as BYTES, through the provider.
        var binary: [UInt8] = []
        for file in try ["clip4_lancaster_tiny.wav", "jfk.flac"].map(AudioServingTests.audio) {
            withUnsafeBytes(of: UInt32(file.count).littleEndian) { binary += $0 }
            binary += file
        }
        let header = Array(
            #"{"inputs": [{"name": "audio", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": \#(binary.count)}}]}"#
                .utf8)
        let infer = rig.front.rawPost(
            "/v2/models/asr/infer", body: header + binary, headers: ["Inference-Header-Content-Length: \(header.count)"]
        )
        let output = (rig.json(String(decoding: infer.body, as: UTF8.self))["outputs"] as? [[String: Any]])?.first
        #expect(
            infer.status == 200
                && output?["data"] as? [String] == ["Yes, turn left at the next junction, then stop.", Self.jfk])
        // A language the provider refuses is the client's error, not a fallback.
        let german = try rig.transcribe("asr", "jfk.flac", [("language", "de")])
        #expect(german.status == 400 && german.body.contains("English-only"), "\(german.body)")
        // The provider fails (500, not retried; a dropped connection twice): the local Whisper answers the same.
        for fault in [FaultProxy.Fault.status(500), .drop] {
            rig.proxy.set(fault)
            let fallback = try rig.transcribe("asr", "jfk.flac")
            #expect(fallback.status == 200 && fallback.answeredBy == "asr-local", "\(fault)")
            #expect(rig.json(fallback.body)["text"] as? String == Self.jfk)
        }
        // A provider answering something that is not a transcription: an error for that request, counted.
        rig.proxy.set(.answer(#"{"segments": "no"}"#))
        let garbled = try rig.transcribe("asr", "jfk.flac")
        #expect(garbled.status == 200 && garbled.answeredBy == "asr-local")
        #expect(
            try rig.front.metric(#"mass_remote_errors_total{model="asr",reason="malformed_json"}"#) ?? 0 >= 1)
        rig.proxy.set(.pass)
        let back = try rig.transcribe("asr", "jfk.flac")
        #expect(back.status == 200 && back.answeredBy == "asr")
    }

    @Test func transcriptPairsAreRecordedAndReportedAsWordErrorRate() async throws {
        let rig = try await Rig()
        defer { rig.stop() }
        // Sampled traffic (rate 1): each request answered by the provider is transcribed by asr-local too.
        #expect(try rig.transcribe("asr", "jfk.flac").status == 200)
        #expect(try rig.transcribe("asr", "clip4_lancaster_tiny.wav").status == 200)
        // From a list of files (base64 in the admin API).
        let clip = Data(try AudioServingTests.audio("clip1_us_short.wav")).base64EncodedString()
        let (status, recorded) = try rig.front.request(
            "POST", "/admin/v1/services/asr/pairs", json: #"{"audio": ["\#(clip)"]}"#)
        #expect(status == 200 && recorded["recorded"] as? Int == 1, "\(recorded)")
        var candidate: [String: Any] = [:]
        for _ in 0..<200 {
            candidate = ((try rig.report()["candidates"] as? [[String: Any]])?.first) ?? [:]
            if candidate["pairs"] as? Int == 3 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        // The same model on both sides: the same transcripts, word for word.
        #expect(candidate["name"] as? String == "asr-local" && candidate["pairs"] as? Int == 3)
        #expect(candidate["word_error_rate"] as? Double == 0 && candidate["same_transcript"] as? Double == 1)
        let statistics = try #require(try rig.report()["statistics"] as? [String: Any])
        // jfk.flac (11.0 s) + clip4 + clip1 (7.864 s) and the probe's second of silence, as the provider reported.
        let seconds = (statistics["units"] as? [String: Any])?["audio_seconds"] as? Double ?? 0
        #expect(seconds > 11 + 7.8 + 1, "\(statistics)")
        // The CLI: audio files recorded, the report printed, and `calibrate` (nothing to fit for speech) registers
        // the candidate as it is, with the lineage and the word error rate.
        let audio = FixturePaths.fixtures.appendingPathComponent("audio")
        let recordedByCLI = try BinaryRunner.separate([
            "services", "record", "asr", "--audio", audio.appendingPathComponent("clip4_lancaster_tiny.wav").path,
            audio.appendingPathComponent("jfk.flac").path, "--url", rig.front.base.absoluteString,
        ])
        #expect(recordedByCLI.status == 0 && recordedByCLI.out.contains("recorded 2 pairs"), "\(recordedByCLI)")
        let printed = try BinaryRunner.separate(["services", "report", "asr", "--url", rig.front.base.absoluteString])
        #expect(printed.out.contains("candidate asr-local: 5 pairs"), "\(printed.out)")
        #expect(printed.out.contains("word error rate 0.0000 against the service, 100.0 % the same"), "\(printed.out)")
        let repository = try #require(rig.front.repository).path
        let calibrated = try BinaryRunner.separate(
            ["services", "calibrate", "asr", "--candidate", "asr-local", "--register", "asr-own"]
                + ["--repository", repository] + rig.front.registryArguments)
        #expect(calibrated.status == 0 && calibrated.err.contains("registered asr-own version 1"), "\(calibrated)")
        let figures = (try? JSONSerialization.jsonObject(with: Data(calibrated.out.utf8))) as? [String: Any]
        #expect(figures?["pairs"] as? Int == 5 && figures?["word_error_rate"] as? Double == 0, "\(calibrated.out)")
        let shown = try BinaryRunner.separate(
            ["models", "show", "asr-own", "--repository", repository] + rig.front.registryArguments)
        #expect(shown.out.contains("pairs:asr/asr-local:5") && shown.out.contains("word_error_rate"), "\(shown.out)")
        #expect(shown.out.contains(#""format" : "ctranslate2""#), "\(shown.out)")
        // Refused: not base64; audio for a text service; no files.
        for (model, body) in [
            ("asr", #"{"audio": ["%%%"]}"#), ("asr", #"{"audio": []}"#), ("asr-local", #"{"audio": ["AAAA"]}"#),
        ] {
            let (code, answer) = try rig.front.request("POST", "/admin/v1/services/\(model)/pairs", json: body)
            #expect(code == 400, "\(model) \(body): \(answer)")
        }
    }
}
