import Foundation
import HTTPTypes
import Hummingbird
import MassRegistry
import MassRuntime
import MassTenancy

/// The admin API for service agreements, under `/admin/v1` (docs/tenancy.md): tenants, plans, API keys
/// (created and rotated keys are the only responses that carry a secret), and usage shaped like OpenAI's
/// organization usage API. Changes take effect on this server before the response.
enum TenancyRoutes {
    struct TenantBody: Decodable {
        let name: String
        let plan: String?
        let description: String?
    }

    struct TenantPlanBody: Decodable {
        /// Null: unlimited.
        let plan: String?
    }

    struct KeyBody: Decodable {
        let name: String?
        let roles: [String]?
        let models: [String]?
        let plan: String?
        /// Seconds from now.
        let expiresIn: Int?

        enum CodingKeys: String, CodingKey {
            case name, roles, models, plan
            case expiresIn = "expires_in"
        }
    }

    struct RotateBody: Decodable {
        let graceSeconds: Int?

        enum CodingKeys: String, CodingKey { case graceSeconds = "grace_seconds" }
    }

    /// A key with its secret, shown once.
    struct CreatedKey: Encodable {
        let key: APIKey
        let secret: String
        let replaces: APIKey?
    }

    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        let limit = state.bodyLimit
        @Sendable func gate() throws -> TenancyGate {
            guard let gate = state.gate else {
                throw APIError(status: .notFound, message: "this server runs without a registry", family: .kserve)
            }
            return gate
        }
        let actor = AdminRoutes.actor
        @Sendable func param(_ context: MassRequestContext, _ key: String) throws -> String {
            try context.parameters.require(key)
        }
        /// Reloads this server's keys and plans so that the change applies to its next request.
        @Sendable func changed<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) async throws -> Response {
            try await gate().reload()
            return try AdminRoutes.encode(value, status: status)
        }
        let admin = router.group("/admin/v1")

        admin.get("/plans") { _, _ in try AdminRoutes.encode(try await gate().store.plans()) }
        admin.put("/plans/:name") { request, context in
            let spec = try await JSONBody.decode(PlanSpec.self, request, limit: limit)
            return try await changed(
                try await gate().store.setPlan(try param(context, "name"), spec, actor: actor(request)))
        }
        admin.delete("/plans/:name") { request, context in
            try await gate().store.deletePlan(try param(context, "name"), actor: actor(request))
            return try await changed(["deleted": try param(context, "name")])
        }

        admin.get("/tenants") { _, _ in try AdminRoutes.encode(try await gate().store.tenants()) }
        admin.get("/tenants/:name") { _, context in
            try AdminRoutes.encode(try await gate().store.tenant(try param(context, "name")))
        }
        admin.post("/tenants") { request, _ in
            let body = try await JSONBody.decode(TenantBody.self, request, limit: limit)
            return try await changed(
                try await gate().store.createTenant(
                    body.name, plan: body.plan, description: body.description, actor: actor(request)),
                status: .created)
        }
        admin.put("/tenants/:name/plan") { request, context in
            let body = try await JSONBody.decode(TenantPlanBody.self, request, limit: limit)
            return try await changed(
                try await gate().store.setTenantPlan(try param(context, "name"), plan: body.plan, actor: actor(request))
            )
        }
        admin.delete("/tenants/:name") { request, context in
            try await gate().store.deleteTenant(try param(context, "name"), actor: actor(request))
            return try await changed(["deleted": try param(context, "name")])
        }

        admin.get("/keys") { request, _ in
            let tenant = request.uri.queryParameters.get("tenant")
            return try AdminRoutes.encode(try await gate().store.keys(tenant: tenant))
        }
        admin.post("/tenants/:name/keys") { request, context in
            let body = try await JSONBody.decode(KeyBody.self, request, limit: limit)
            if let seconds = body.expiresIn, seconds <= 0 {
                throw APIError.badRequest("'expires_in' must be a positive number of seconds", .kserve)
            }
            let draft = TenancyStore.KeyDraft(
                name: body.name, roles: body.roles ?? ["inference"], models: body.models, plan: body.plan,
                expiresAt: body.expiresIn.map { Int(Date().timeIntervalSince1970 * 1000) + $0 * 1000 })
            let (key, secret) = try await gate().store.createKey(
                tenant: try param(context, "name"), draft, actor: actor(request))
            return try await changed(CreatedKey(key: key, secret: secret, replaces: nil), status: .created)
        }
        admin.post("/keys/:prefix/revoke") { request, context in
            try await changed(try await gate().store.revokeKey(try param(context, "prefix"), actor: actor(request)))
        }
        admin.post("/keys/:prefix/rotate") { request, context in
            let body = try await JSONBody.decode(RotateBody.self, request, limit: limit)
            let (key, secret, old) = try await gate().store.rotateKey(
                try param(context, "prefix"), grace: body.graceSeconds ?? 0, actor: actor(request))
            return try await changed(CreatedKey(key: key, secret: secret, replaces: old), status: .created)
        }

        admin.get("/usage") { request, _ in
            let query = try UsageParameters.query(request.uri.queryParameters)
            let totals = try await gate().store.usage(query)
            return JSONResponse.make(UsageParameters.page(totals, query))
        }
    }
}

