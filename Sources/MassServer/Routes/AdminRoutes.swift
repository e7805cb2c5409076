import Foundation
import HTTPTypes
import Hummingbird
import MassRegistry
import MassRuntime

/// The admin API over the model registry, under `/admin/v1` (documented in docs/api.md): models, versions,
/// aliases, tags, history, promotion and rollback, and deployments. Every change is one registry transaction and
/// takes effect on this server before the response (other servers on the same registry pick it up at their next
/// poll). The actor recorded in the history is the `X-Mass-Actor` header, else "admin-api".
enum AdminRoutes {
    struct RegisterBody: Decodable {
        /// A model folder on the server's machine.
        let path: String
        let task: String?
        let alias: String?
        let parent: Int?
        let dataset: String?
        let trainingRun: String?
        let description: String?
        let source: String?
        let tags: [String: String]?

        enum CodingKeys: String, CodingKey {
            case path, task, alias, parent, dataset, description, source, tags
            case trainingRun = "training_run"
        }
    }

    struct AliasBody: Decodable {
        let version: Int
        let reason: String?
    }

    struct PromoteBody: Decodable {
        let version: Int
        let alias: String?
        let reason: String?
    }

    struct RollbackBody: Decodable {
        let alias: String?
        let reason: String?
    }

    struct TagsBody: Decodable {
        let version: Int?
        /// A null value removes the tag.
        let tags: [String: String?]
    }

    struct MetricBody: Decodable {
        let key: String
        let value: Double
    }

    static let actorField = HTTPField.Name("X-Mass-Actor")!
    /// Who makes a change, for the history: the `X-Mass-Actor` header, else "admin-api".
    @Sendable static func actor(_ request: Request) -> String { request.headers[actorField] ?? "admin-api" }

    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        let manager = state.manager
        let limit = state.bodyLimit
        @Sendable func registry() throws -> ModelRegistry {
            guard let registry = manager.registry else {
                throw APIError(
                    status: .notFound, message: "this server runs without a registry", family: .kserve)
            }
            return registry
        }
        @Sendable func name(_ context: MassRequestContext) throws -> String { try context.parameters.require("name") }
        @Sendable func number(_ context: MassRequestContext, _ key: String) throws -> Int {
            guard let n = Int(try context.parameters.require(key)) else {
                throw APIError.badRequest("'\(key)' in the path must be a version number", .kserve)
            }
            return n
        }
        /// Applies the change on this server at once; a model whose new deployment cannot be loaded (an altered
        /// file, a bad config) answers with why, and keeps serving its previous one.
        @Sendable func changed(_ model: String? = nil) async throws {
            let failures = try await manager.syncRegistry()
            if let model, let failure = failures[model] { throw failure }
        }

