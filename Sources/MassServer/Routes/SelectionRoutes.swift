import Foundation
import Hummingbird
import MassRegistry

/// The admin API over model selections, under `/admin/v1/selections` (docs/api.md): the reports `mass select`
/// stored, newest first, and one whole. Selections run in `mass select`, never in the serving process: measuring
/// latency beside live traffic would measure neither.
enum SelectionRoutes {
    struct Summary: Encodable {
        var name: String
        var winner: String?
        var promoted: String?
        var candidates: Int
        var createdBy: String
        var createdAt: Int
    }

    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        @Sendable func store() throws -> SelectionStore {
            guard let registry = state.manager.registry else {
                throw APIError(status: .notFound, message: "this server runs without a registry", family: .kserve)
            }
            return SelectionStore(database: registry.database)
        }
        let selections = router.group("/admin/v1/selections")
        selections.get("") { _, _ in
            try AdminRoutes.encode(
                try await store().selections().map {
                    Summary(
                        name: $0.name, winner: $0.winner, promoted: $0.promoted,
                        candidates: $0.report["candidates"]?.array?.count ?? 0, createdBy: $0.createdBy,
                        createdAt: $0.createdAt)
                })
        }
        selections.get("/:name") { _, context in
            try AdminRoutes.encode(try await store().selection(try context.parameters.require("name")))
        }
    }
}
