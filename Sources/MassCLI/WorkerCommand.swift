import ArgumentParser
import Foundation
import MassRegistry
import MassStudies

/// `mass worker`: claims queued jobs from the registry's database and runs each as a `mass train` child at a
/// lower OS priority and a set thread count, so training on a serving machine never takes the cores from serving.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run queued training jobs (mass jobs submit, POST /admin/v1/jobs) until stopped.",
        discussion: """
            Each job runs as a child process (mass train --resume) under nice, in <work>/job-<id>/, its log lines \
            sent to the registry with a heartbeat. A job whose worker stops sending heartbeats is taken back by \
            the next claim and resumes from its last checkpoint (workers on several machines need a shared \
            --work folder to resume each other's jobs; otherwise a retry starts over). A finished job with \
            "register" in its configuration becomes a new version of that model, with its lineage (parent, \
            dataset hash, settings, metrics, curves). SIGINT/SIGTERM stops the running job and queues it again.
            """)

    @OptionGroup var registry: RegistryOptions

    @Option(name: .long, help: "Folder of the jobs' runs and checkpoints (default <repository>.mass/jobs).")
    var work: String?

    @Option(name: .long, help: "Compute threads of a training job (default: every core).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "The jobs' OS priority: a nice value, 0 (as serving) to 19 (the lowest).")
    var nice = 10

    @Option(name: .long, help: "This worker's name in the jobs' records (default host-pid).")
    var name: String?

    @Option(name: .long, help: "Seconds between heartbeats.")
    var heartbeat = 5.0

    @Option(name: .long, help: "Seconds without a heartbeat after which another worker takes a running job back.")
    var staleAfter = 60

    @Option(name: .long, help: "Seconds between looks at an empty queue.")
    var poll = 2.0

    @Flag(name: .long, help: "Exit when the queue is empty instead of waiting for jobs.")
    var untilEmpty = false

    func validate() throws {
        guard (0...19).contains(nice) else { throw ValidationError("--nice must be between 0 and 19") }
        guard threads > 0 else { throw ValidationError("--threads must be positive") }
        guard heartbeat > 0, poll > 0 else { throw ValidationError("--heartbeat and --poll must be positive") }
        guard Double(staleAfter) > 2 * heartbeat else {
            throw ValidationError("--stale-after must exceed two heartbeats")
        }
    }

    func run() async throws {
        try Mass.checkCPU()
        let workerName = name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        let folder = URL(fileURLWithPath: work ?? registry.home.appendingPathComponent("jobs").path)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let stop = StopSignal()
        try await registry.with { models in
            let runner = JobRunner(
                registry: models, queue: JobQueue(database: models.database),
                studies: StudyStore(database: models.database), worker: workerName, work: folder,
                threads: threads, nice: nice, heartbeat: .milliseconds(Int(heartbeat * 1000)), stop: stop)
            log(
                "worker \(workerName): \(models.database.location), runs in \(folder.path), \(threads) threads, nice \(nice)"
            )
            try await WorkerLoop(
                runner: runner, staleAfter: staleAfter, poll: poll, untilEmpty: untilEmpty, study: nil
            ).run()
        }
    }

    private func log(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}

/// A worker's loop: claim the oldest queued job (training runs and studies' trials) and run it; with nothing
/// queued, let each running study propose its next trial (or end), and run that. `mass tune` runs one for its own
/// study and stops when the study has ended.
struct WorkerLoop {
    let runner: JobRunner
    let staleAfter: Int
    let poll: Double
    /// Exit when nothing is queued and no study is running (instead of waiting for work).
    let untilEmpty: Bool
    /// Only this study's trials, until it ends (`mass tune`).
    let study: String?

    func run() async throws {
        let kinds: Set<String> = study == nil ? ["train", "trial"] : ["trial"]
        while !runner.stop.isSet {
            let job: Job?
            do {
                job = try await runner.queue.claim(
                    worker: runner.worker, kinds: kinds, staleAfter: .seconds(staleAfter))
            } catch {
                // Waiting for jobs, a worker rides out a database that went away; asked to empty the queue, it
                // cannot tell that the queue is empty, and says so.
                if untilEmpty { throw error }
                log("cannot claim a job: \(error)")
                try? await Task.sleep(for: .milliseconds(Int(poll * 1000)))
                continue
            }
            if let job {
                await runner.run(job)
                continue
            }
            let (proposed, running) = try await proposeTrials()
            if proposed { continue }
            if untilEmpty && running == 0 { break }
            try? await Task.sleep(for: .milliseconds(Int(poll * 1000)))
        }
    }

    /// Asks the running studies (or this loop's one) for a new trial; answers whether one was queued and how many
    /// studies still run.
    private func proposeTrials() async throws -> (Bool, Int) {
        let running: [Study]
        do {
            if let study {
                let one = try await runner.studies.study(study)
                running = one.state == .running ? [one] : []
            } else {
                running = try await runner.studies.studies(states: [.running])
            }
        } catch {
            if untilEmpty { throw error }
            log("cannot read the studies: \(error)")
            return (false, 1)
        }
        for study in running.reversed() {
            do {
                let trial = try await runner.studies.propose(study.name, actor: "worker \(runner.worker)") {
                    study, trials in
                    try StudyPlan(study: study).decide(study, trials)
                }
                if let trial {
                    log("study \(study.name): trial \(trial.number) queued with \((try? trial.params.text()) ?? "?")")
                    return (true, running.count)
                }
            } catch {
                log("study \(study.name): cannot propose a trial: \(error)")
            }
        }
        // This loop's study may have just ended (its last trial done): nothing is left to wait for.
        if let study, let state = try? await runner.studies.study(study).state, state != .running { return (false, 0) }
        return (false, running.count)
    }

    private func log(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}

/// Set by SIGINT or SIGTERM.
final class StopSignal: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    private let flag = Flag()

    init() {
        let flag = self.flag
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { flag.set() }
            source.resume()
            return source
        }
    }

    var isSet: Bool { flag.isSet }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var isSet: Bool { lock.withLock { value } }
        func set() { lock.withLock { value = true } }
    }
}
