import Foundation
public import MassRegistry
public import MassTuning

/// What a study does next and whether a trial stops: the sampler and the pruner over the trials the registry keeps.
extension StudyPlan {
    /// The study's plan from its stored document.
    public init(study: Study) throws(TuningError) { try self.init(document: study.config) }

    /// Given the study and its trials (under the study's lock), the next step: a new trial while the budget lasts
    /// and fewer than `parallel` are in flight; the study's end once the budget is spent (or too many trials failed
    /// with none complete) and nothing is in flight.
    public func decide(_ study: Study, _ trials: [StudyTrial], now: Date = Date()) throws -> StudyStore.Proposal {
        let inFlight = trials.filter { $0.state == "queued" || $0.state == "running" }.count
        let failed = trials.filter { $0.state == "failed" }
        let complete = trials.filter { $0.state == "complete" }.count
        if failed.count >= settings.failureLimit && complete == 0 {
            guard inFlight == 0 else { return .wait }
            let last = failed.last?.error.map { ": the last one: \($0)" } ?? ""
            return .end(.failed, "\(failed.count) trials failed and none completed\(last)")
        }
        let elapsed = now.timeIntervalSince1970 * 1000 - Double(study.createdAt)
        let records = trials.map(record)
        let search = records.filter { !settings.isRerun($0) }
        // Each finished search trial's time in seconds, from queued to finished, by trial number.
        var seconds: [Int: Double] = [:]
        for (trial, record) in zip(trials, records) where !settings.isRerun(record) {
            if let finished = trial.finishedAt { seconds[trial.number] = Double(finished - trial.createdAt) / 1000 }
        }
        let leaders = settings.confirm.map { settings.ranked(records).prefix($0.count) } ?? []
        let outOfTime =
            search.count < records.count
            || searchOutOfTime(
                elapsed: elapsed / 1000, finished: Array(seconds.values),
                leaders: leaders.compactMap { seconds[$0.number] })
        let outOfTrials = settings.budget.trials.map { search.count >= $0 } ?? false
        if outOfTime || outOfTrials {
            if let rerun = nextRerun(records, elapsed: elapsed / 1000, seconds: seconds) {
                guard let params = rerun, inFlight < parallel else { return .wait }
                let config = try Self.apply(params, to: base)
                return .trial(params: .object(params.mapValues(Self.json)), config: config)
            }
            guard inFlight == 0 else { return .wait }
            let pruned = search.filter { $0.state == .pruned }.count
            let complete = search.filter { $0.state == .complete }.count
            let reruns = records.count - search.count
            return .end(
                .finished,
                "\(search.count) trials: \(complete) complete, \(pruned) pruned, \(search.count - complete - pruned) failed"
                    + (outOfTime && !outOfTrials ? " (out of time)" : "")
                    + (reruns > 0
                        ? "; the best \(settings.confirmed(records).count) confirmed by \(reruns) re-runs" : ""))
        }
        guard inFlight < parallel else { return .wait }
        let number = (trials.map(\.number).max() ?? -1) + 1
        let params = settings.makeSampler().sample(
            settings.space, directions: settings.directions, trials: trials.map(record), number: number)
        let config = try Self.apply(params, to: base)
        return .trial(params: .object(params.mapValues(Self.json)), config: config)
    }

    /// With a `seconds` budget, whether the search starts no more trials `elapsed` seconds into the study, given
    /// the times of its finished trials and of the complete trials the confirmation would re-run now (its `top`):
    /// a trial starts only when it is expected to end within the budget (the finished trials' mean time; pruned
    /// ones count, as a new trial may be pruned too), leaving the re-runs their expected time: each leader's own
    /// time `repeats` times, `parallel` at a time (the leaders are often the slowest configurations, so a mean
    /// over all trials would fall short), but never more time than the search has had so far: slow first leaders
    /// would otherwise stop a search that has barely started (the re-runs that do not fit are left out). Before any
    /// trial finishes, trials start until the budget is spent.
    public func searchOutOfTime(elapsed: Double, finished: [Double], leaders: [Double]) -> Bool {
        guard let budget = settings.budget.seconds else { return false }
        let next = finished.isEmpty ? 0 : finished.reduce(0, +) / Double(finished.count)
        let reruns = settings.confirm.map { Double($0.runs) * leaders.reduce(0, +) / Double(parallel) } ?? 0
        return elapsed + next + min(reruns, elapsed) >= budget
    }

