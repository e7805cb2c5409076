import ArgumentParser
import Foundation
import MassModels
import MassRegistry
import MassRuntime

/// `mass services`: service-type models' calibration data and fits.
struct ServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "services",
        abstract: "Calibrate local models against service-type models (docs/services.md).",
        subcommands: [ServicesRecord.self, ServicesPairs.self, ServicesCalibrate.self, ServicesReport.self])
}

/// Sends a file of inputs to a running server, which answers each with the provider and with the candidate and
/// writes the pairs to the registry.
struct ServicesRecord: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract:
            "Record calibration pairs: each line of a file (or audio file) answered by the service and a local candidate."
    )

    @Argument(help: "The service-type model (as the server names it).") var name: String
    @Option(name: .long, help: "The local model that answers too (default: the model's remote.record.candidate).")
    var candidate: String?
    @Option(name: .long, help: "Inputs, one per line (blank lines are skipped).") var inputs: String?
    @Option(
        name: .long, parsing: .upToNextOption,
        help: "Audio files (WAV, FLAC, OGG, MP3) for a speech service, instead of --inputs.")
    var audio: [String] = []
    @Option(name: .long, help: "The server, http://HOST:PORT.") var url = "http://127.0.0.1:8080"
    @Option(name: .long, help: "An admin API key (or $MASS_API_KEY).") var key: String?
    @Option(name: .long, help: "Inputs (or audio files) per request.") var batch = 32

    func run() async throws {
        guard (1...256).contains(batch) else { throw ValidationError("--batch must be 1-256") }
        guard (inputs == nil) != audio.isEmpty else { throw ValidationError("give either --inputs or --audio") }
        let field: String
        let items: [String]
        if let inputs {
            guard let text = try? String(contentsOfFile: inputs, encoding: .utf8) else {
                throw CLIError("cannot read \(inputs) as UTF-8 text")
            }
            items = text.split(whereSeparator: \.isNewline).map(String.init).filter {
                !$0.trimmingCharacters(in: .whitespaces).isEmpty
            }
            guard !items.isEmpty else { throw CLIError("\(inputs) has no inputs") }
            field = "inputs"
        } else {
            items = try audio.map { path in
                guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else {
                    throw CLIError("cannot read \(path) (or it is empty)")
                }
                return data.base64EncodedString()
            }
            field = "audio"
        }
        let (host, port) = try HTTPConnection.endpoint(url)
        let connection = HTTPConnection(host: host, port: port)
        let apiKey = key ?? ProcessInfo.processInfo.environment["MASS_API_KEY"]
        var recorded = 0
        for start in stride(from: 0, to: items.count, by: batch) {
            var body: [String: Any] = [field: Array(items[start..<min(items.count, start + batch)])]
            if let candidate { body["candidate"] = candidate }
            let response = try connection.post(
                "/admin/v1/services/\(name)/pairs", body: Array(try JSONSerialization.data(withJSONObject: body)),
                headers: apiKey.map { ["Authorization: Bearer \($0)"] } ?? [])
            guard response.status == 200 else {
                throw CLIError(
                    "the server answered \(response.status) after \(recorded) pairs: \(String(decoding: response.body, as: UTF8.self))"
                )
            }
            let answer = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
            recorded += answer?["recorded"] as? Int ?? 0
        }
        print("recorded \(recorded) pairs for '\(name)'")
    }
}

/// The pairs recorded so far, per service and candidate (read from the registry).
struct ServicesPairs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pairs", abstract: "Count the calibration pairs recorded per service and candidate.")

    @OptionGroup var options: RegistryOptions
    @Flag(name: .long, help: "Delete the pairs of --service (and --candidate) instead.") var delete = false
    @Option(name: .long) var service: String?
    @Option(name: .long) var candidate: String?

    func run() async throws {
        try await options.with { registry in
            let store = ServicePairStore(database: registry.database)
            if delete {
                guard let service else { throw ValidationError("--delete needs --service") }
                print("deleted \(try await store.delete(service: service, candidate: candidate)) pairs")
                return
            }
            print("service\tcandidate\tpairs")
            for row in try await store.counts()
            where (service == nil || row.service == service) && (candidate == nil || row.candidate == candidate) {
                print("\(row.service)\t\(row.candidate)\t\(row.pairs)")
            }
        }
    }
}

