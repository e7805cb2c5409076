import ArgumentParser
import Foundation
import MassRegistry

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
                registry: models, queue: JobQueue(database: models.database), worker: workerName, work: folder,
                threads: threads, nice: nice, heartbeat: .milliseconds(Int(heartbeat * 1000)), stop: stop)
            log(
                "worker \(workerName): \(models.database.location), runs in \(folder.path), \(threads) threads, nice \(nice)"
            )
            while !stop.isSet {
                let job: Job?
                do {
                    job = try await runner.queue.claim(
                        worker: workerName, kinds: ["train"], staleAfter: .seconds(staleAfter))
                } catch {
                    // Waiting for jobs, a worker rides out a database that went away; asked to empty the queue, it
                    // cannot tell that the queue is empty, and says so.
                    if untilEmpty { throw error }
                    log("cannot claim a job: \(error)")
                    job = nil
                }
                if let job {
                    await runner.run(job)
                    continue
                }
                if untilEmpty { break }
                try? await Task.sleep(for: .milliseconds(Int(poll * 1000)))
            }
        }
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
