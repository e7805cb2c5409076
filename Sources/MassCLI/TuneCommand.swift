import ArgumentParser
import Foundation
import MassRegistry
import MassStudies
import MassTuning

/// `mass tune`: starts a study in the registry and runs its trials here until its budget is spent; `mass worker`
/// processes anywhere that reach the same registry run its trials too.
struct TuneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Tune a training configuration: a study whose trials run as jobs (docs/tuning.md).",
        discussion: """
            CONFIG names the study, the training configuration its trials start from ("base"), the search space \
            (dotted paths into base), the objective(s), the sampler (tpe, random), the pruner (asha, median, none) \
            and the budget (trials, seconds). The study and every trial (parameters, per-epoch reports, result) \
            live in the registry's database: mass studies show NAME follows it from anywhere. Here, "parallel" \
            trials run at once, each with its share of --threads; mass worker processes (several machines with \
            --registry postgres://...) take trials from the same study. Interrupted, the study stays: \
            mass tune --attach NAME (or any worker) carries it on.
            """)

    @OptionGroup var registry: RegistryOptions

    @Argument(help: "The study's JSON configuration (omit with --attach).")
    var config: String?

    @Option(name: .long, help: "The study's name (default: the configuration's 'name').")
    var name: String?

    @Option(name: .long, help: "Run the trials of this existing study instead of starting one.")
    var attach: String?

    @Flag(name: .long, help: "Create the study and return: workers run its trials.")
    var detach = false

    @Option(name: .long, help: "Compute threads shared by the trials running here (default: every core).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "The trials' OS priority (nice, 0-19).")
    var nice = 0

    @Option(name: .long, help: "Folder of the trials' runs (default <repository>.mass/jobs, as mass worker's).")
    var work: String?

    func validate() throws {
        guard (config == nil) != (attach == nil) else { throw ValidationError("give CONFIG or --attach NAME") }
        guard (0...19).contains(nice) else { throw ValidationError("--nice must be between 0 and 19") }
        guard threads > 0 else { throw ValidationError("--threads must be positive") }
    }

    func run() async throws {
        try Mass.checkCPU()
        var plan: StudyPlan?
        if let config {
            let text: String
            do { text = try String(contentsOf: URL(fileURLWithPath: config), encoding: .utf8) } catch {
                throw ValidationError("\(config): cannot read (\(error.localizedDescription))")
            }
            do {
                guard let document = try? JSONValue.parse(text) else { throw TuningError("not valid JSON") }
                plan = try StudyPlan(document: document, name: name)
            } catch let error as TuningError { throw ValidationError("\(config): \(error.message)") }
        }
        let folder = URL(fileURLWithPath: work ?? registry.home.appendingPathComponent("jobs").path)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let stop = StopSignal()
        try await registry.with { models in
            let store = StudyStore(database: models.database)
            let study: Study
            if let plan {
                study = try await store.create(name: plan.name, config: plan.document, actor: registry.who)
                log("study \(study.name): created in \(models.database.location)")
            } else {
                study = try await store.study(attach!)
                plan = try StudyPlan(study: study)
            }
            if detach {
                print(ModelsCommand.json(study))
                return
            }
            let slots = plan!.parallel
            let perTrial = max(1, threads / slots)
            let worker = "\(ProcessInfo.processInfo.hostName)-\(getpid())"
            log("study \(study.name): \(slots) trials at a time here, \(perTrial) threads each")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for slot in 0..<slots {
                    let runner = JobRunner(
                        registry: models, queue: JobQueue(database: models.database), studies: store,
                        worker: "\(worker)-\(slot)", work: folder, threads: perTrial, nice: nice,
                        heartbeat: .seconds(5), stop: stop)
                    group.addTask {
                        try await WorkerLoop(
                            runner: runner, staleAfter: 60, poll: 0.05, untilEmpty: true, study: study.name
                        )
                        .run()
                    }
                }
                try await group.waitForAll()
            }
            let ended = try await store.study(study.name)
            let trials = try await store.trials(study.name)
            StudiesShow.printTable(ended, trials, plan: plan!)
            print(ModelsCommand.json(StudySummary(ended, trials, plan: plan!)))
            if ended.state == .failed { throw ExitCode(1) }
        }
    }

    private func log(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}