/// Fits the calibration maps on the recorded pairs, prints the held-out report, and registers the calibrated
/// model (the candidate's files plus the adapter) as a registry version with its lineage.
struct ServicesCalibrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Fit what makes a candidate agree with a service; report held-out agreement; register it.",
        discussion: """
            Embedding services: Procrustes and affine maps; the report gives mean cosine to the service's vectors \
            and recall@10 agreement in the service's index, before (the candidate as it is), after each map, and \
            for a full re-embed with the candidate. Classification services: temperature and vector scaling; the \
            report gives top-label agreement, expected calibration error against the service's labels and \
            cross-entropy to its probabilities, before and after. Speech services: nothing is fitted; the report \
            gives the word error rate of the candidate's transcripts against the service's over every pair. With \
            --register NAME the candidate plus the chosen adapter (none for speech) becomes the next version of \
            NAME (source 'calibration', dataset the pairs, the figures as its metrics), ready to deploy, canary or \
            shadow against the service.
            """)

    @OptionGroup var options: RegistryOptions
    @Argument(help: "The service-type model.") var name: String
    @Option(name: .long, help: "The local model the pairs were recorded with.") var candidate: String
    @Option(name: .long, help: "Share of the pairs held out for the report.") var heldOut = 0.2
    @Option(name: .long, help: "Register the calibrated model as the next version of this registry model.")
    var register: String?
    @Option(
        name: .long,
        help:
            "The map to register: procrustes or affine (embeddings: default the better held-out recall@10); temperature or vector_scaling (classification: default the lower held-out ECE)."
    )
    var adapter: String?
    @Option(name: .long, help: "Point this alias at the registered version.") var alias: String?

    func run() async throws {
        guard heldOut > 0, heldOut < 1 else { throw ValidationError("--held-out must be between 0 and 1") }
        try await options.with { registry in
            let all = try await ServicePairStore(database: registry.database).pairs(service: name, candidate: candidate)
            guard let kind = all.last?.kind else {
                throw CLIError("no pairs recorded for service '\(name)' and candidate '\(candidate)'")
            }
            let pairs = all.filter { $0.kind == kind && $0.labels == all.last!.labels }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            var metrics: [String: Double] = ["calibration_pairs": Double(pairs.count)]
            let file: Data?
            let chosenKind: String
            let task: String
            if kind == "transcript" {
                // Nothing to fit: the report is the word error rate of the candidate against the service, and a
                // registered version is the candidate as it is, with its lineage and these figures.
                guard let agreement = TranscriptAgreement(pairs) else { return }
                print(String(decoding: try encoder.encode(agreement), as: UTF8.self))
                guard register != nil else { return }
                guard adapter == nil else { throw ValidationError("a speech service has no --adapter to choose") }
                file = nil
                chosenKind = "no"
                task = "speech-recognition"
                metrics["word_error_rate"] = agreement.wordErrorRate
                metrics["same_transcript"] = agreement.same
            } else if kind == "logits" {
                let (report, temperature, vector) = try ClassificationCalibration.calibrate(
                    local: pairs.map(\.candidateOutput), service: pairs.map(\.serviceOutput),
                    keys: pairs.map(\.input), heldOut: heldOut)
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
                guard register != nil else { return }
                if let adapter, !["temperature", "vector_scaling"].contains(adapter) {
                    throw ValidationError("--adapter for a classification service is temperature or vector_scaling")
                }
                let useVector =
                    adapter == "vector_scaling" || (adapter == nil && report.vectorScaling.ece < report.temperature.ece)
                let chosen = useVector ? vector : temperature
                let evaluation = useVector ? report.vectorScaling : report.temperature
                let folder = try candidateFolder()
                file = chosen.reordered(from: pairs.last!.labels, to: try Self.labels(of: folder.files)).encoded()
                chosenKind = chosen.kind
                task = "text-classification"
                metrics["held_out_pairs"] = Double(report.heldOutPairs)
                metrics["agreement"] = evaluation.agreement
                metrics["ece"] = evaluation.ece
                metrics["agreement_before"] = report.before.agreement
                metrics["ece_before"] = report.before.ece
                metrics["temperature"] = report.temperatureValue
            } else {
                let (report, procrustes, affine) = try EmbeddingCalibration.calibrate(
                    local: pairs.map(\.candidateOutput), service: pairs.map(\.serviceOutput),
                    keys: pairs.map(\.input), heldOut: heldOut)
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
                guard register != nil else { return }
                if let adapter, !["procrustes", "affine"].contains(adapter) {
                    throw ValidationError("--adapter for an embedding service is procrustes or affine")
                }
                let useAffine =
                    adapter == "affine"
                    || (adapter == nil && (report.affine.recallAt10 ?? 0) > (report.procrustes.recallAt10 ?? 0))
                let chosen = useAffine ? affine : procrustes
                let evaluation = useAffine ? report.affine : report.procrustes
                file = chosen.encoded()
                chosenKind = chosen.kind
                task = "text-embedding"
                metrics["held_out_pairs"] = Double(report.heldOutPairs)
                metrics["reembed_recall_at_10"] = report.reembedRecallAt10
                metrics["cosine_to_service"] = evaluation.meanCosine
                metrics["recall_at_10"] = evaluation.recallAt10
                metrics["cosine_to_service_before"] = report.before.meanCosine
                metrics["recall_at_10_before"] = report.before.recallAt10
            }
            guard let target = register else { return }
            let folder = try buildFolder(adapter: file, task: task)
            defer { try? FileManager.default.removeItem(at: folder) }
            // The architecture and format as for any folder (the candidate's files are unchanged).
            let draft = try RegistryDrafts.draft(
                folder: folder, task: task, source: VersionSource(kind: "calibration", uri: "service:\(name)"),
                dataset: "pairs:\(name)/\(candidate):\(pairs.count)",
                description: "\(candidate) with \(file == nil ? "no" : "a \(chosenKind)") adapter to \(name)",
                tags: ["service": name, "candidate": candidate, "adapter": chosenKind])
            let version = try await registry.register(
                folder: folder, name: target, draft: draft, alias: alias, actor: options.who)
            for (key, value) in metrics.sorted(by: { $0.key < $1.key }) {
                try await registry.recordMetric(
                    target, version: version.version, key: key, value: value, actor: options.who)
            }
            FileHandle.standardError.write(
                Data("registered \(target) version \(version.version) (\(chosenKind) adapter)\n".utf8))
        }
    }

    /// A classifier's labels in id order: a trained head's (`head.safetensors`), else config.json's `id2label`.
    static func labels(of folder: URL) throws -> [String] {
        let head = folder.appendingPathComponent("head.safetensors")
        if FileManager.default.fileExists(atPath: head.path) { return try TrainedHead.labels(contentsOf: head) }
        guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent("config.json").path),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let map = json["id2label"] as? [String: String]
        else { throw CLIError("\(folder.path)/config.json has no id2label") }
        return map.compactMap { key, label in Int(key).map { ($0, label) } }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The candidate's version folder in the repository, and its model's mass.json.
    func candidateFolder() throws -> (files: URL, config: [String: Any]) {
        let repository = ModelRepository(
            root: URL(fileURLWithPath: options.repository ?? options.environment["MASS_REPOSITORY"] ?? "models"))
        guard let entry = try? repository.entry(candidate), let version = entry.servedVersions.last else {
            throw CLIError("candidate '\(candidate)' is not a model of the repository \(repository.root.path)")
        }
        var config: [String: Any] = [:]
        if let data = FileManager.default.contents(atPath: entry.directory.appendingPathComponent("mass.json").path),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            config = json
        }
        guard config["remote"] == nil else { throw CLIError("candidate '\(candidate)' is itself a service-type model") }
        return (entry.versionDirectory(version), config)
    }

    /// The candidate's files plus the adapter (if any) and a mass.json that applies it, in a temporary folder.
    func buildFolder(adapter: Data?, task: String) throws -> URL {
        let (source, base) = try candidateFolder()
        var config = base
        config["task"] = task
        config["adapter"] = adapter == nil ? nil : LinearAdapter.fileName
        config.removeValue(forKey: "version_policy")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mass-calibrated-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for item in try FileManager.default.contentsOfDirectory(atPath: source.path)
        where item != "mass.json" && item != LinearAdapter.fileName {
            try FileManager.default.copyItem(
                at: source.appendingPathComponent(item).resolvingSymlinksInPath(),
                to: folder.appendingPathComponent(item))
        }
        try adapter?.write(to: folder.appendingPathComponent(LinearAdapter.fileName))
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(
            to: folder.appendingPathComponent("mass.json"))
        return folder
    }
}

