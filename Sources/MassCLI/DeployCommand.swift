import ArgumentParser
import Foundation
import MassRegistry

struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "How a registered model is served: weighted routes, sticky routing, a shadow.",
        discussion: """
            Changes go to the registry; every server on it applies them within a second (at once on the server \
            whose admin API made them). Without a deployment a model serves its production alias, or its latest \
            version.
            """,
        subcommands: [DeploySet.self, DeployShow.self, DeployDelete.self])
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
