import Foundation
import Hummingbird
import MassModels
import MassRuntime
import MassTensor

/// KServe v2 Open Inference Protocol (REST): health, server and model metadata, readiness and `infer`, and the
/// repository extension. `infer` dispatches to the adapter of the model's task (`ServerState.kserve`), each
/// defined beside its task's other routes.
enum KServeRoutes {
    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        let manager = state.manager
        router.get("/metrics") { _, _ in
            state.metrics.set(
                "mass_process_resident_memory_bytes", Double(Memory.residentBytes),
                help: "Resident memory of the server process (read at scrape time).")
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: state.metrics.exposition())))
        }
        router.get("/v2/health/live") { _, _ in JSONResponse.make(["live": true]) }
        router.get("/v2/health/ready") { _, _ in
            let ready = manager.isReady
            var body: [String: Any] = ["ready": ready]
            // Degraded: the registry cannot be read; what is loaded keeps serving, changes wait for it.
            if let problem = manager.registryProblem {
                body["degraded"] = true
                body["reason"] = problem
            }
            return JSONResponse.make(body, status: ready ? .ok : .serviceUnavailable)
        }
        router.get("/v2") { _, _ in
            JSONResponse.make([
                "name": "mass", "version": "0.1.0", "extensions": ["binary_tensor_data", "model_repository"],
            ])
        }
        for suffix in ["", "/versions/:version"] {
            router.get("/v2/models/:name\(suffix)") { _, context in
                let name = try context.parameters.require("name")
                let model = try manager.model(name, version: context.parameters.get("version"))
                let versions = try manager.versions(name).map { String($0.identity.version) }
                func describe(_ specs: [TensorSpec]) -> [[String: Any]] {
                    specs.map { ["name": $0.name, "datatype": $0.datatype, "shape": $0.shape] }
                }
                return JSONResponse.make([
                    "name": name, "versions": versions, "platform": "mass", "inputs": describe(model.inputs),
                    "outputs": describe(model.outputs),
                ])
            }
            router.get("/v2/models/:name\(suffix)/ready") { _, context in
                let name = try context.parameters.require("name")
                let model = try manager.model(name, version: context.parameters.get("version"))
                // A service-type model whose provider cannot be reached is loaded but not ready.
                if let reason = model.unreadyReason {
                    return JSONResponse.make(
                        ["name": name, "ready": false, "reason": reason], status: .serviceUnavailable)
                }
                return JSONResponse.make(["name": name, "ready": true])
            }
            router.post("/v2/models/:name\(suffix)/infer") { request, context in
                RequestLabels.inference("/v2/infer")
                let name = try context.parameters.require("name")
                try RequestLabels.model(name)
                let model = try manager.model(name, version: context.parameters.get("version"))
                guard let adapter = state.kserve[model.task] else {
                    throw RuntimeError(.wrongTask, "model '\(name)' (task '\(model.task.rawValue)') has no v2 infer")
                }
                let infer = try await InferRequest.read(request, limit: state.bodyLimit)
                return try await adapter.infer(infer, model, context, state)
            }
        }
        addRepositoryRoutes(to: router, state: state)
    }

    /// The repository extension: index, load (or reload) and unload at run time.
    static func addRepositoryRoutes(to router: Router<MassRequestContext>, state: ServerState) {
        let manager = state.manager
        router.post("/v2/repository/index") { request, _ in
            let buffer = try await JSONResponse.collect(request, limit: state.bodyLimit, family: .kserve)
            let body =
                buffer.readableBytes == 0
                ? [:] : try JSONResponse.parseObject(buffer.readableBytesView, family: .kserve)
            let readyOnly: Bool
            switch body["ready"] {
            case nil: readyOnly = false
            case let n as NSNumber where String(cString: n.objCType) == "c": readyOnly = n.boolValue
            default: throw RuntimeError(.invalidInput, "'ready' must be true or false")
            }
            var names = Set(manager.allSlots.map(\.0))
            for name in (try? manager.repository.modelNames()) ?? [] { names.insert(name) }
            var index: [[String: Any]] = []
            for name in names.sorted() {
                switch manager.slot(name) {
                case .ready(let versions):
                    for m in versions {
                        if let reason = m.unreadyReason {
                            if !readyOnly {
                                index.append([
                                    "name": name, "version": String(m.identity.version), "state": "UNAVAILABLE",
                                    "reason": reason,
                                ])
                            }
                        } else {
                            index.append(["name": name, "version": String(m.identity.version), "state": "READY"])
                        }
                    }
                case .loading: if !readyOnly { index.append(["name": name, "state": "LOADING"]) }
                case .unloaded:
                    if !readyOnly { index.append(["name": name, "state": "UNAVAILABLE", "reason": "unloaded"]) }
                case .failed(let reason):
                    if !readyOnly { index.append(["name": name, "state": "UNAVAILABLE", "reason": reason]) }
                case nil: if !readyOnly { index.append(["name": name]) }  // in the repository, never loaded
                }
            }
            return JSONResponse.make(index)
        }
        router.post("/v2/repository/models/:name/load") { _, context in
            try await manager.load(try context.parameters.require("name"))
            return JSONResponse.make([String: Any]())
        }
        router.post("/v2/repository/models/:name/unload") { _, context in
            try await manager.unload(try context.parameters.require("name"))
            return JSONResponse.make([String: Any]())
        }
    }

    /// The error of an adapter handed a model of another kind (a task registered twice, say).
    static func mismatch(_ model: any ServedModel) -> RuntimeError {
        RuntimeError(.wrongTask, "model '\(model.identity.name)' cannot serve this request")
    }

    /// The texts of the request's single BYTES input, which must be valid UTF-8.
    static func textInput(_ request: InferRequest) throws -> [String] {
        guard request.inputs.count == 1, let input = request.inputs.first else {
            throw RuntimeError(.invalidInput, "'inputs' must hold exactly one tensor (BYTES text)")
        }
        return try textInput(input)
    }

    /// The texts of one BYTES tensor, which must be valid UTF-8.
    static func textInput(_ input: InferRequest.Input) throws -> [String] {
        guard input.datatype == "BYTES", case .bytes(let elements) = input.data else {
            throw RuntimeError(
                .invalidInput,
                "input '\(input.name)': datatype must be \"BYTES\" for text, not \"\(input.datatype)\"")
        }
        return try elements.enumerated().map { index, bytes in
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw RuntimeError(.invalidInput, "input '\(input.name)': element \(index) is not valid UTF-8")
            }
            return text
        }
    }
}
