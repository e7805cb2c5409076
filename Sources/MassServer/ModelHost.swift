import Foundation
import Hummingbird
import MassModels
import MassRuntime

/// The models a server hosts: every text-embedding model of the repository, loaded and warmed up at start.
final class ModelHost: Sendable {
    struct Hosted: Sendable {
        let entry: ModelRepository.Entry
        let version: Int
        let service: EmbeddingService
    }

    let models: [String: Hosted]
    let bodyLimit: Int
    let metrics = MetricsRegistry()

    init(repository: ModelRepository, bodyLimit: Int) async throws {
        var models: [String: Hosted] = [:]
        for name in try repository.modelNames() {
            let entry = try repository.entry(name)
            guard entry.config.task == .textEmbedding else { continue }  // other tasks arrive with their issues
            let version = entry.servedVersions.last!
            let model = try SentenceEmbedder(directory: entry.versionDirectory(version))
            let service = EmbeddingService(model: model, config: entry.config, name: name, metrics: metrics)
            _ = try await service.embed(["warm-up"])  // ready only after one real inference
            models[name] = Hosted(entry: entry, version: version, service: service)
        }
        self.models = models
        self.bodyLimit = bodyLimit
        metrics.set("mass_models_loaded", Double(models.count), help: "Models loaded and ready.")
    }

    /// Runs one inference route's work and records its count, status and duration.
    func measured(
        model: @autoclosure () -> String, route: String, family: APIError.Family, _ body: () async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        var status = 500
        defer {
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            // Unknown model names are not echoed into labels (unbounded cardinality).
            let label = models[model()] != nil ? model() : "unknown"
            metrics.add(
                "mass_requests_total", labels: [("model", label), ("route", route), ("status", String(status))],
                help: "Inference requests by model, route and HTTP status.")
            metrics.observe(
                "mass_request_duration_seconds", seconds, labels: [("model", label), ("route", route)],
                help: "Inference request duration, from routing to response.")
        }
        do {
            let response = try await body()
            status = response.status.code
            return response
        } catch {
            let mapped = APIError.from(error, family)
            status = mapped.status.code
            throw mapped
        }
    }

    func model(_ name: String, version: String? = nil, family: APIError.Family) throws -> Hosted {
        guard let hosted = models[name] else {
            throw APIError(status: .notFound, message: "unknown model '\(name)'", family: family)
        }
        if let version, Int(version) != hosted.version {
            throw APIError(
                status: .notFound, message: "model '\(name)' has no loaded version '\(version)'", family: family)
        }
        return hosted
    }

    /// Checks texts against the model's limits before any work starts.
    func check(_ texts: [String], for hosted: Hosted, family: APIError.Family, param: String) throws {
        guard !texts.isEmpty else { throw APIError.badRequest("'\(param)' is empty", family, param: param) }
        guard texts.count <= hosted.entry.config.maxInputs else {
            throw APIError.badRequest(
                "\(texts.count) inputs; this model takes at most \(hosted.entry.config.maxInputs)", family, param: param
            )
        }
        if let long = texts.firstIndex(where: { $0.count > hosted.entry.config.maxInputCharacters }) {
            throw APIError.badRequest(
                "input \(long) has over \(hosted.entry.config.maxInputCharacters) characters", family, param: param)
        }
    }

    func shutdown() {
        for hosted in models.values { hosted.service.shutdown() }
    }
}