/// The usage API's parameters and page, after OpenAI's `GET /v1/organization/usage/*`: `start_time` (required,
/// Unix seconds), `end_time` (default now), `bucket_width` `1m`/`1h`/`1d` (default `1d`), `group_by` (comma
/// separated or repeated: `tenant`, `key`, `model`, `route`), `tenant`.
enum UsageParameters {
    static func query(_ parameters: Parameters) throws -> UsageQuery {
        func integer(_ name: String) throws -> Int? {
            guard let text = parameters.get(name) else { return nil }
            guard let value = Int(text), value >= 0 else {
                throw APIError.badRequest("'\(name)' must be Unix seconds (a non-negative integer)", .kserve)
            }
            return value
        }
        guard let start = try integer("start_time") else {
            throw APIError.badRequest("'start_time' (Unix seconds) is required", .kserve)
        }
        let end = try integer("end_time") ?? Int(Date().timeIntervalSince1970) + 1
        guard end > start else { throw APIError.badRequest("'end_time' must be after 'start_time'", .kserve) }
        let width: Int
        switch parameters.get("bucket_width") ?? "1d" {
        case "1m": width = 60
        case "1h": width = 3600
        case "1d": width = 86400
        default: throw APIError.badRequest("'bucket_width' must be 1m, 1h or 1d", .kserve)
        }
        // OpenAI's page limits: 1440 minutes, 168 hours, 31 days.
        let most = width == 60 ? 1440 : width == 3600 ? 168 : 31
        guard (end - start + width - 1) / width <= most else {
            throw APIError.badRequest("at most \(most) buckets of \(width) s per query: narrow the time range", .kserve)
        }
        let groups =
            (parameters.getAll("group_by") + parameters.getAll("group_by[]"))
            .flatMap { $0.split(separator: ",").map { String($0) } }
        return UsageQuery(
            start: start, end: end, bucketSeconds: width, groupBy: groups, tenant: parameters.get("tenant"))
    }

    /// Every bucket of the range, in order, empty ones included.
    static func page(_ totals: [UsageTotal], _ query: UsageQuery) -> [String: Any] {
        let width = query.bucketSeconds
        var byBucket: [Int: [UsageTotal]] = [:]
        for total in totals { byBucket[total.bucketStart, default: []].append(total) }
        var buckets: [[String: Any]] = []
        var start = (query.start / width) * width
        while start < query.end {
            let results: [[String: Any]] = (byBucket[start] ?? []).map { t in
                [
                    "object": "organization.usage.result", "tenant": t.tenant as Any? ?? NSNull(),
                    "api_key_prefix": t.keyPrefix as Any? ?? NSNull(), "model": t.model as Any? ?? NSNull(),
                    "route": t.route as Any? ?? NSNull(), "num_model_requests": t.requests,
                    "input_tokens": t.tokens, "seconds": t.audioSeconds, "images": t.images, "units": t.units,
                    "failed_requests": t.failed,
                ]
            }
            buckets.append([
                "object": "bucket", "start_time": max(start, query.start), "end_time": min(start + width, query.end),
                "results": results,
            ])
            start += width
        }
        return ["object": "page", "data": buckets, "has_more": false, "next_page": NSNull()]
    }
}
