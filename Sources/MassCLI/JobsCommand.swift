import ArgumentParser
import Foundation
import MassRegistry
import MassTraining

/// `mass jobs`: the training queue in the registry's database, for `mass worker` processes to run.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Queue training jobs for mass worker and follow them: submit, list, show, cancel, logs.",
        discussion: """
            Jobs live in the registry's database (SQLite beside the repository, or --registry postgres://... \
            that workers on several machines share). A job's configuration is mass train's (docs/training.md), \
            checked when submitted; its paths are read on the worker's machine, relative to the worker's folder. \
            "register": {"model": NAME, "alias": ALIAS} registers the trained model as NAME's next version.
            """,
        subcommands: [JobsSubmit.self, JobsList.self, JobsShow.self, JobsCancel.self, JobsLogs.self])

    /// Opens the registry (applying migrations) and runs `body` on its job queue.
    static func withQueue<T>(_ options: RegistryOptions, _ body: (JobQueue) async throws -> T) async throws -> T {
        try await options.with { registry in try await body(JobQueue(database: registry.database)) }
    }

    /// A job as a line of `mass jobs list`.
    static func line(_ job: Job) -> String {
        let task = job.config["task"]?.string ?? job.kind
        let when = Date(timeIntervalSince1970: Double(job.submittedAt) / 1000).formatted(.iso8601)
        return [
            String(job.id), job.state.rawValue, task, "\(job.attempts)/\(job.maxAttempts)", job.worker ?? "-", when,
            job.progress ?? job.error ?? "",
        ].joined(separator: "\t")
    }
}

struct JobsSubmit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit", abstract: "Queue a training job (mass train's configuration); prints the job.")

    @OptionGroup var registry: RegistryOptions

    @Argument(help: "The job's JSON configuration.")
    var config: String

    @Option(name: .long, help: "Runs allowed before the job fails (a worker that dies costs one).")
    var maxAttempts = 3

    func run() async throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: config)) } catch {
            throw ValidationError("\(config): cannot read (\(error.localizedDescription))")
        }
        do {
            try TrainingConfig.decode(data).validate()
        } catch { throw ValidationError("\(config): \(error.message)") }
        let value = try JSONValue.parse(String(decoding: data, as: UTF8.self))
        let job = try await JobsCommand.withQueue(registry) { queue in
            try await queue.submit(kind: "train", config: value, maxAttempts: maxAttempts, actor: registry.who)
        }
        print(ModelsCommand.json(job))
    }
}

struct JobsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Jobs, newest first: id, state, task, attempts, worker, submitted, progress.")

    @OptionGroup var registry: RegistryOptions

    @Option(name: .long, help: "Only jobs in this state (queued, running, succeeded, failed, cancelled); repeatable.")
    var state: [String] = []

    @Option(name: .long, help: "At most this many.")
    var limit = 50

    @Flag(name: .long, help: "JSON instead of a table.")
    var json = false

    func run() async throws {
        let states = try Set(
            state.map { name in
                guard let s = Job.State(rawValue: name) else {
                    throw ValidationError(
                        "--state '\(name)' is unknown (\(Job.State.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return s
            })
        let jobs = try await JobsCommand.withQueue(registry) { try await $0.jobs(states: states, limit: limit) }
        if json { return print(ModelsCommand.json(jobs)) }
        print(["id", "state", "task", "attempts", "worker", "submitted", "progress"].joined(separator: "\t"))
        for job in jobs { print(JobsCommand.line(job)) }
    }
}

struct JobsShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "One job as JSON: configuration, state, attempts, progress, result.")

    @OptionGroup var registry: RegistryOptions

    @Argument(help: "The job's id.")
    var id: Int

    func run() async throws {
        print(ModelsCommand.json(try await JobsCommand.withQueue(registry) { try await $0.job(id) }))
    }
}

struct JobsCancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a job: a queued one at once, a running one at its worker's next heartbeat.")

    @OptionGroup var registry: RegistryOptions

    @Argument(help: "The job's id.")
    var id: Int

    func run() async throws {
        let job = try await JobsCommand.withQueue(registry) { try await $0.cancel(id, actor: registry.who) }
        print(ModelsCommand.json(job))
    }
}

struct JobsLogs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "A job's log: its worker's lines (progress, epochs, errors), oldest first.")

    @OptionGroup var registry: RegistryOptions

    @Argument(help: "The job's id.")
    var id: Int

    @Flag(name: .shortAndLong, help: "Keep printing new lines until the job finishes.")
    var follow = false

    func run() async throws {
        try await JobsCommand.withQueue(registry) { queue in
            var last = 0
            while true {
                // The state first: a job's last lines commit with its final state, so once it reads finished, the
                // lines read after it are all there are.
                let finished = try await queue.job(id).state.isFinished
                let lines = try await queue.logs(id, after: last)
                for line in lines {
                    let when = Date(timeIntervalSince1970: Double(line.at) / 1000).formatted(.iso8601)
                    print("\(when)  \(line.line)")
                }
                last = lines.last?.id ?? last
                if !follow || finished { return }
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}
