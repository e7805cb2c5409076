import Foundation
import MassRegistry
import MassRuntime
import MassStudies
import MassTraining
import MassTuning

/// Runs one claimed training job for `mass worker`: the configuration resolved on this machine, a `mass train`
/// child under nice with the worker's thread count, its log lines and progress sent with each heartbeat, cancel
/// and loss of the claim obeyed, and the trained model registered with its lineage when the job asks.
struct JobRunner: Sendable {
    let registry: ModelRegistry
    let queue: JobQueue
    let studies: StudyStore
    let worker: String
    let work: URL
    let threads: Int
    let nice: Int
    let heartbeat: Duration
    let stop: StopSignal

    /// How a child run ended.
    private enum Outcome {
        case exited(Int32)
        case signalled(Int32)
        case cancelled
        case lost
        case stopped
        /// A study's pruner stopped the trial after its report at this step.
        case pruned(Int)
    }

    /// A study's trial being run: where its reports go and whether they stop it.
    private struct TrialRun {
        let id: Int
        let number: Int
        let study: String
        let plan: StudyPlan
    }

    func run(_ job: Job) async {
        log("job \(job.id): attempt \(job.attempts) of \(job.maxAttempts)")
        do {
            try await execute(job)
        } catch {
            log("job \(job.id): \(error)")
            _ = try? await queue.finish(job.id, worker: worker, state: .failed, error: "\(error)")
        }
    }

