import Foundation
import Hummingbird
import MassRegistry
import MassStudies

/// The admin API over tuning studies, under `/admin/v1/studies` (docs/api.md): create a study (its configuration
/// checked first; workers run its trials), list them with their outcome, read one with every trial, stop one.
enum StudyRoutes {
    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        let limit = state.bodyLimit
        @Sendable func store() throws -> StudyStore {
            guard let registry = state.manager.registry else {
                throw APIError(status: .notFound, message: "this server runs without a registry", family: .kserve)
            }
            return StudyStore(database: registry.database)
        }
        @Sendable func detail(_ name: String) async throws -> StudyDetail {
            let study = try await store().study(name)
            return StudyDetail(study: study, trials: try await store().trials(name), plan: try StudyPlan(study: study))
        }
        let studies = router.group("/admin/v1/studies")
        studies.post("") { request, _ in
            let body = try await JSONBody.decode(JSONValue.self, request, limit: limit)
            let plan = try StudyPlan(document: body)
            let study = try await store().create(
                name: plan.name, config: plan.document, actor: AdminRoutes.actor(request))
            return try AdminRoutes.encode(try await detail(study.name), status: .created)
        }
        studies.get("") { _, _ in
            var summaries: [StudySummary] = []
            for study in try await store().studies() {
                guard let plan = try? StudyPlan(study: study) else { continue }
                summaries.append(StudySummary(study, try await store().trials(study.name), plan: plan))
            }
            return try AdminRoutes.encode(summaries)
        }
        studies.get("/:name") { _, context in
            try AdminRoutes.encode(try await detail(try context.parameters.require("name")))
        }
        studies.post("/:name/stop") { request, context in
            let name = try context.parameters.require("name")
            _ = try await store().stop(name, actor: AdminRoutes.actor(request))
            return try AdminRoutes.encode(try await detail(name))
        }
    }
}
