import ArgumentParser
import Foundation
import MassRegistry
import MassStudies
import MassTraining

/// `mass select`: measures candidate versions of a text classifier on labelled texts and on this machine, picks
/// one by a rule, stores the report in the registry and promotes the winner (an alias, or a canary share).
struct SelectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "select",
        abstract: "Choose among candidate models by accuracy, latency, memory and size (docs/selection.md).",
        discussion: """
            CONFIG names the candidates (model folders or registry:NAME@VERSION), the labelled texts (a dataset \
            and split as mass train's: the test part by default), the reference for agreement, the floor, the \
            rule ("maximize": "accuracy", "where": ["p99_ms < 10", "size_mb < 30"]) and what the winner is \
            promoted to. Each candidate runs in a process of its own, one after another. Prints the table, \
            writes report.json, pareto.svg and pareto.png to the output folder and stores the report in the \
            registry (mass selections show NAME, GET /admin/v1/selections/NAME). Exits 1 when no candidate meets the rule \
            (nothing is promoted).
            """)

    @OptionGroup var registry: RegistryOptions

    @Argument(help: "The selection's JSON document.") var config: String

    @Option(
        name: .long, help: "The selection's name in the registry (default: the document's 'name', else its file name).")
    var name: String?

    @Option(
        name: .long, help: "Compute threads of each candidate's process (default: the document's, else every core).")
    var threads: Int?

    @Flag(name: .long, help: "Print the report as JSON instead of the table.") var json = false

    func run() async throws {
        let configURL = URL(fileURLWithPath: config)
        let document: Data
        do { document = try Data(contentsOf: configURL) } catch { throw CLIError("\(config): cannot be read") }
        let plan = try SelectionPlan.decode(document)
        try plan.validate()
        let name = name ?? plan.name ?? configURL.deletingPathExtension().lastPathComponent
        let threads = threads ?? plan.measure?.threads ?? ProcessInfo.processInfo.activeProcessorCount
        try await registry.with { registry in
            let store = SelectionStore(database: registry.database)
            if try await store.exists(name) {
                throw CLIError("a selection named '\(name)' exists: give another --name")
            }
            let (texts, gold) = try Self.examples(plan)
            StepPrinter.log("selection \(name): \(plan.candidates.count) candidates on \(texts.count) texts")
            let out = URL(fileURLWithPath: plan.output ?? "selections/\(name)")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            let textsFile = out.appendingPathComponent("texts.json")
            try JSONSerialization.data(withJSONObject: texts).write(to: textsFile)
            defer { try? FileManager.default.removeItem(at: textsFile) }

            var measured: [CandidateResult] = []
            var predicted: [String: [String]] = [:]
            for candidate in plan.candidates {
                var result = CandidateResult(name: candidate.name, model: candidate.model)
                do {
                    let folder: URL
                    if let (model, selector) = candidate.registered {
                        let version = try await registry.version(model, selector: selector)
                        result.version = version.version
                        folder = try await registry.folder(model, version.version)
                    } else {
                        folder = URL(fileURLWithPath: candidate.model)
                        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("config.json").path)
                        else { throw CLIError("\(candidate.model) is not a model folder (no config.json)") }
                    }
                    result.sizeMb = Double(try Self.bytes(folder)) / 1e6
                    StepPrinter.log("measuring \(candidate.name) (\(candidate.model))")
                    let m = try Self.measure(
                        folder: folder, textsFile: textsFile, log: out.appendingPathComponent("\(candidate.name).log"),
                        plan: plan, threads: threads)
                    guard Set(m.labels) == Set(gold.labels) else {
                        throw CLIError("its labels \(m.labels) are not the dataset's \(gold.labels)")
                    }
                    guard m.predictions.count == texts.count, m.predictions.allSatisfy(m.labels.indices.contains) else {
                        throw CLIError(
                            "its measuring process answered \(m.predictions.count) predictions for \(texts.count) texts"
                        )
                    }
                    let names = m.predictions.map { m.labels[$0] }
                    predicted[candidate.name] = names
                    result.accuracy = Double(zip(names, gold.names).filter { $0 == $1 }.count) / Double(texts.count)
                    (result.p50Ms, result.p99Ms) = (m.p50, m.p99)
                    let best = m.throughput.max { $0.value < $1.value }
                    (result.throughput, result.bestBatch) = (best?.value, best?.key)
                    result.memoryMb = m.peakMB
                } catch {
                    result.error = "\(error)"
                    StepPrinter.log("\(candidate.name): not measured: \(error)")
                }
                measured.append(result)
            }
            if let reference = predicted[plan.referenceName] {
                for i in measured.indices {
                    guard let names = predicted[measured[i].name] else { continue }
                    measured[i].agreement =
                        Double(zip(names, reference).filter { $0 == $1 }.count) / Double(reference.count)
                }
            }
            var report = try SelectionReport(name: name, plan: plan, examples: texts.count, measured: measured)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            func stored() throws -> JSONValue {
                try JSONValue.parse(String(decoding: try encoder.encode(report), as: UTF8.self))
            }
            // Stored before anything is promoted: a run that lost the name to another promotes nothing.
            try await store.save(
                name: name, config: try JSONValue.parse(String(decoding: document, as: UTF8.self)),
                report: try stored(), winner: report.winner, promoted: nil, actor: self.registry.who)
            var promoted: String?
            if let promote = plan.promote, let winner = report.candidates.first(where: { $0.name == report.winner }) {
                do {
                    promoted = try await Self.promote(winner, promote, registry: registry, actor: self.registry.who)
                    report.promotion = "promoted: \(promoted ?? "")"
                } catch {
                    report.promotion = "not promoted: \(error)"
                }
                try await store.recordPromotion(name, promoted: promoted, report: try stored())
            }
            try encoder.encode(report).write(to: out.appendingPathComponent("report.json"))
            try PlotFiles.write(svg: SelectionPlot.svg(report, plan: plan), to: out.appendingPathComponent("pareto"))
            print(json ? String(decoding: try encoder.encode(report), as: UTF8.self) : report.table())
            StepPrinter.log("wrote \(out.path)/report.json, pareto.svg, pareto.png")
            if report.winner == nil || (plan.promote != nil && promoted == nil) { throw ExitCode(1) }
        }
    }

    /// The texts and their label names: the plan's part of the dataset.
    static func examples(_ plan: SelectionPlan) throws -> ([String], (names: [String], labels: [String])) {
        let dataset: TextDataset
        do { dataset = try TextDataset(plan.dataset) } catch { throw CLIError("dataset: \(error)") }
        var indices = Array(dataset.examples.indices)
        if plan.part ?? "test" == "test" {
            indices =
                Sampling.split(
                    dataset.examples.count, validation: plan.split?.validation ?? 0.1, test: plan.split?.test ?? 0.2,
                    seed: plan.split?.seed ?? 42
                ).test
        }
        guard !indices.isEmpty else { throw CLIError("dataset: the \(plan.part ?? "test") part is empty") }
        let examples = indices.map { dataset.examples[$0] }
        return (examples.map(\.text), (examples.map { dataset.labels[$0.label] }, dataset.labels))
    }

    /// Bytes of the folder's files (a head's hard-linked encoder counts: it is what a server loads), links
    /// followed.
    static func bytes(_ folder: URL) throws -> Int {
        guard let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.fileSizeKey])
        else { throw CLIError("\(folder.path) cannot be read") }
        var total = 0
        for case let link as URL in files {
            // A registered version's folder links each file to the artifact store.
            let file = link.resolvingSymlinksInPath()
            let values = try file.resourceValues(forKeys: [.fileSizeKey, .isRegularFileKey])
            if values.isRegularFile == true { total += values.fileSize ?? 0 }
        }
        return total
    }

    struct Measured {
        var labels: [String]
        var predictions: [Int]
        var p50: Double
        var p99: Double
        var throughput: [Int: Double]
        var peakMB: Double
    }

    /// Runs `mass select-measure` on one folder and reads its answer.
    static func measure(folder: URL, textsFile: URL, log: URL, plan: SelectionPlan, threads: Int) throws -> Measured {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments =
            [
                "select-measure", "--model", folder.path, "--texts", textsFile.path, "--requests",
                String(plan.latencyRequests), "--threads", String(threads), "--batch-sizes",
            ] + plan.batchSizes.map(String.init)
        let stdout = Pipe()
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let logFile = try FileHandle(forWritingTo: log)
        defer { try? logFile.close() }
        (process.standardOutput, process.standardError) = (stdout, logFile)
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errors = (try? Data(contentsOf: log)) ?? Data()
        guard process.terminationStatus == 0,
            let answer = try? JSONSerialization.jsonObject(with: output) as? [String: Any],
            let labels = answer["labels"] as? [String], let predictions = answer["predictions"] as? [Int],
            let p50 = answer["p50_ms"] as? Double, let p99 = answer["p99_ms"] as? Double,
            let throughput = answer["throughput"] as? [String: Double], let peak = answer["peak_rss_mb"] as? Double
        else {
            let message = String(decoding: errors, as: UTF8.self).split(separator: "\n").last.map(String.init)
            throw CLIError(
                message?.replacingOccurrences(of: "Error: ", with: "")
                    ?? "its measuring process ended with status \(process.terminationStatus)")
        }
        return Measured(
            labels: labels, predictions: predictions, p50: p50, p99: p99,
            throughput: Dictionary(uniqueKeysWithValues: throughput.compactMap { k, v in Int(k).map { ($0, v) } }),
            peakMB: peak)
    }

    /// Moves the plan's alias to the winner, or routes the canary share to it; says what changed.
    static func promote(
        _ winner: CandidateResult, _ promote: SelectionPlan.Promote, registry: ModelRegistry, actor: String
    ) async throws -> String {
        guard let version = winner.version, winner.model.hasPrefix("registry:\(promote.model)@") else {
            throw CLIError("the winner '\(winner.name)' is not a version of '\(promote.model)'")
        }
        let why = "selection: \(winner.name)"
        if let alias = promote.alias {
            try await registry.setAlias(promote.model, alias, to: version, actor: actor, reason: why)
            return "\(promote.model)@\(version) → alias \(alias)"
        }
        let share = promote.canary ?? 0
        guard let current = try await registry.resolvedDeployments().first(where: { $0.model == promote.model })
        else { throw CLIError("no model '\(promote.model)' in the registry") }
        let others = current.routes.filter { $0.version != version }
        guard !others.isEmpty else { throw CLIError("\(promote.model) already serves version \(version) alone") }
        let total = others.map(\.weight).reduce(0, +)
        var routes = others.map {
            DeploymentSpec.Route(target: String($0.version), weight: $0.weight / total * (100 - share))
        }
        routes.append(.init(target: String(version), weight: share))
        try await registry.deploy(
            promote.model, DeploymentSpec(routes: routes, stickyHeader: current.stickyHeader), actor: actor, reason: why
        )
        return "\(promote.model)@\(version) → canary \(share.formatted(.number.grouping(.never))) %"
    }
}
