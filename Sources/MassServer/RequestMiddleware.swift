import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MassRuntime

/// What an inference handler tells the middleware about its request: the model it named and the route's metric
/// label. Shared through a task-local so that handlers need no plumbing beyond setting it.
final class RequestLabels: @unchecked Sendable {  // written by the request's own task, read after it
    @TaskLocal static var current: RequestLabels?

    var model: String?
    var route: String?

    /// Marks the request as an inference call of `route` (its `mass_requests_total` label).
    static func inference(_ route: String) { current?.route = route }
    /// The model the request named (counted under "unknown" when the server has no such model).
    static func model(_ name: String) { current?.model = name }
}

/// Around every route: the request id (response header `X-Request-Id`, on every log line through the
/// context's logger), request metrics for inference routes (`mass_requests_total{model,route,status}`,
/// `mass_request_duration_seconds`), and the one mapping of errors to HTTP (`APIError.from`), with 500s logged
/// with their cause.
struct RequestMiddleware: RouterMiddleware {
    typealias Context = MassRequestContext
    let manager: ModelManager

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let labels = RequestLabels()
        let start = ContinuousClock.now
        let family = APIError.Family.of(path: request.uri.path)
        let headers = request.headers
        let routing = RequestRouting { name in HTTPField.Name(name).flatMap { headers[$0] } }
        do {
            var response = try await RequestRouting.$current.withValue(routing) {
                try await RequestLabels.$current.withValue(labels) { try await next(request, context) }
            }
            response.headers[.requestID] = context.id
            if let identity = routing.servedBy { response.headers[.modelVersion] = String(identity.version) }
            record(labels, status: response.status.code, since: start)
            return response
        } catch {
            let mapped = APIError.from(error, family)
            if mapped.status.code >= 500 {
                context.logger.error(
                    "request failed",
                    metadata: ["path": "\(request.uri.path)", "error": "\(String(reflecting: error))"])
            } else {
                context.logger.debug(
                    "request refused",
                    metadata: ["status": "\(mapped.status.code)", "error": "\(String(reflecting: error))"])
            }
            record(labels, status: mapped.status.code, since: start)
            return try mapped.response(from: request, context: context).withRequestID(context.id)
        }
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
}

extension Response {
    fileprivate func withRequestID(_ id: String) -> Response {
        var copy = self
        copy.headers[.requestID] = id
        return copy
    }
}
