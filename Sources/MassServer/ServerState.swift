import Foundation
import Hummingbird
import MassModels
import MassRuntime
import MassTenancy

/// What every route shares: the model manager (below HTTP: lifecycle, lookup, metrics) and the server's limits.
/// The lookups here are thin: they throw the manager's `RuntimeError`s, which `RequestMiddleware` maps to HTTP.
final class ServerState: Sendable {
    let manager: ModelManager
    let bodyLimit: Int
    /// KServe `infer`, one adapter per task (registered by the route file of that task's API).
    let kserve: [ModelTask: KServeAdapter]
    /// Tenants, keys, plans and usage (nil: a server without a registry).
    let gate: TenancyGate?

    init(manager: ModelManager, bodyLimit: Int, kserve: [KServeAdapter], gate: TenancyGate? = nil) {
        self.gate = gate
        self.manager = manager
        self.bodyLimit = bodyLimit
        self.kserve = Dictionary(kserve.map { ($0.task, $0) }, uniquingKeysWith: { a, _ in a })
    }

    var metrics: MetricsRegistry { manager.metrics }

    /// A loaded model as the task protocol a route serves, noting its name for the request's metrics.
    func model<Serving>(
        _ name: String, version: String? = nil, as type: Serving.Type, serving task: ModelTask
    ) throws -> Serving {
        try RequestLabels.model(name)
        return try manager.model(name, version: version, as: type, serving: task)
    }

    /// Checks texts against the model's limits before any work starts.
    func check(_ texts: [String], limits config: ModelConfig, param: String) throws {
        guard !texts.isEmpty else { throw RuntimeError(.invalidInput, "'\(param)' is empty", param: param) }
        guard texts.count <= config.maxInputs else {
            throw RuntimeError(
                .invalidInput, "\(texts.count) inputs; this model takes at most \(config.maxInputs)", param: param)
        }
        if let long = texts.firstIndex(where: { $0.count > config.maxInputCharacters }) {
            throw RuntimeError(
                .invalidInput, "input \(long) has over \(config.maxInputCharacters) characters", param: param)
        }
    }
}

/// How KServe v2 `infer` runs for one task: decoded request in, encoded response out.
struct KServeAdapter: Sendable {
    let task: ModelTask
    let infer: @Sendable (InferRequest, any ServedModel, MassRequestContext, ServerState) async throws -> Response
}
