import ArgumentParser
import Foundation
import MassRegistry
import MassRuntime

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "How a registered model is served: weighted routes, sticky routing, a shadow.",
        discussion: """
            Changes go to the registry; every server on it applies them within a second (at once on the server \
            whose admin API made them). Without a deployment a model serves its production alias, or its latest \
            version.
            """,
        subcommands: [DeploySet.self, DeployShow.self, DeployDelete.self, DeployReport.self])
}

struct DeploySet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Set a model's routes, e.g. --route production=90 --route 2=10.")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "Model name.") var name: String
    @Option(name: .long, help: "TARGET=WEIGHT: a version number or alias and its share (repeatable).")
    var route: [String]
    @Option(name: .long, help: "Route by this request header's value, so one key always sees one version.")
    var stickyHeader: String?
    @Option(name: .long, help: "TARGET=SAMPLE: mirror this fraction (0-1) of requests to a shadow version.")
    var shadow: String?
    @Option(name: .long, help: "Why, for the history.") var reason: String?

    func run() async throws {
        func split(_ text: String, _ what: String) throws -> (String, Double) {
            let parts = text.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Double(parts[1]) else {
                throw ValidationError("--\(what) '\(text)' must be TARGET=NUMBER")
            }
            return (String(parts[0]), value)
        }
        let routes = try route.map { try split($0, "route") }.map { DeploymentSpec.Route(target: $0.0, weight: $0.1) }
        let mirror = try shadow.map { try split($0, "shadow") }.map {
            DeploymentSpec.Shadow(target: $0.0, sample: $0.1)
        }
        let spec = DeploymentSpec(routes: routes, stickyHeader: stickyHeader, shadow: mirror)
        try await options.with { try await $0.deploy(name, spec, actor: options.who, reason: reason) }
        print(ModelsCommand.json(spec))
    }
}

struct DeployShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show a model's deployment, resolved to version numbers.")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "Model name.") var name: String

    func run() async throws {
        let (spec, resolved) = try await options.with { registry in
            (try await registry.deployment(name), try await registry.resolvedDeployments().first { $0.model == name })
        }
        guard let resolved else { throw CLIError("no model '\(name)' in the registry") }
        print(spec == nil ? "\(name): no deployment (serves \(resolved.routes[0].target))" : "\(name):")
        for r in resolved.routes { print("  route \(r.target) → version \(r.version)  weight \(r.weight)") }
        if let header = resolved.stickyHeader { print("  sticky by \(header)") }
        if let shadow = resolved.shadow { print("  shadow version \(shadow.version)  sample \(shadow.sample)") }
    }
}

struct DeployDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Remove a model's deployment (it then serves its production alias).")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "Model name.") var name: String

    func run() async throws {
        try await options.with { try await $0.undeploy(name, actor: options.who) }
        print("\(name): deployment removed")
    }
}

struct DeployReport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "The shadow report of a running server: agreement, latency, examples of disagreement.",
        discussion: "Agreement is computed in the server's memory; this asks the server (its admin API).")
    @Argument(help: "Model name.") var name: String
    @Option(name: .long, help: "The server (default http://127.0.0.1:8080, or $MASS_SERVER).")
    var server: String?
    @Flag(name: .long, help: "Print the JSON report.") var json = false

    func run() async throws {
        let base = server ?? ProcessInfo.processInfo.environment["MASS_SERVER"] ?? "http://127.0.0.1:8080"
        guard let url = URL(string: "\(base)/admin/v1/deployments/\(name)/report") else {
            throw CLIError("'\(base)' is not a server URL")
        }
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(from: url)
        } catch {
            throw CLIError("cannot reach \(base): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            let message = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["error"] as? String
            throw CLIError(message ?? "\(base) answered \(status)")
        }
        if json { return print(String(decoding: data, as: UTF8.self)) }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let r = try decoder.decode(ShadowReport.self, from: data)
        print(
            "\(r.model): shadow version \(r.shadowVersion) beside \(r.primaryVersions.map(String.init).joined(separator: ", ")), sample \(r.sample)"
        )
        print("  compared \(r.compared), dropped \(r.dropped), failed \(r.failed)")
        for (measure, value) in r.agreement.sorted(by: { $0.key < $1.key }) {
            print("  \(measure): \(String(format: "%.4f", value))")
        }
        if let p = r.primaryLatency, let s = r.shadowLatency {
            print(
                String(
                    format: "  latency ms: primary p50 %.2f p99 %.2f, shadow p50 %.2f p99 %.2f", p.p50Ms, p.p99Ms,
                    s.p50Ms, s.p99Ms))
        }
        for (side, counts) in r.labelDistribution.sorted(by: { $0.key < $1.key }) {
            print(
                "  \(side) labels: "
                    + counts.sorted { $0.value > $1.value }.prefix(8).map { "\($0.key) \($0.value)" }.joined(
                        separator: ", "))
        }
        for e in r.disagreements.suffix(5) {
            print("  disagreement: \(e.input)\n    primary v\(e.primaryVersion): \(e.primary)\n    shadow: \(e.shadow)")
        }
    }
}