        let admin = router.group("/admin/v1")
        admin.get("/models") { _, _ in try encode(try await registry().models()) }
        admin.get("/models/:name") { _, context in try encode(try await registry().model(try name(context))) }
        admin.get("/models/:name/history") { _, context in
            try encode(try await registry().history(try name(context)))
        }
        admin.get("/models/:name/versions/:version") { _, context in
            try encode(
                try await registry().version(try name(context), selector: try context.parameters.require("version")))
        }
        admin.post("/models/:name/versions") { request, context in
            let body = try await JSONBody.decode(RegisterBody.self, request, limit: limit)
            let folder = URL(fileURLWithPath: body.path).standardizedFileURL
            let draft = try RegistryDrafts.draft(
                folder: folder, task: body.task, source: VersionSource(kind: "folder", uri: body.source ?? body.path),
                parent: body.parent, dataset: body.dataset, trainingRun: body.trainingRun,
                description: body.description, tags: body.tags ?? [:])
            let version = try await registry().register(
                folder: folder, name: try name(context), draft: draft, alias: body.alias, actor: actor(request))
            try await changed()
            return try encode(version, status: .created)
        }
        admin.delete("/models/:name/versions/:version") { request, context in
            try await registry().deleteVersion(try name(context), try number(context, "version"), actor: actor(request))
            try await changed()
            return Response(status: .noContent)
        }
        admin.put("/models/:name/aliases/:alias") { request, context in
            let body = try await JSONBody.decode(AliasBody.self, request, limit: limit)
            let event = try await registry().setAlias(
                try name(context), try context.parameters.require("alias"), to: body.version, actor: actor(request),
                reason: body.reason)
            try await changed()
            return try encode(event)
        }
        admin.delete("/models/:name/aliases/:alias") { request, context in
            try await registry().deleteAlias(
                try name(context), try context.parameters.require("alias"), actor: actor(request))
            try await changed()
            return Response(status: .noContent)
        }
        admin.post("/models/:name/promote") { request, context in
            let body = try await JSONBody.decode(PromoteBody.self, request, limit: limit)
            let event = try await registry().promote(
                try name(context), version: body.version, alias: body.alias ?? DeploymentSpec.fallbackAlias,
                actor: actor(request), reason: body.reason)
            try await changed(try name(context))
            return try encode(event)
        }
        admin.post("/models/:name/rollback") { request, context in
            let body = try await JSONBody.decode(RollbackBody.self, request, limit: limit)
            let event = try await registry().rollback(
                try name(context), alias: body.alias ?? DeploymentSpec.fallbackAlias, actor: actor(request),
                reason: body.reason)
            try await changed()
            return try encode(event)
        }
        admin.put("/models/:name/tags") { request, context in
            let body = try await JSONBody.decode(TagsBody.self, request, limit: limit)
            let registry = try registry()
            for (key, value) in body.tags.sorted(by: { $0.key < $1.key }) {
                try await registry.tag(
                    try name(context), version: body.version, key: key, value: value, actor: actor(request))
            }
            return try encode(try await registry.model(try name(context)))
        }
        admin.post("/models/:name/versions/:version/metrics") { request, context in
            let body = try await JSONBody.decode(MetricBody.self, request, limit: limit)
            try await registry().recordMetric(
                try name(context), version: try number(context, "version"), key: body.key, value: body.value,
                actor: actor(request))
            return Response(status: .noContent)
        }
        admin.get("/deployments/:name") { _, context in
            let model = try name(context)
            let stored = try await registry().deployment(model)
            let served = manager.deployment(model)
            return try encode(DeploymentView(model: model, spec: stored, serving: served.map(ServingView.init)))
        }
        admin.get("/deployments/:name/report") { _, context in
            let model = try name(context)
            guard let report = manager.shadowReport(model) else {
                throw APIError(
                    status: .notFound, message: "the deployment of '\(model)' has no shadow on this server",
                    family: .kserve)
            }
            return try encode(report)
        }
        admin.put("/deployments/:name") { request, context in
            let spec = try await JSONBody.decode(DeploymentSpecBody.self, request, limit: limit).spec
            try await registry().deploy(try name(context), spec, actor: actor(request))
            try await changed(try name(context))
            let model = try name(context)
            return try encode(
                DeploymentView(model: model, spec: spec, serving: manager.deployment(model).map(ServingView.init)))
        }
        admin.delete("/deployments/:name") { request, context in
            try await registry().undeploy(try name(context), actor: actor(request))
            try await changed()
            return Response(status: .noContent)
        }
    }

    /// A deployment as the admin API reads and writes it.
    struct DeploymentSpecBody: Decodable {
        struct Route: Decodable {
            let target: String
            let weight: Double
        }
        struct Shadow: Decodable {
            let target: String
            let sample: Double
        }
        let routes: [Route]
        let stickyHeader: String?
        let shadow: Shadow?

        enum CodingKeys: String, CodingKey {
            case routes, shadow
            case stickyHeader = "sticky_header"
        }

        var spec: DeploymentSpec {
            DeploymentSpec(
                routes: routes.map { .init(target: $0.target, weight: $0.weight) }, stickyHeader: stickyHeader,
                shadow: shadow.map { .init(target: $0.target, sample: $0.sample) })
        }
    }

    struct ServingView: Encodable {
        struct Route: Encodable {
            let target: String
            let version: Int
            let weight: Double
        }
        let routes: [Route]
        let shadowVersion: Int?
        let shadowSample: Double?

        init(_ plan: ResolvedDeployment) {
            routes = plan.routes.map { Route(target: $0.target, version: $0.version, weight: $0.weight) }
            shadowVersion = plan.shadow?.version
            shadowSample = plan.shadow?.sample
        }
    }

    struct DeploymentView: Encodable {
        let model: String
        /// The stored deployment (nil: the model serves its production alias or latest version).
        let spec: DeploymentSpec?
        /// What this server routes now.
        let serving: ServingView?
    }

    static func encode(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
