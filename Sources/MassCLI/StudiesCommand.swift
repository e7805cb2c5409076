import ArgumentParser
import Foundation
import MassRegistry
import MassStudies
import MassTuning

/// `mass studies`: the tuning studies in the registry's database.
struct StudiesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "studies", abstract: "Tuning studies (mass tune): list, show, stop.",
        subcommands: [StudiesList.self, StudiesShow.self, StudiesStop.self])
}

struct StudiesList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Studies, newest first: name, state, trials by state, best value(s).")

    @OptionGroup var registry: RegistryOptions

    @Flag(name: .long, help: "JSON instead of a table.")
    var json = false

    func run() async throws {
        try await registry.with { models in
            let store = StudyStore(database: models.database)
            var summaries: [StudySummary] = []
            for study in try await store.studies() {
                let trials = try await store.trials(study.name)
                guard let plan = try? StudyPlan(study: study) else { continue }
                summaries.append(StudySummary(study, trials, plan: plan))
            }
            if json {
                print(ModelsCommand.json(summaries))
                return
            }
            print(["name", "state", "trials", "best"].joined(separator: "\t"))
            for s in summaries {
                let counts = s.counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
                let best = s.best.map { b in b.values.map { String(format: "%.4g", $0) }.joined(separator: "/") }
                print([s.name, s.state, counts, best.joined(separator: " ")].joined(separator: "\t"))
            }
        }
    }
}

struct StudiesShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "A study and every trial: parameters, state, reports, values.")

    @OptionGroup var registry: RegistryOptions

    @Argument(help: "The study's name.")
    var name: String

    @Flag(name: .long, help: "JSON instead of a table.")
    var json = false

    func run() async throws {
        try await registry.with { models in
            let store = StudyStore(database: models.database)
            let study = try await store.study(name)
            let trials = try await store.trials(name)
            let plan = try StudyPlan(study: study)
            if json {
                print(
                    ModelsCommand.json(
                        StudyDetail(study: study, summary: StudySummary(study, trials, plan: plan), trials: trials)))
                return
            }
            Self.printTable(study, trials, plan: plan, to: .standardOutput)
        }
    }

    /// The study's state line and a row per trial: number, state, last step, values, parameters.
    static func printTable(
        _ study: Study, _ trials: [StudyTrial], plan: StudyPlan, to handle: FileHandle = .standardError
    ) {
        var lines = ["study \(study.name): \(study.state.rawValue)" + (study.reason.map { " (\($0))" } ?? "")]
        let metrics = plan.settings.allObjectives.map { "\($0.metric) (\($0.direction.rawValue))" }.joined(
            separator: ", ")
        lines.append("objective: \(metrics)")
        if let metric = plan.settings.confirm?.metric {
            lines.append("confirmed configurations ranked by \(metric) (each trial's last value)")
        }
        let records = trials.map(plan.record)
        let best = Set(plan.settings.best(records).map(\.number))
        lines.append(["trial", "state", "steps", "values", "params"].joined(separator: "\t"))
        for t in trials {
            let values = t.values.map { $0.map { String(format: "%.4f", $0) }.joined(separator: "/") } ?? "-"
            let params = (try? t.params.text()) ?? "?"
            let steps = t.reports.keys.max().map(String.init) ?? "-"
            let state = t.state + (best.contains(t.number) ? " *" : "") + (t.error.map { ": \($0)" } ?? "")
            lines.append([String(t.number), state, steps, values, params].joined(separator: "\t"))
        }
        for (trial, runs) in plan.settings.confirmed(records) {
            let mean = String(format: "%.4f", trial.values?.first ?? .nan)
            let own = plan.settings.confirm?.metric.flatMap { name in
                trial.confirmValue.map { " (\(name) " + String(format: "%.4f", $0) + ")" }
            }
            lines.append(
                "confirmed: trial \(trial.number)'s configuration, mean \(mean) over \(runs) runs" + (own ?? "")
                    + (best.contains(trial.number) ? " *" : ""))
        }
        handle.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}

struct StudiesStop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop a running study: no new trials; running ones are cancelled.")

    @OptionGroup var registry: RegistryOptions

    @Argument(help: "The study's name.")
    var name: String

    func run() async throws {
        try await registry.with { models in
            print(ModelsCommand.json(try await StudyStore(database: models.database).stop(name, actor: registry.who)))
        }
    }
}