    /// With `confirm`, once the search is over: the parameters of the next re-run to start (the best
    /// configurations' first re-runs, best first, then their second ones, ...), nil inside when none can start now;
    /// nil when nothing is left to re-run. Without a `seconds` budget the search's trials in flight decide the
    /// best, so the re-runs wait for them. With one, no slot waits: the current best re-run at once, and a re-run
    /// starts only when its configuration's own time (`seconds`, by search trial number) says it ends within the
    /// budget, `elapsed` seconds into the study.
    public func nextRerun(_ records: [TrialRecord], elapsed: Double = 0, seconds: [Int: Double] = [:])
        -> [String: TuningValue]??
    {
        guard let confirm = settings.confirm, let baseSeed else { return nil }
        let searching = records.contains {
            !settings.isRerun($0) && ($0.state == .queued || $0.state == .running)
        }
        let budget = settings.budget.seconds
        if searching && budget == nil { return .some(nil) }
        let reruns = records.filter(settings.isRerun)
        let leaders = settings.ranked(records).prefix(confirm.count)
        for r in 1...confirm.runs {
            let seed = TuningValue.int(baseSeed + r)
            for trial in leaders {
                let own = settings.configuration(trial)
                if reruns.contains(where: { $0.params[confirm.seed] == seed && settings.configuration($0) == own }) {
                    continue
                }
                if let budget, elapsed + (seconds[trial.number] ?? 0) > budget { continue }
                return .some(own.merging([confirm.seed: seed]) { $1 })
            }
        }
        return searching ? .some(nil) : nil
    }

    /// Whether trial `id`, which just reported `step`, stops, given the study's trials after its report (a
    /// confirmation's re-run never does).
    public func shouldPrune(trial id: Int, step: Int, trials: [StudyTrial]) -> Bool {
        guard let watched = settings.prunedOn, let trial = trials.first(where: { $0.id == id }) else { return false }
        guard !settings.isRerun(record(trial)) else { return false }
        let records = trials.map(record).filter { !settings.isRerun($0) }
        let others = records.filter { $0.number != trial.number }
        return settings.makePruner(studyName: name).shouldPrune(
            record(trial), step: step, direction: watched.direction, others: others)
    }

    /// Whether trial `number`'s report at `step` (its previous one at `earlier`, 0 for none) can stop it; false
    /// also when nothing prunes the study.
    public func judges(trial number: Int, step: Int, after earlier: Int) -> Bool {
        guard settings.prunedOn != nil else { return false }
        return settings.makePruner(studyName: name).judges(trial: number, step: step, after: earlier)
    }

    /// The objective values of a finished run from its summary (and its wall time as "seconds"); throws naming a
    /// metric the run does not report.
    public func objectiveValues(summary: JSONValue, seconds: Double) throws(TuningError) -> [Double] {
        try settings.recordedMetrics.enumerated().map { index, metric throws(TuningError) -> Double in
            if metric == "seconds" { return seconds }
            if let value = summary[metric]?.number { return value }
            var keys: [String] = []
            if case .object(let fields) = summary { keys = fields.filter { $0.value.number != nil }.keys.sorted() }
            let whose = index < settings.allObjectives.count ? "the objective's" : "the confirmation's"
            throw TuningError(
                "\(whose) metric '\(metric)' is not in the run's summary (it has: \((keys + ["seconds"]).joined(separator: ", ")))"
            )
        }
    }
}
