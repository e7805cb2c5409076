import Foundation
import Hummingbird
import MassModels
import MassRuntime

/// `POST /v1/audio/transcriptions`, as OpenAI defines it: multipart `file`, `model`, `language`, `prompt`,
/// `response_format` (json, text, srt, vtt, verbose_json), `temperature`, `timestamp_granularities[]` (segment).
/// `POST /v1/audio/translations`: the same form, the speech translated into English (multilingual models; a
/// `language` there names the spoken one instead of detecting it). Decoding follows faster-whisper's defaults
/// (beam 5, timestamps, temperature fallback, language detection on the first 30 s); `prompt` is its
/// `initial_prompt`. Errors in OpenAI's envelope.
enum AudioRoutes {
    enum Format: String { case json, text, srt, vtt, verboseJSON = "verbose_json" }

    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        router.post("/v1/audio/transcriptions") { request, context in
            RequestLabels.inference("/v1/audio/transcriptions")
            return try await handle(request, context, state: state, task: .transcribe)
        }
        router.post("/v1/audio/translations") { request, context in
            RequestLabels.inference("/v1/audio/translations")
            return try await handle(request, context, state: state, task: .translate)
        }
    }

    static func handle(
        _ request: Request, _ context: MassRequestContext, state: ServerState, task: WhisperOptions.Task
    ) async throws -> Response {
        let type = request.headers[.contentType] ?? ""
        guard let boundary = MultipartForm.boundary(of: type) else {
            throw APIError(
                status: .unsupportedMediaType, message: "send multipart/form-data (file, model, ...)", family: .openAI)
        }
        let body = try await JSONResponse.collect(request, limit: state.bodyLimit, family: .openAI)
        let form = try MultipartForm(Array(body.readableBytesView), boundary: boundary, family: .openAI)
        let fields = try TranscriptionForm(form)
        let service = try state.model(
            fields.model, as: (any SpeechRecognitionServing).self, serving: .speechRecognition)
        var speech = SpeechRequest(prompt: fields.prompt, language: fields.language)
        speech.options.task = task
        if let t = fields.temperature { speech.options.temperatures = temperatures(from: t) }
        let granularities = fields.granularities
        speech.options.wordTimestamps = granularities.contains("word")
        let chosen = speech
        let file = fields.file
        let transcription = try await context.cancellingOnDisconnect {
            try await service.transcribe(file: Array(file), request: chosen)
        }
        return render(
            transcription, format: fields.format, segments: granularities.isEmpty || granularities.contains("segment"),
            words: chosen.options.wordTimestamps, task: task)
    }

    /// The transcription form as a DTO: every field checked, with its name, before any model work.
    struct TranscriptionForm {
        let model: String
        let file: ArraySlice<UInt8>
        let format: Format
        let language: String?
        let prompt: String?
        let temperature: Double?
        /// `timestamp_granularities[]`: "segment", "word".
        let granularities: Set<String>

        init(_ form: MultipartForm) throws {
            guard let model = try form.text("model", family: .openAI) else {
                throw APIError.badRequest("'model' must name a hosted speech model", .openAI, param: "model")
            }
            self.model = model
            guard let file = form.first("file"), !file.body.isEmpty else {
                throw APIError.badRequest("the form has no non-empty 'file' part", .openAI, param: "file")
            }
            self.file = file.body
            let formatName = try form.text("response_format", family: .openAI) ?? "json"
            guard let format = Format(rawValue: formatName) else {
                throw APIError.badRequest(
                    "'response_format' must be json, text, srt, vtt or verbose_json", .openAI,
                    param: "response_format")
            }
            self.format = format
            language = try form.text("language", family: .openAI)
            prompt = try form.text("prompt", family: .openAI)
            if let raw = try form.text("temperature", family: .openAI) {
                guard let value = Double(raw), (0...1).contains(value) else {
                    throw APIError.badRequest(
                        "'temperature' must be a number from 0 to 1, not \"\(raw)\"", .openAI, param: "temperature")
                }
                temperature = value
            } else {
                temperature = nil
            }
            var granularities: Set<String> = []
            for g in form.parts where g.name.hasPrefix("timestamp_granularities") {
                let value = g.text?.trimmingCharacters(in: .whitespaces) ?? ""
                guard value == "segment" || value == "word" else {
                    throw APIError.badRequest(
                        "'timestamp_granularities[]' must be \"segment\" or \"word\", not \"\(value)\"", .openAI,
                        param: "timestamp_granularities[]")
                }
                granularities.insert(value)
            }
            if !granularities.isEmpty && format != .verboseJSON {
                throw APIError.badRequest(
                    "'timestamp_granularities[]' needs response_format verbose_json", .openAI,
                    param: "timestamp_granularities[]")
            }
            self.granularities = granularities
        }
    }

    /// KServe `infer` for speech models: one BYTES input of encoded audio files → one BYTES `text` per file
    /// (faster-whisper's defaults), the files transcribed together.
    static let kserve = KServeAdapter(task: .speechRecognition) { infer, model, context, state in
        guard let service = model as? any SpeechRecognitionServing else { throw KServeRoutes.mismatch(model) }
        guard infer.inputs.count == 1, let input = infer.inputs.first, case .bytes(let files) = input.data else {
            throw RuntimeError(.invalidInput, "'inputs' must hold exactly one BYTES tensor of audio files")
        }
        guard !files.isEmpty, files.count <= service.config.maxInputs else {
            throw RuntimeError(.invalidInput, "send 1 to \(service.config.maxInputs) audio files")
        }
        // Submitted together, so the files share encoder passes and decoder steps.
        let texts = try await context.cancellingOnDisconnect {
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (index, file) in files.enumerated() {
                    group.addTask {
                        // Awaited before the tuple is built: Swift 6.3 at -O can lose the part of a task's tuple
                        // result written before a suspension (swiftlang/swift#91911).
                        let text = try await service.transcribe(file: file, request: SpeechRequest()).transcript.text
                        return (index, text)
                    }
                }
                var texts = [String](repeating: "", count: files.count)
                for try await (index, text) in group { texts[index] = text }
                return texts
            }
        }
        return try InferResponse(
            model: service, id: infer.id, outputs: [.init(name: "text", shape: [texts.count], texts: texts)]
        ).encode(for: infer)
    }

    /// OpenAI's temperature: 0 lets the model raise it while results fail the thresholds (faster-whisper's 0, 0.2,
    /// ... 1.0); a higher value starts the same ladder there.
    static func temperatures(from value: Double) -> [Double] {
        value == 0 ? WhisperOptions().temperatures : Array(stride(from: value, through: 1.0 + 1e-9, by: 0.2))
    }

    static func render(
        _ transcription: Transcription, format: Format, segments: Bool = true, words: Bool = false,
        task: WhisperOptions.Task = .transcribe
    ) -> Response {
        let t = transcription.transcript
        func plain(_ text: String, _ type: String) -> Response {
            Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let trimmed = { (s: String) in s.trimmingCharacters(in: .whitespaces) }
        switch format {
        case .json: return JSONResponse.make(["text": t.text])
        case .text: return plain(t.text + "\n", "text/plain; charset=utf-8")
        case .srt: return plain(t.srt, "text/plain; charset=utf-8")
        case .vtt: return plain(t.vtt, "text/vtt; charset=utf-8")
        case .verboseJSON:
            var object: [String: Any] = [
                "task": task.rawValue, "language": transcription.language, "duration": transcription.seconds,
                "text": t.text,
            ]
            if segments {
                object["segments"] = t.segments.enumerated().map { i, s in
                    [
                        "id": i, "seek": s.seek, "start": (s.start * 100).rounded() / 100,
                        "end": (s.end * 100).rounded() / 100, "text": s.text, "tokens": s.tokens,
                        "temperature": s.temperature, "avg_logprob": s.averageLogProbability,
                        "compression_ratio": s.compressionRatio, "no_speech_prob": s.noSpeechProbability,
                    ] as [String: Any]
                }
            }
            if words {
                object["words"] = t.segments.flatMap(\.words).map { w in
                    ["word": trimmed(w.word), "start": w.start, "end": w.end] as [String: Any]
                }
            }
            return JSONResponse.make(object)
        }
    }
}
