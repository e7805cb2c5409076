import Foundation
import Hummingbird
import MassRegistry
import MassRuntime

/// Service-type models in the admin API, under `/admin/v1/services`: recording calibration pairs (inputs
/// answered by the provider and by a local candidate, written to the registry), their counts, and the report.
enum ServiceRoutes {
    /// Texts in `inputs` (embedding and classification services) or base64 audio files in `audio` (speech).
    struct RecordBody: Decodable {
        let candidate: String?
        let inputs: [String]?
        let audio: [String]?
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

        @Sendable func recordAudio(_ audio: [String], candidate: String?, _ context: MassRequestContext) async throws
            -> Response
        {
            let name = try context.parameters.require("name")
            guard let model = try manager.model(name) as? any SpeechPairRecording else {
                throw RuntimeError(
                    .wrongTask, "model '\(name)' is not a speech service-type model; send texts as 'inputs'",
                    param: "audio")
            }
            guard !audio.isEmpty, audio.count <= model.config.maxInputs else {
                throw RuntimeError(
                    .invalidInput, "send 1 to \(model.config.maxInputs) base64 audio files in 'audio'", param: "audio")
            }
            let files = try audio.enumerated().map { i, text -> [UInt8] in
                guard let data = Data(base64Encoded: text), !data.isEmpty else {
                    throw RuntimeError(.invalidInput, "'audio[\(i)]' is not non-empty base64", param: "audio")
                }
                return Array(data)
            }
            let recorded = try await model.recordPairs(audio: files, candidate: candidate)
            return try AdminRoutes.encode(["recorded": recorded])
        }
        admin.post("/services/:name/pairs") { request, context in
            let body = try await JSONBody.decode(RecordBody.self, request, limit: state.bodyLimit)
            if let audio = body.audio {
                return try await recordAudio(audio, candidate: body.candidate, context)
            }
            let model = try service(context)
            guard let inputs = body.inputs, !inputs.isEmpty else {
                throw RuntimeError(.invalidInput, "'inputs' is missing or empty", param: "inputs")
            }
            guard inputs.count <= model.config.maxInputs else {
                throw RuntimeError(
                    .invalidInput, "\(inputs.count) inputs; send at most \(model.config.maxInputs) per request",
                    param: "inputs")
            }
            try state.check(inputs, limits: model.config, param: "inputs")
            let recorded = try await model.recordPairs(inputs, candidate: body.candidate)
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