/// A service and its candidates side by side, from a running server (`GET /admin/v1/services/NAME/report`).
struct ServicesReport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Show a service's requests, failures, units and latency beside its candidates' agreement.")

    @Argument(help: "The service-type model.") var name: String
    @Option(name: .long, help: "The server, http://HOST:PORT.") var url = "http://127.0.0.1:8080"
    @Option(name: .long, help: "An admin API key (or $MASS_API_KEY).") var key: String?
    @Flag(name: .long, help: "Print the report as JSON.") var json = false

    func run() async throws {
        let (host, port) = try HTTPConnection.endpoint(url)
        let apiKey = key ?? ProcessInfo.processInfo.environment["MASS_API_KEY"]
        let response = try HTTPConnection(host: host, port: port).get(
            "/admin/v1/services/\(name)/report", headers: apiKey.map { ["Authorization: Bearer \($0)"] } ?? [])
        guard response.status == 200 else {
            throw CLIError("the server answered \(response.status): \(String(decoding: response.body, as: UTF8.self))")
        }
        if json {
            print(String(decoding: response.body, as: UTF8.self))
            return
        }
        let report = try JSONDecoder().decode(MassRuntime.ServiceReport.self, from: Data(response.body))
        let s = report.statistics
        func ms(_ p: Percentiles?) -> String {
            p.map { String(format: "p50 %.1f  p95 %.1f  p99 %.1f ms", $0.p50, $0.p95, $0.p99) } ?? "-"
        }
        func share(_ n: Int) -> String {
            s.requests == 0 ? "-" : String(format: "%.2f %%", 100 * Double(n) / Double(s.requests))
        }
        print("service \(report.service): \(s.requests) requests since start")
        print(
            "  provider failures \(s.providerFailures) (\(share(s.providerFailures))), answered by a fallback \(s.fallbacks), failed \(s.failures) (\(share(s.failures)))"
        )
        print("  latency \(ms(s.latency))")
        print(
            "  units billed: "
                + (s.units.isEmpty
                    ? "-" : s.units.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")))
        for c in report.candidates {
            print("candidate \(c.name): \(c.pairs) pairs")
            print(
                "  agreement: mean cosine \(c.meanCosine.map { String(format: "%.4f", $0) } ?? "-"), recall@10 (re-embed) \(c.recallAt10.map { String(format: "%.3f", $0) } ?? "-")"
            )
            if let wer = c.wordErrorRate {
                print(
                    String(
                        format: "  transcripts: word error rate %.4f against the service, %.1f %% the same", wer,
                        100 * (c.sameTranscript ?? 0)))
            }
            print("  per input, same inputs: service \(ms(c.serviceLatency)); candidate \(ms(c.candidateLatency))")
        }
    }
}
