import CMassBLAS
import Foundation
import Hummingbird
import MassModels
import MassRuntime

/// KServe v2 Open Inference Protocol (REST): health, server and model metadata, readiness and `infer`.
/// Text goes in as a `BYTES` tensor (flat or nested JSON data); embeddings come out as `FP32` [n, dim].
enum KServeRoutes {
    static func add(to router: Router<MassRequestContext>, host: ModelHost) {
        router.get("/metrics") { _, _ in
            host.metrics.set(
                "mass_process_resident_memory_bytes", Double(cmass_resident_bytes()),
                help: "Resident memory of the server process (read at scrape time).")
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: host.metrics.exposition())))
        }
        router.get("/v2/health/live") { _, _ in JSONResponse.make(["live": true]) }
        router.get("/v2/health/ready") { _, _ in
            let ready = host.isReady
            return JSONResponse.make(["ready": ready], status: ready ? .ok : .serviceUnavailable)
        }
        router.get("/v2") { _, _ in
            JSONResponse.make([
                "name": "mass", "version": "0.1.0", "extensions": ["binary_tensor_data", "model_repository"],
            ])
        }
        for suffix in ["", "/versions/:version"] {
            router.get("/v2/models/:name\(suffix)") { _, context in
                let name = try context.parameters.require("name")
                let version = context.parameters.get("version")
                let hosted = try host.model(name, version: version, family: .kserve)
                let versions = try host.versions(name, family: .kserve).map { String($0.version) }
                let (inputs, outputs) = tensors(of: hosted)
                return JSONResponse.make([
                    "name": hosted.entry.name, "versions": versions, "platform": "mass", "inputs": inputs,
                    "outputs": outputs,
                ])
            }
            router.get("/v2/models/:name\(suffix)/ready") { _, context in
                let hosted = try host.model(
                    try context.parameters.require("name"), version: context.parameters.get("version"), family: .kserve)
                return JSONResponse.make(["name": hosted.entry.name, "ready": true])
            }
            router.post("/v2/models/:name\(suffix)/infer") { request, context in
                let name = try context.parameters.require("name")
                return try await host.measured(model: name, route: "/v2/infer", family: .kserve) {
                    let hosted = try host.model(name, version: context.parameters.get("version"), family: .kserve)
                    let infer = try await InferRequest.read(request, limit: host.bodyLimit)
                    switch hosted.service {
                    case .embedding(let service):
                        return try await embed(infer, service, hosted, host, context)
                    case .classification(let service):
                        return try await classify(infer, service, hosted, context)
                    case .transcription(let service):
                        return try await transcribe(infer, service, hosted, context)
                    }
                }
            }
        }
        addRepositoryRoutes(to: router, host: host)
    }

    /// The repository extension: index, load (or reload) and unload at run time.
    static func addRepositoryRoutes(to router: Router<MassRequestContext>, host: ModelHost) {
        router.post("/v2/repository/index") { request, _ in
            let buffer = try await JSONResponse.collect(request, limit: host.bodyLimit, family: .kserve)
            let body =
                buffer.readableBytes == 0
                ? [:] : try JSONResponse.parseObject(buffer.readableBytesView, family: .kserve)
            let readyOnly: Bool
            switch body["ready"] {
            case nil: readyOnly = false
            case let n as NSNumber where String(cString: n.objCType) == "c": readyOnly = n.boolValue
            default: throw APIError.badRequest("'ready' must be true or false", .kserve)
            }
            var names = Set(host.allSlots.map(\.0))
            for name in (try? host.repository.modelNames()) ?? [] { names.insert(name) }
            var index: [[String: Any]] = []
            for name in names.sorted() {
                switch host.slot(name) {
                case .ready(let versions):
                    for h in versions { index.append(["name": name, "version": String(h.version), "state": "READY"]) }
                case .loading: if !readyOnly { index.append(["name": name, "state": "LOADING"]) }
                case .unloaded:
                    if !readyOnly { index.append(["name": name, "state": "UNAVAILABLE", "reason": "unloaded"]) }
                case .failed(let reason), .unsupported(let reason):
                    if !readyOnly { index.append(["name": name, "state": "UNAVAILABLE", "reason": reason]) }
                case nil: if !readyOnly { index.append(["name": name]) }  // in the repository, never loaded
                }
            }
            return JSONResponse.make(index)
        }
        router.post("/v2/repository/models/:name/load") { _, context in
            try await host.load(try context.parameters.require("name"))
            return JSONResponse.make([String: Any]())
        }
        router.post("/v2/repository/models/:name/unload") { _, context in
            try await host.unload(try context.parameters.require("name"))
            return JSONResponse.make([String: Any]())
        }
    }

    /// The model's inputs and outputs as the metadata route lists them.
    static func tensors(of hosted: ModelHost.Hosted) -> (inputs: [[String: Any]], outputs: [[String: Any]]) {
        switch hosted.service {
        case .embedding(let service):
            return (
                [["name": "text", "datatype": "BYTES", "shape": [-1]]],
                [["name": "embedding", "datatype": "FP32", "shape": [-1, service.model.dimension]]]
            )
        case .transcription:
            return (
                [["name": "audio", "datatype": "BYTES", "shape": [-1]]],
                [["name": "text", "datatype": "BYTES", "shape": [-1]]]
            )
        case .classification(let service):
            let side = EfficientNetLite.inputSize
            let classes = service.classifier.labels.count
            return (
                [
                    ["name": "image", "datatype": "BYTES", "shape": [-1]],
                    ["name": "input", "datatype": "FP32", "shape": [-1, 3, side, side]],
                ],
                [
                    ["name": "logits", "datatype": "FP32", "shape": [-1, classes]],
                    ["name": "probabilities", "datatype": "FP32", "shape": [-1, classes]],
                ]
            )
        }
    }

    /// One BYTES input of encoded audio files; one BYTES output `text` per file (faster-whisper's defaults), the
    /// files transcribed together.
    static func transcribe(
        _ infer: InferRequest, _ service: TranscriptionService, _ hosted: ModelHost.Hosted,
        _ context: MassRequestContext
    ) async throws -> Response {
        guard infer.inputs.count == 1, let input = infer.inputs.first, case .bytes(let files) = input.data else {
            throw APIError.badRequest("'inputs' must hold exactly one BYTES tensor of audio files", .kserve)
        }
        guard !files.isEmpty, files.count <= hosted.entry.config.maxInputs else {
            throw APIError.badRequest("send 1 to \(hosted.entry.config.maxInputs) audio files", .kserve)
        }
        // Submitted together, so the files share encoder passes and decoder steps.
        let texts = try await context.cancellingOnDisconnect {
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (index, file) in files.enumerated() {
                    group.addTask {
                        // Awaited before the tuple is built: Swift 6.3 at -O can lose the part of a task's tuple
                        // result written before a suspension (swiftlang/swift#91911).
                        let text = try await service.transcribe(file: file).0.text
                        return (index, text)
                    }
                }
                var texts = [String](repeating: "", count: files.count)
                for try await (index, text) in group { texts[index] = text }
                return texts
            }
        }
        let response = InferResponse(
            modelName: hosted.entry.name, modelVersion: String(hosted.version), id: infer.id,
            outputs: [.init(name: "text", shape: [texts.count], texts: texts)])
        return try response.encode(for: infer)
    }

    static func embed(
        _ infer: InferRequest, _ service: EmbeddingService, _ hosted: ModelHost.Hosted, _ host: ModelHost,
        _ context: MassRequestContext
    ) async throws -> Response {
        let texts = try textInput(infer)
        try host.check(texts, for: hosted, family: .kserve, param: "inputs")
        let result = try await context.cancellingOnDisconnect { try await service.embed(texts) }
        let response = InferResponse(
            modelName: hosted.entry.name, modelVersion: String(hosted.version), id: infer.id,
            outputs: [
                .init(
                    name: "embedding", shape: [texts.count, service.model.dimension],
                    values: result.embeddings.flatMap { $0 })
            ])
        return try response.encode(for: infer)
    }

    /// One input: encoded images as BYTES (any name), or prepared FP32 [N, 3, 224, 224].
    static func classify(
        _ infer: InferRequest, _ service: ClassificationService, _ hosted: ModelHost.Hosted,
        _ context: MassRequestContext
    ) async throws -> Response {
        guard infer.inputs.count == 1, let input = infer.inputs.first else {
            throw APIError.badRequest(
                "'inputs' must hold exactly one tensor: BYTES images or FP32 [N, 3, 224, 224]", .kserve)
        }
        let side = EfficientNetLite.inputSize
        let count: Int
        let logits: [[Float]]
        switch input.data {
        case .bytes(let files):
            count = files.count
            try checkImageCount(count, hosted)
            logits = try await context.cancellingOnDisconnect { try await service.classify(encoded: files) }
        case .fp32(let values):
            guard input.shape.count == 4, input.shape[1] == 3, input.shape[2] == side, input.shape[3] == side else {
                throw APIError.badRequest(
                    "input '\(input.name)': FP32 images must have shape [N, 3, \(side), \(side)], not \(input.shape)",
                    .kserve)
            }
            count = input.shape[0]
            try checkImageCount(count, hosted)
            logits = try await context.cancellingOnDisconnect { try await service.classify(prepared: values) }
        }
        let classes = service.classifier.labels.count
        let probabilities = logits.flatMap(service.classifier.probabilities)
        let response = InferResponse(
            modelName: hosted.entry.name, modelVersion: String(hosted.version), id: infer.id,
            outputs: [
                .init(name: "logits", shape: [count, classes], values: logits.flatMap { $0 }),
                .init(name: "probabilities", shape: [count, classes], values: probabilities),
            ])
        return try response.encode(for: infer)
    }

    static func checkImageCount(_ count: Int, _ hosted: ModelHost.Hosted) throws {
        guard count > 0 else { throw APIError.badRequest("the input holds no image", .kserve) }
        guard count <= hosted.entry.config.maxInputs else {
            throw APIError.badRequest(
                "\(count) images; this model takes at most \(hosted.entry.config.maxInputs)", .kserve)
        }
    }

    /// The texts of the request's single BYTES input, which must be valid UTF-8.
    static func textInput(_ request: InferRequest) throws -> [String] {
        guard request.inputs.count == 1, let input = request.inputs.first else {
            throw APIError.badRequest("'inputs' must hold exactly one tensor (BYTES text)", .kserve)
        }
        guard input.datatype == "BYTES", case .bytes(let elements) = input.data else {
            throw APIError.badRequest(
                "input '\(input.name)': datatype must be \"BYTES\" for text, not \"\(input.datatype)\"", .kserve)
        }
        return try elements.enumerated().map { index, bytes in
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw APIError.badRequest("input '\(input.name)': element \(index) is not valid UTF-8", .kserve)
            }
            return text
        }
    }
}
