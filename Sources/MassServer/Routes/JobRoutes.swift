import Foundation
import Hummingbird
import MassRegistry
import MassTraining

/// The admin API over the job queue, under `/admin/v1/jobs` (docs/api.md): submit a training job (its
/// configuration checked before it is queued), list and read jobs, cancel one, read its log. Jobs run in
/// `mass worker` processes, never in the server.
enum JobRoutes {
    struct SubmitBody: Decodable {
        let kind: String?
        let config: JSONValue
        let maxAttempts: Int?

        enum CodingKeys: String, CodingKey {
            case kind, config
            case maxAttempts = "max_attempts"
        }
    }

    struct LogPage: Encodable {
        let job: Int
        let lines: [JobLogLine]
        /// Pass as `after` for the next lines.
        let next: Int
    }

    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        let limit = state.bodyLimit
        @Sendable func queue() throws -> JobQueue {
            guard let registry = state.manager.registry else {
                throw APIError(status: .notFound, message: "this server runs without a registry", family: .kserve)
            }
            return JobQueue(database: registry.database)
        }
        @Sendable func id(_ context: MassRequestContext) throws -> Int {
            guard let id = Int(try context.parameters.require("id")) else {
                throw APIError.badRequest("the job id in the path must be a number", .kserve)
            }
            return id
        }
        @Sendable func number(_ request: Request, _ key: String, default value: Int, _ range: ClosedRange<Int>) throws
            -> Int
        {
            guard let text = request.uri.queryParameters.get(key) else { return value }
            guard let n = Int(text), range.contains(n) else {
                throw APIError.badRequest(
                    "'\(key)' must be a number in \(range.lowerBound)...\(range.upperBound)", .kserve)
            }
            return n
        }

        let jobs = router.group("/admin/v1/jobs")
        jobs.post("") { request, _ in
            let body = try await JSONBody.decode(SubmitBody.self, request, limit: limit)
            let kind = body.kind ?? "train"
            guard kind == "train" else {
                throw APIError.badRequest("job kind '\(kind)' is unknown (train)", .kserve)
            }
            // The configuration as mass train reads it: a job that cannot train is refused now, not on a worker.
            let config = try TrainingConfig.decode(Data(try body.config.text().utf8))
            try config.validate()
            let job = try await queue().submit(
                kind: kind, config: body.config, maxAttempts: body.maxAttempts ?? 3, actor: AdminRoutes.actor(request))
            return try AdminRoutes.encode(job, status: .created)
        }
        jobs.get("") { request, _ in
            var states: Set<Job.State> = []
            for name in request.uri.queryParameters.getAll("state") {
                guard let state = Job.State(rawValue: String(name)) else {
                    throw APIError.badRequest(
                        "'state' must be one of \(Job.State.allCases.map(\.rawValue).joined(separator: ", "))", .kserve)
                }
                states.insert(state)
            }
            let found = try await queue().jobs(
                states: states, limit: try number(request, "limit", default: 100, 1...1000))
            return try AdminRoutes.encode(found)
        }
        jobs.get("/:id") { _, context in try AdminRoutes.encode(try await queue().job(try id(context))) }
        jobs.post("/:id/cancel") { request, context in
            try AdminRoutes.encode(try await queue().cancel(try id(context), actor: AdminRoutes.actor(request)))
        }
        jobs.get("/:id/logs") { request, context in
            let job = try id(context)
            let after = try number(request, "after", default: 0, 0...Int.max)
            let lines = try await queue().logs(job, after: after, limit: 1000)
            return try AdminRoutes.encode(LogPage(job: job, lines: lines, next: lines.last?.id ?? after))
        }
    }
}
