import Foundation
import MassTesting
import Testing

/// Speech recognition over HTTP: OpenAI's transcription route in every response format, KServe v2 infer with
/// audio as BYTES, and bad requests.
@Suite(.serialized) struct AudioServingTests {
    static let route = "/v1/audio/transcriptions"

    static func audio(_ file: String) throws -> [UInt8] {
        Array(try Data(contentsOf: FixturePaths.fixtures.appendingPathComponent("audio/\(file)")))
    }

    func post(_ s: LiveServer, _ fields: [(String, String?, [UInt8])]) -> (Int, String) {
        let (body, headers) = ImageServingTests.multipart(fields)
        let r = s.rawPost(Self.route, body: body, headers: headers)
        return (r.status, String(decoding: r.body, as: UTF8.self))
    }

    @Test func transcriptionRouteGivesTheGoldenTranscripts() throws {
        let s = try LiveServer()
        defer { s.stop() }
        let model: (String, String?, [UInt8]) = ("model", nil, Array("whisper-tiny.en".utf8))
        let (status, body) = post(s, [model, ("file", "jfk.flac", try Self.audio("jfk.flac"))])
        #expect(status == 200)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(
            json["text"] as? String
                == "And so, my fellow Americans ask not what your country can do for you ask what you can do for your country."
        )
        let clip = try Self.audio("clip1_us_short.wav")
        let (_, srt) = post(s, [model, ("response_format", nil, Array("srt".utf8)), ("file", "c.wav", clip)])
        #expect(
            srt
                == "1\n00:00:00,000 --> 00:00:05,400\nGood morning. This is a short test on the speech recognition system. Please confirm that\n\n2\n00:00:05,400 --> 00:00:07,560\nevery word is transcribed correctly.\n\n"
        )
        let (_, vtt) = post(s, [model, ("response_format", nil, Array("vtt".utf8)), ("file", "c.wav", clip)])
        #expect(vtt.hasPrefix("WEBVTT\n\n00:00:00.000 --> 00:00:05.400\nGood morning."))
        let (_, text) = post(s, [model, ("response_format", nil, Array("text".utf8)), ("file", "c.wav", clip)])
        #expect(text.hasPrefix("Good morning. This is a short test") && text.hasSuffix("correctly.\n"))
        let (_, verbose) = post(
            s,
            [
                model, ("response_format", nil, Array("verbose_json".utf8)),
                ("timestamp_granularities[]", nil, Array("segment".utf8)), ("language", nil, Array("en".utf8)),
                ("file", "c.wav", clip),
            ])
        let v = try #require(try JSONSerialization.jsonObject(with: Data(verbose.utf8)) as? [String: Any])
        let segments = try #require(v["segments"] as? [[String: Any]])
        #expect(
            segments.map { $0["start"] as? Double } == [0, 5.4] && segments.map { $0["end"] as? Double } == [5.4, 7.56])
        #expect(abs((v["duration"] as? Double ?? 0) - 7.864) < 1e-6)
        #expect(segments.allSatisfy { $0["temperature"] as? Double == 0 && $0["avg_logprob"] is Double })
        #expect(segments.allSatisfy { $0["compression_ratio"] is Double && $0["no_speech_prob"] is Double })
        // A prompt is faster-whisper's initial_prompt: here it joins the two segments into one (as in the goldens).
        let (_, prompted) = post(
            s,
            [
                model, ("response_format", nil, Array("verbose_json".utf8)),
                ("prompt", nil, Array("Speech recognition status report, Mass.".utf8)), ("file", "c.wav", clip),
            ])
        let p = try #require(try JSONSerialization.jsonObject(with: Data(prompted.utf8)) as? [String: Any])
        #expect((p["segments"] as? [[String: Any]])?.map { $0["end"] as? Double } == [7.86])
        // Word timestamps (as faster-whisper's word_timestamps; only the words when only they are asked for).
        let (_, worded) = post(
            s,
            [
                model, ("response_format", nil, Array("verbose_json".utf8)),
                ("timestamp_granularities[]", nil, Array("word".utf8)), ("file", "c.wav", clip),
            ])
        let w = try #require(try JSONSerialization.jsonObject(with: Data(worded.utf8)) as? [String: Any])
        let words = try #require(w["words"] as? [[String: Any]])
        #expect(w["segments"] == nil)
        #expect(words.first?["word"] as? String == "Good" && words.last?["word"] as? String == "correctly.")
        #expect(words.compactMap { $0["word"] as? String }.joined(separator: " ") == (w["text"] as? String))
        let ends = words.compactMap { $0["end"] as? Double }
        #expect(ends == ends.sorted() && (ends.last ?? 0) <= 7.9)
        #expect(try s.metric(#"mass_audio_seconds_total{model="whisper-tiny.en"}"#) ?? 0 >= 11 + 8 * 4)
    }

    /// Several files in one request are transcribed together; each text comes back in its file's place.
    @Test func kserveInferTakesAudioAsBytes() throws {
        let s = try LiveServer()
        defer { s.stop() }
        let files = try ["clip4_lancaster_tiny.wav", "jfk.flac", "clip4_lancaster_tiny.wav"].map(Self.audio)
        var binary: [UInt8] = []
        for file in files {
            withUnsafeBytes(of: UInt32(file.count).littleEndian) { binary += $0 }
            binary += file
        }
        let header = Array(
            #"{"inputs": [{"name": "audio", "datatype": "BYTES", "shape": [3], "parameters": {"binary_data_size": \#(binary.count)}}]}"#
                .utf8)
        let r = s.rawPost(
            "/v2/models/whisper-tiny.en/infer", body: header + binary,
            headers: ["Inference-Header-Content-Length: \(header.count)"])
        #expect(r.status == 200)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
        let output = try #require((json["outputs"] as? [[String: Any]])?.first)
        #expect(output["datatype"] as? String == "BYTES" && output["shape"] as? [Int] == [3])
        let lancaster = "Yes, turn left at the next junction, then stop."
        let jfk =
            "And so, my fellow Americans ask not what your country can do for you ask what you can do for your country."
        #expect(output["data"] as? [String] == [lancaster, jfk, lancaster])
    }

    /// Multilingual whisper-base beside tiny.en: the language detected (verbose_json names it as OpenAI does),
    /// `/v1/audio/translations` into English, a given language; translation on the English-only model and an
    /// unknown language refused by name. Texts are faster-whisper's (Goldens/whisper-base.json).
    @Test func multilingualTranscriptionAndTranslation() throws {
        let base = FixturePaths.extraModels.appendingPathComponent("whisper-base/1")
        let s = try LiveServer(
            massJSON: #"{"task": "speech-recognition"}"#, model: "base", modelDirectory: base,
            also: [("tiny", #"{"task": "speech-recognition"}"#, WhisperFixture.modelDirectory)])
        defer { s.stop() }
        let clip = Array(
            try Data(
                contentsOf: FixturePaths.packageRoot.appendingPathComponent("Tests/MassModelsTests/Audio/it-sea.wav")))
        let model: (String, String?, [UInt8]) = ("model", nil, Array("base".utf8))
        let verbose: (String, String?, [UInt8]) = ("response_format", nil, Array("verbose_json".utf8))
        func send(_ route: String, _ fields: [(String, String?, [UInt8])]) -> (Int, [String: Any]) {
            let (body, headers) = ImageServingTests.multipart(fields)
            let r = s.rawPost(route, body: body, headers: headers)
            return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]) ?? [:])
        }
        let (status, heard) = send(Self.route, [model, verbose, ("file", "it.wav", clip)])
        #expect(status == 200)
        #expect(heard["language"] as? String == "italian" && heard["task"] as? String == "transcribe")
        #expect(heard["text"] as? String == "restate andiamo al mare con i mambini e mandiamo il gelato")
        let (translated, english) = send("/v1/audio/translations", [model, verbose, ("file", "it.wav", clip)])
        #expect(translated == 200)
        #expect(english["task"] as? String == "translate" && english["language"] as? String == "italian")
        #expect(
            english["text"] as? String
                == "Now we are going to the sea and the mampini and we are going to the ice cream")
        let (given, told) = send(Self.route, [model, ("language", nil, Array("it".utf8)), ("file", "it.wav", clip)])
        #expect(given == 200 && told["text"] as? String == heard["text"] as? String)
        func error(_ reply: [String: Any]) -> String {
            ((reply["error"] as? [String: Any])?["message"] as? String) ?? ""
        }
        let (unknown, why) = send(Self.route, [model, ("language", nil, Array("xx".utf8)), ("file", "it.wav", clip)])
        #expect(unknown == 400 && error(why).contains("'language' \"xx\""), "\(why)")
        let (englishOnly, refusal) = send(
            "/v1/audio/translations", [("model", nil, Array("tiny".utf8)), ("file", "it.wav", clip)])
        #expect(englishOnly == 400 && error(refusal).contains("cannot translate"), "\(refusal)")
    }

    @Test func badRequestsGetClearErrors() throws {
        let s = try LiveServer()
        defer { s.stop() }
        let model: (String, String?, [UInt8]) = ("model", nil, Array("whisper-tiny.en".utf8))
        let clip = try Self.audio("clip4_lancaster_tiny.wav")
        let cases: [(String, [(String, String?, [UInt8])], Int, String)] = [
            ("not audio", [model, ("file", "x.txt", Array("hello there".utf8))], 400, "not a readable audio file"),
            ("truncated", [model, ("file", "c.wav", Array(clip.prefix(clip.count / 2)))], 400, "truncated"),
            ("no file", [model], 400, "'file'"),
            (
                "other language", [model, ("language", nil, Array("fr".utf8)), ("file", "c.wav", clip)], 400,
                "English-only"
            ),
            (
                "format", [model, ("response_format", nil, Array("xml".utf8)), ("file", "c.wav", clip)], 400,
                "response_format"
            ),
            (
                "temperature", [model, ("temperature", nil, Array("hot".utf8)), ("file", "c.wav", clip)], 400,
                "temperature"
            ),
            ("too hot", [model, ("temperature", nil, Array("1.5".utf8)), ("file", "c.wav", clip)], 400, "from 0 to 1"),
            (
                "words without verbose_json",
                [model, ("timestamp_granularities[]", nil, Array("word".utf8)), ("file", "c.wav", clip)], 400,
                "verbose_json"
            ),
            (
                "granularity",
                [model, ("timestamp_granularities[]", nil, Array("phoneme".utf8)), ("file", "c.wav", clip)],
                400, "not \\\"phoneme\\\""
            ),
            (
                "image model", [("model", nil, Array("efficientnet-lite0".utf8)), ("file", "c.wav", clip)], 400,
                "speech-recognition"
            ),
            ("unknown model", [("model", nil, Array("nope".utf8)), ("file", "c.wav", clip)], 404, "unknown model"),
        ]
        for (what, fields, status, message) in cases {
            let (got, body) = post(s, fields)
            #expect(got == status, "\(what): \(got) \(body)")
            #expect(body.contains(message), "\(what): \(body)")
        }
        #expect(try s.request("POST", Self.route, json: #"{"model": "whisper-tiny.en"}"#).0 == 415)
        #expect(try s.request("GET", "/v2/health/ready").0 == 200)
    }
}
