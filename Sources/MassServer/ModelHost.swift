import Foundation
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

    init(repository: ModelRepository, bodyLimit: Int) async throws {
        var models: [String: Hosted] = [:]
        for name in try repository.modelNames() {
            let entry = try repository.entry(name)
            guard entry.config.task == .textEmbedding else { continue }  // other tasks arrive with their issues
            let version = entry.servedVersions.last!
            let model = try SentenceEmbedder(directory: entry.versionDirectory(version))
            let service = EmbeddingService(model: model, config: entry.config)
            _ = try await service.embed(["warm-up"])  // ready only after one real inference
            models[name] = Hosted(entry: entry, version: version, service: service)
        }
        self.models = models
        self.bodyLimit = bodyLimit
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