    private func execute(_ job: Job) async throws {
        var trial: TrialRun?
        var folder = work.appendingPathComponent("job-\(job.id)")
        if job.kind == "trial" {
            guard let name = job.config["trial"]?["study"]?.string,
                case .int(let number)? = job.config["trial"]?["number"],
                case .int(let id)? = job.config["trial"]?["id"]
            else { throw TrainingError(.badConfig, "job \(job.id): a trial job without its study and number") }
            let plan = try StudyPlan(study: try await studies.study(name))
            trial = TrialRun(id: Int(id), number: Int(number), study: name, plan: plan)
            folder = work.appendingPathComponent("study-\(name)").appendingPathComponent("trial-\(number)")
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var config = try TrainingConfig.decode(Data(try job.config.text().utf8))
        try config.validate()
        // An encoder named in the registry runs from its verified folder; the lineage keeps its name and version.
        var parent: (model: String, version: Int)?
        if let named = config.encoder, named.hasPrefix("registry:") {
            let reference = String(named.dropFirst("registry:".count))
            let parts = reference.split(separator: "@", maxSplits: 1).map(String.init)
            let version = try await registry.version(parts[0], selector: parts.count > 1 ? parts[1] : "latest")
            config.encoder = try await registry.folder(parts[0], version.version).path
            parent = (parts[0], version.version)
        }
        let configURL = folder.appendingPathComponent("config.json")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(config).write(to: configURL)
        let out = folder.appendingPathComponent("run")

        let started = Date()
        let (outcome, lines, summary) = try await train(job, config: configURL, out: out, trial: trial)
        if let trial {
            return try await endTrial(
                job, trial, outcome: outcome, lines: lines, summary: summary, seconds: Date().timeIntervalSince(started)
            )
        }
        switch outcome {
        case .pruned:
            throw TrainingError(.badState, "job \(job.id) is no trial: nothing prunes it")
        case .exited(0):
            var result = try JSONValue.parse(summary.isEmpty ? "{}" : summary)
            if let register = config.register {
                let version = try await self.register(
                    job, config: config, register: register, out: out, parent: parent,
                    original: job.config["encoder"]?.string ?? config.encoder ?? "")
                if case .object(var fields) = result {
                    fields["registered"] = .object([
                        "model": .string(register.model), "version": .int(Int64(version)),
                        "alias": register.alias.map { .string($0) } ?? .null,
                    ])
                    result = .object(fields)
                }
            }
            _ = try await queue.finish(job.id, worker: worker, state: .succeeded, result: result, lines: lines)
            log("job \(job.id): succeeded")
        case .exited, .signalled, .cancelled, .stopped:
            try await endUnsuccessful(job, outcome, lines: lines, name: "job \(job.id)")
        case .lost:
            log("job \(job.id): no longer this worker's (taken back after missed heartbeats); its run stopped")
        }
    }

    /// Runs `mass train` on the job and follows it; answers how it ended, the log lines not yet sent, and what it
    /// printed on standard output (its JSON summary).
    private func train(_ job: Job, config: URL, out: URL, trial: TrialRun?) async throws -> (Outcome, [String], String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nice")
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        process.arguments = [
            "-n", String(nice), executable, "train", config.path, "--output", out.path, "--resume",
            "--threads", String(threads), "--exit-with-stdin",
        ]
        if let trial {
            // Shared by every study's trials on this work folder: the cache's key tells models and datasets apart.
            let cache = work.appendingPathComponent("vectors-cache")
            process.arguments! += ["--reports", "--vectors-cache", cache.path]
        }
        let input = Pipe()
        let errors = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardError = errors
        process.standardOutput = output
        let buffer = LineBuffer()
        let summary = LineBuffer()
        buffer.follow(errors.fileHandleForReading, echo: "job \(job.id): ")
        summary.follow(output.fileHandleForReading, echo: nil)
        try process.run()
        var outcome: Outcome?
        var lastBeat = ContinuousClock.now
        var reports = TrialReports()
        while process.isRunning {
            // A trial waits for the verdict on each epoch's report: answered as soon as it is written.
            await buffer.reported.wait(timeout: .milliseconds(200))
            if stop.isSet, outcome == nil {
                outcome = .stopped
                process.terminate()
            }
            if let trial, outcome == nil {
                // Each report waits for its verdict: the run goes on or exits as pruned.
                for (step, prune) in await verdicts(trial, buffer.takeReports(), &reports) {
                    input.fileHandleForWriting.write(Data((prune ? "prune\n" : "continue\n").utf8))
                    if prune { outcome = .pruned(step) }
                }
            }
            guard ContinuousClock.now - lastBeat >= heartbeat, outcome == nil else { continue }
            lastBeat = ContinuousClock.now
            if let trial { await record(trial, &reports) }
            let lines = buffer.take()
            do {
                let beat = try await queue.heartbeat(
                    job.id, worker: worker, progress: lines.last ?? buffer.lastLine, lines: lines)
                if beat == .cancelRequested {
                    outcome = .cancelled
                    process.terminate()
                }
            } catch let error as RegistryError where error.code == .conflict {
                outcome = .lost
                process.terminate()
            } catch {
                // The database is away: keep training, keep the lines for the next heartbeat.
                buffer.putBack(lines)
                log("job \(job.id): heartbeat failed: \(error)")
            }
        }
        process.waitUntilExit()
        buffer.finish()
        summary.finish()
        if let trial {
            // Reports written as the run ended, then every deferred one: the trial's record is whole before it ends.
            for line in buffer.takeReports() {
                if let (step, value, _) = Self.report(trial, line), let value { reports.deferred.append((step, value)) }
            }
            await record(trial, &reports)
        }
        let exit: Outcome =
            process.terminationReason == .uncaughtSignal
            ? .signalled(process.terminationStatus) : .exited(process.terminationStatus)
        var ended = outcome ?? exit
        // A pruned run exits with its own status once it has read the verdict; anything else is what it is.
        if case .pruned = ended, case .exited(let status) = exit, status != StepPrinter.prunedStatus {
            ended = exit
        }
        try? input.fileHandleForWriting.close()
        return (ended, buffer.take(), summary.take().joined(separator: "\n"))
    }

    /// Ends a job (a training run or a trial) that did not succeed: refused by mass train (its error line; running it
    /// again cannot help), killed by a signal or stopped with the worker (queued again while attempts remain), or
    /// cancelled.
    private func endUnsuccessful(_ job: Job, _ outcome: Outcome, lines: [String], name: String) async throws {
        switch outcome {
        case .exited(let code):
            let reason =
                lines.last { $0.hasPrefix("Error: ") }.map { String($0.dropFirst("Error: ".count)) }
                ?? lines.last { !$0.isEmpty } ?? "mass train exited with status \(code)"
            _ = try await queue.finish(job.id, worker: worker, state: .failed, error: reason, lines: lines)
            log("\(name): failed: \(reason)")
        case .signalled(let number):
            _ = try await queue.finish(
                job.id, worker: worker, state: .failed, error: "the training process was killed by signal \(number)",
                retry: true, lines: lines)
        case .cancelled:
            _ = try await queue.finish(job.id, worker: worker, state: .cancelled, lines: lines)
            log("\(name): cancelled")
        case .stopped:
            _ = try await queue.finish(
                job.id, worker: worker, state: .failed, error: "worker \(worker) stopped", retry: true, lines: lines)
            log("\(name): stopped with the worker; queued again")
        default:
            preconditionFailure("endUnsuccessful: \(outcome) is not an unsuccessful end")
        }
    }

    /// A trial's reports on their way to the study: those no verdict waits on are recorded in batches (with the
    /// heartbeat, before a judged one, and when the run ends), so an epoch between rungs costs no database round
    /// trip.
    private struct TrialReports {
        var deferred: [(step: Int, value: Double)] = []
        var lastStep = 0
    }

    /// A report line's step, the watched metric's value (nil when the line does not carry it), and whether it is
    /// the run's last planned epoch.
    private static func report(_ trial: TrialRun, _ line: String) -> (step: Int, value: Double?, last: Bool)? {
        guard let fields = try? JSONValue.parse(String(line.dropFirst("report ".count))),
            let step = fields["step"]?.number.map(Int.init)
        else { return nil }
        let last = fields["epochs"]?.number.map { step >= Int($0) } ?? false
        return (step, trial.plan.settings.prunedOn.flatMap { fields[$0.metric]?.number }, last)
    }

    /// Answers the pruner's verdict on each of a trial's new epoch reports (true: stop). A step the pruner cannot
    /// judge is answered at once and its report deferred; a judged one is recorded with the deferred ones and
    /// judged against the study's trials. A report the registry cannot take lets the trial go on.
    private func verdicts(_ trial: TrialRun, _ lines: [String], _ reports: inout TrialReports) async -> [(Int, Bool)] {
        var answers: [(Int, Bool)] = []
        for line in lines {
            guard let (step, value, last) = Self.report(trial, line) else { continue }
            guard let value else {
                answers.append((step, false))
                continue
            }
            let earlier = reports.lastStep
            reports.lastStep = max(reports.lastStep, step)
            guard trial.plan.judges(trial: trial.number, step: step, after: earlier) else {
                reports.deferred.append((step, value))
                answers.append((step, false))
                continue
            }
            // The last planned epoch ends the run anyway: recorded, never pruned (ASHA's top rung is the full run).
            await record(trial, &reports)
            do {
                let trials = try await studies.report(trial: trial.id, step: step, value: value)
                answers.append((step, !last && trial.plan.shouldPrune(trial: trial.id, step: step, trials: trials)))
            } catch {
                log("trial \(trial.study)#\(trial.number): report at step \(step) not recorded: \(error)")
                answers.append((step, false))
            }
        }
        return answers
    }

    /// Records a trial's deferred reports; kept for the next try when the registry cannot take them.
    private func record(_ trial: TrialRun, _ reports: inout TrialReports) async {
        guard !reports.deferred.isEmpty else { return }
        do {
            try await studies.record(trial: trial.id, reports: reports.deferred)
            reports.deferred = []
        } catch {
            log("trial \(trial.study)#\(trial.number): \(reports.deferred.count) reports not recorded yet: \(error)")
        }
    }

    /// Ends a trial's job: complete with its objective values, pruned, or failed as any job fails.
    private func endTrial(
        _ job: Job, _ trial: TrialRun, outcome: Outcome, lines: [String], summary: String, seconds: Double
    ) async throws {
        let name = "trial \(trial.study)#\(trial.number)"
        switch outcome {
        case .exited(0):
            let values: [Double]
            do {
                values = try trial.plan.objectiveValues(
                    summary: try JSONValue.parse(summary.isEmpty ? "{}" : summary), seconds: seconds)
            } catch {
                _ = try await queue.finish(job.id, worker: worker, state: .failed, error: "\(error)", lines: lines)
                log("\(name): failed: \(error)")
                return
            }
            try await studies.finish(trial: trial.id, state: "complete", values: values)
            _ = try await queue.finish(
                job.id, worker: worker, state: .succeeded,
                result: .object(["values": .array(values.map { .double($0) }), "seconds": .double(seconds)]),
                lines: lines)
            log("\(name): complete \(values)")
        case .pruned(let step):
            try await studies.finish(trial: trial.id, state: "pruned")
            _ = try await queue.finish(
                job.id, worker: worker, state: .succeeded,
                result: .object(["pruned_at": .int(Int64(step)), "seconds": .double(seconds)]),
                lines: lines + ["pruned after step \(step)"])
            log("\(name): pruned after step \(step)")
        case .exited, .signalled, .cancelled, .stopped:
            try await endUnsuccessful(job, outcome, lines: lines, name: name)
        case .lost:
            log("\(name): no longer this worker's; its run stopped")
        }
    }

    /// Registers the run's model as the next version of `register.model`: the model folder with the run's
    /// metrics, split, curves and configuration under `training/`, lineage in the version's fields and tags, the
    /// accuracies as metrics.
    private func register(
        _ job: Job, config: TrainingConfig, register: TrainingConfig.Register, out: URL,
        parent: (model: String, version: Int)?, original: String
    ) async throws -> Int {
        let stage = out.appendingPathComponent("registered")
        try? FileManager.default.removeItem(at: stage)
        try Checkpoint.copyFolder(out.appendingPathComponent("model"), to: stage, except: [])
        let training = stage.appendingPathComponent("training")
        try FileManager.default.createDirectory(at: training, withIntermediateDirectories: true)
        // The metrics a task reports: accuracy for classifiers, cosine to the teacher for distillation.
        guard
            let metrics = try JSONSerialization.jsonObject(
                with: Data(contentsOf: out.appendingPathComponent("metrics.json"))) as? [String: Any],
            let metric = metrics["metric"] as? String, let datasetHash = metrics["dataset_sha256"] as? String
        else { throw TrainingError(.badState, "\(out.path)/metrics.json: not the report mass train writes") }
        for file in ["metrics.json", "split.json", "loss.svg", "loss.png", "\(metric).svg", "\(metric).png"] {
            try FileManager.default.copyItem(
                at: out.appendingPathComponent(file), to: training.appendingPathComponent(file))
        }
        try FileManager.default.copyItem(
            at: out.deletingLastPathComponent().appendingPathComponent("config.json"),
            to: training.appendingPathComponent("config.json"))
        let settingsText = try config.settingsJSON()
        guard let servedTask = config.servedTask else {
            throw TrainingError(.badConfig, "register: task '\(config.task)' makes no model mass serve loads")
        }
        var tags = [
            "training.job": String(job.id), "training.task": config.task, "training.parent": original,
            "training.dataset": config.dataset.path, "training.settings": settingsText,
        ]
        if let parent { tags["training.parent_version"] = "\(parent.model):\(parent.version)" }
        let draft = try RegistryDrafts.draft(
            folder: stage, task: servedTask,
            source: VersionSource(kind: "training", uri: "job:\(job.id)"),
            parent: parent?.model == register.model ? parent?.version : nil,
            dataset: "sha256:\(datasetHash)", trainingRun: "job-\(job.id)",
            description: register.description, tags: tags)
        let actor = "job \(job.id) (\(job.submittedBy))"
        let version = try await registry.register(
            folder: stage, name: register.model, draft: draft, alias: register.alias, actor: actor)
        for key in ["test_\(metric)", "validation_\(metric)", "best_epoch"] {
            guard let value = (metrics[key] as? NSNumber)?.doubleValue else { continue }
            try await registry.recordMetric(
                register.model, version: version.version, key: key, value: value, actor: actor)
        }
        try? FileManager.default.removeItem(at: stage)
        // Read back as a server would load it: every file re-hashed, the folder laid out.
        let folder = try await registry.folder(register.model, version.version)
        log("job \(job.id): registered \(register.model) version \(version.version) (\(folder.path))")
        return version.version
    }

    private func log(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}

/// Lines read from a child's pipe on a thread of their own, taken in batches by the heartbeat.
final class LineBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    private var reports: [String] = []
    private var partial = Data()
    private(set) var lastLine: String?
    private var done = DispatchSemaphore(value: 0)
    /// Signalled on each `report` line and when the pipe closes.
    let reported = Wakeup()

    func follow(_ handle: FileHandle, echo prefix: String?) {
        Thread {
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                self.append(data, echo: prefix)
            }
            self.append(Data("\n".utf8), echo: prefix, flushOnly: true)
            self.done.signal()
            self.reported.signal()
        }.start()
    }

