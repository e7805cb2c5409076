import Foundation
import Hummingbird
import MassRegistry
import MassRuntime

/// Service-type models in the admin API, under `/admin/v1/services`: recording calibration pairs (inputs
/// answered by the provider and by a local candidate, written to the registry) and their counts.
enum ServiceRoutes {
    struct RecordBody: Decodable {
        let candidate: String?
        let inputs: [String]
    }

    struct PairCount: Encodable {
        let candidate: String
        let pairs: Int
    }

    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        let manager = state.manager
        let admin = router.group("/admin/v1")
        @Sendable func service(_ context: MassRequestContext) throws -> any ServicePairRecording {
            let name = try context.parameters.require("name")
            let model = try manager.model(name)
            guard let recording = model as? any ServicePairRecording else {
                throw RuntimeError(
                    .wrongTask,
                    "model '\(name)' is not a service-type model that records pairs (text-embedding or text-classification)",
                    param: "model")
            }
            return recording
        }
        @Sendable func store() throws -> ServicePairStore {
            guard let store = manager.pairStore else {
                throw RuntimeError(.invalidInput, "recording pairs needs a registry (mass serve --registry)")
            }
            return store
        }

        admin.post("/services/:name/pairs") { request, context in
            let body = try await JSONBody.decode(RecordBody.self, request, limit: state.bodyLimit)
            let model = try service(context)
            guard !body.inputs.isEmpty else { throw RuntimeError(.invalidInput, "'inputs' is empty", param: "inputs") }
            guard body.inputs.count <= model.config.maxInputs else {
                throw RuntimeError(
                    .invalidInput, "\(body.inputs.count) inputs; send at most \(model.config.maxInputs) per request",
                    param: "inputs")
            }
            try state.check(body.inputs, limits: model.config, param: "inputs")
            let recorded = try await model.recordPairs(body.inputs, candidate: body.candidate)
            return try AdminRoutes.encode(["recorded": recorded])
        }
        admin.get("/services/:name/pairs") { _, context in
            let name = try context.parameters.require("name")
            let counts = try await store().counts().filter { $0.service == name }
            return try AdminRoutes.encode(counts.map { PairCount(candidate: $0.candidate, pairs: $0.pairs) })
        }
        admin.get("/services/:name/report") { _, context in
            let name = try context.parameters.require("name")
            let model = try manager.model(name)
            guard let service = model as? any ServiceStatisticsReporting else {
                throw RuntimeError(.wrongTask, "model '\(name)' is not a service-type model", param: "model")
            }
            var pairs: [ServicePair] = []
            if let store = manager.pairStore {
                for row in try await store.counts() where row.service == name {
                    pairs += try await store.pairs(service: name, candidate: row.candidate, limit: 2_000)
                }
            }
            return try AdminRoutes.encode(
                ServiceReport.make(service: name, statistics: service.serviceStatistics, pairs: pairs))
        }
        admin.delete("/services/:name/pairs") { request, context in
            let name = try context.parameters.require("name")
            let candidate = request.uri.queryParameters.get("candidate")
            return try AdminRoutes.encode(["deleted": try await store().delete(service: name, candidate: candidate)])
        }
    }
}
