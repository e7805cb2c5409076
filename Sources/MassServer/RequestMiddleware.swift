import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MassRuntime
import MassTenancy

/// What an inference handler tells the middleware about its request: the model it named and the route's metric
/// label. Shared through a task-local so that handlers need no plumbing beyond setting it.
final class RequestLabels: @unchecked Sendable {  // written by the request's own task, read after it
    @TaskLocal static var current: RequestLabels?

    var model: String?
    var route: String?
    /// The request's account under its tenant's plan (nil: an anonymous request on a server that allows them).
    var ticket: RequestTicket?

    /// Marks the request as an inference call of `route` (its `mass_requests_total` label).
    static func inference(_ route: String) { current?.route = route }
    /// The model the request named (counted under "unknown" when the server has no such model); admits the
    /// request under its key's scope and plan (403, 429).
    static func model(_ name: String) throws {
        current?.model = name
        try current?.ticket?.admit(model: name)
    }
}

/// Around every route: the request id (response header `X-Request-Id`, on every log line through the
/// context's logger), request metrics for inference routes (`mass_requests_total{model,route,status}`,
/// `mass_request_duration_seconds`), and the one mapping of errors to HTTP (`APIError.from`), with 500s logged
/// with their cause.
struct RequestMiddleware: RouterMiddleware {
    typealias Context = MassRequestContext
    let manager: ModelManager
    /// Keys, plans and metering (nil: a server without a registry, open to all).
    let gate: TenancyGate?
    /// Whether `/metrics` needs a key too (probes never do).
    let protectMetrics: Bool

    /// The role a path needs: none for probes (and metrics unless protected), `admin` for the admin API and
    /// KServe's repository extension, `inference` for everything else.
    func role(of path: String) -> String? {
        if path == "/health" || path.hasPrefix("/v2/health/") || path == "/v2" { return nil }
        if path == "/metrics" { return protectMetrics ? "inference" : nil }
        if path.hasPrefix("/admin/") || path.hasPrefix("/v2/repository/") { return "admin" }
        return "inference"
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let labels = RequestLabels()
        let start = ContinuousClock.now
        let path = request.uri.path
        let family = APIError.Family.of(path: path)
        let headers = request.headers
        do {
            if let gate, let role = role(of: path) {
                let principal = try gate.authenticate(
                    authorization: headers[.authorization], apiKey: headers[.apiKey])
                try gate.authorize(principal, role: role)
                if role == "inference", let principal { labels.ticket = gate.ticket(for: principal) }
            }
        } catch {
            return try refusal(error, family, request, context, labels, start)
        }
        let ticket = labels.ticket
        // A client may lower its own request to the batch class; only the plan can raise it.
        let batchClass = ticket?.principal.priority == "batch" || headers[.priority]?.lowercased() == "batch"
        let flow = ticket.map {
            SchedulingFlow(name: $0.principal.tenant, weight: $0.principal.weight, isBatch: batchClass)
        }
        let routing = RequestRouting(
            header: { name in HTTPField.Name(name).flatMap { headers[$0] } },
            charge: { kind, amount in try ticket?.charge(kind, amount) },
            flow: flow ?? SchedulingFlow(name: "", isBatch: batchClass))
        do {
            var response = try await RequestRouting.$current.withValue(routing) {
                try await RequestLabels.$current.withValue(labels) { try await next(request, context) }
            }
            response.headers[.requestID] = context.id
            if let identity = routing.servedBy {
                response.headers[.modelVersion] = String(identity.version)
                response.headers[.answeredBy] = identity.name
            }
            if let ticket {
                close(ticket, status: response.status.code, path: path, labels: labels, routing: routing)
                for (name, value) in ticket.headers() {
                    if let field = HTTPField.Name(name) { response.headers[field] = value }
                }
            }
            record(labels, status: response.status.code, since: start)
            return response
        } catch {
            if let ticket {
                let status = APIError.from(error, family).status.code
                close(ticket, status: status, path: path, labels: labels, routing: routing)
            }
            return try refusal(error, family, request, context, labels, start)
        }
    }

    private func close(
        _ ticket: RequestTicket, status: Int, path: String, labels: RequestLabels, routing: RequestRouting
    ) {
        let timing = routing.timing
        ticket.close(
            status: status, route: labels.route ?? path, version: routing.servedBy?.version,
            queueSeconds: timing.queue, computeSeconds: timing.compute)
    }

    private func refusal(
        _ error: any Error, _ family: APIError.Family, _ request: Request, _ context: Context,
        _ labels: RequestLabels, _ start: ContinuousClock.Instant
    ) throws -> Response {
        let mapped = APIError.from(error, family)
        if mapped.status.code >= 500 {
            context.logger.error(
                "request failed", metadata: ["path": "\(request.uri.path)", "error": "\(String(reflecting: error))"])
        } else {
            context.logger.debug(
                "request refused",
                metadata: ["status": "\(mapped.status.code)", "error": "\(String(reflecting: error))"])
        }
        if let refusal = error as? TenancyError, labels.ticket == nil {
            manager.metrics.add(
                "mass_auth_refusals_total", labels: [("status", String(refusal.status))],
                help: "Requests refused before routing: no, unknown, expired or revoked key (401), missing role (403).")
        }
        record(labels, status: mapped.status.code, since: start)
        return try mapped.response(from: request, context: context).withRequestID(context.id)
    }

    private func record(_ labels: RequestLabels, status: Int, since start: ContinuousClock.Instant) {
        guard let route = labels.route else { return }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        // Unknown model names are not echoed into labels (unbounded cardinality).
        let model = labels.model.flatMap { manager.slot($0) != nil ? $0 : nil } ?? "unknown"
        manager.metrics.add(
            "mass_requests_total", labels: [("model", model), ("route", route), ("status", String(status))],
            help: "Inference requests by model, route and HTTP status.")
        manager.metrics.observe(
            "mass_request_duration_seconds", seconds, labels: [("model", model), ("route", route)],
            help: "Inference request duration, from routing to response.")
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-Id")!
    /// The version of the model that computed the response (with deployments, the route the request took).
    static let modelVersion = HTTPField.Name("X-Model-Version")!
    /// The model that answered: the one asked for, or a service-type model's fallback.
    static let answeredBy = HTTPField.Name("X-Mass-Answered-By")!
    /// `batch`: serve this request after waiting interactive ones (fair scheduling's classes).
    static let priority = HTTPField.Name("X-Mass-Priority")!
    /// Azure OpenAI's key header.
    static let apiKey = HTTPField.Name("api-key")!
}

extension Response {
    fileprivate func withRequestID(_ id: String) -> Response {
        var copy = self
        copy.headers[.requestID] = id
        return copy
    }
}