    private func append(_ data: Data, echo prefix: String?, flushOnly: Bool = false) {
        let arrived = lock.withLock { () -> Bool in
            if flushOnly && partial.isEmpty { return false }
            var arrived = false
            partial.append(data)
            while let newline = partial.firstIndex(of: 10) {
                let line = String(decoding: partial[partial.startIndex..<newline], as: UTF8.self)
                partial.removeSubrange(partial.startIndex...newline)
                // Progress lines end in carriage returns on a terminal; a log keeps their last state.
                let text = line.split(separator: "\r").last.map(String.init) ?? ""
                lines.append(text)
                if text.hasPrefix("report {") {
                    reports.append(text)
                    arrived = true
                } else {
                    lastLine = text
                }
                if let prefix { FileHandle.standardError.write(Data((prefix + text + "\n").utf8)) }
            }
            return arrived
        }
        if arrived { reported.signal() }
    }

    /// Waits until the pipe is closed.
    func finish() { done.wait() }

    func take() -> [String] {
        lock.withLock {
            defer { lines = [] }
            return lines
        }
    }

    /// The `report` lines seen since the last call.
    func takeReports() -> [String] {
        lock.withLock {
            defer { reports = [] }
            return reports
        }
    }

    func putBack(_ earlier: [String]) { lock.withLock { lines = earlier + lines } }
}
