import ArgumentParser
import Foundation
import MassModels
import MassRegistry
import MassRuntime

/// Where the registry is: `--registry` / `$MASS_REGISTRY` (an SQLite path or a postgres:// URL), and the
/// artifact store, `--store` / `$MASS_STORE`. By default both sit beside the repository: `<repository>.mass/`.
struct RegistryOptions: ParsableArguments {
    @Option(name: .long, help: "Model repository the registry sits beside (default ./models, or $MASS_REPOSITORY).")
    var repository: String?

    @Option(
        name: .long,
        help: "Registry database: an SQLite file or postgres://user:password@host:port/db (or $MASS_REGISTRY).")
    var registry: String?

    @Option(name: .long, help: "Artifact store folder (default <repository>.mass/store, or $MASS_STORE).")
    var store: String?

    @Option(name: .long, help: "Who makes the change, for the history (default $USER).")
    var actor: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }
    var home: URL {
        let repository = repository ?? environment["MASS_REPOSITORY"] ?? "models"
        let base = URL(fileURLWithPath: repository).standardizedFileURL
        return base.deletingLastPathComponent().appendingPathComponent(base.lastPathComponent + ".mass")
    }
    var who: String { actor ?? environment["USER"] ?? "cli" }
    var databaseURL: String {
        registry ?? environment["MASS_REGISTRY"] ?? home.appendingPathComponent("registry.sqlite").path
    }
    var storePath: String { store ?? environment["MASS_STORE"] ?? home.appendingPathComponent("store").path }

    init() {}

    init(repository: String?, registry: String?, store: String?) {
        self.repository = repository
        self.registry = registry
        self.store = store
    }

    func open() async throws -> ModelRegistry {
        try await ModelRegistry.open(
            database: RegistryDatabases.open(databaseURL), store: ArtifactStore(root: URL(fileURLWithPath: storePath)))
    }

    /// Runs `body` on an open registry and closes it, whatever happens.
    func with<T>(_ body: (ModelRegistry) async throws -> T) async throws -> T {
        let registry = try await open()
        do {
            let result = try await body(registry)
            await registry.close()
            return result
        } catch {
            await registry.close()
            throw error
        }
    }
}

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "The model registry: versions, aliases, tags, lineage and history.",
        discussion: """
            The registry keeps every version's files in a content-addressed store (sha256, verified on load) and \
            every change in an append-only history. SQLite beside the repository by default; --registry \
            postgres://... for a registry several servers share.
            """,
        subcommands: [
            ModelsRegister.self, ModelsList.self, ModelsShow.self, ModelsAlias.self, ModelsTag.self,
            ModelsHistory.self, ModelsPromote.self, ModelsRollback.self, ModelsDelete.self, ModelsCatalog.self,
        ])

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func date(_ milliseconds: Int) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}

struct ModelsRegister: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Register a model folder as the next version of a model.",
        discussion: """
            The task comes from --task, else the folder's or its parent's mass.json; the architecture from the \
            folder (config.json's model_type, as mass serve picks it). Prints the new version as JSON.
            """)

    @OptionGroup var options: RegistryOptions
    @Argument(help: "The model folder (files as the architecture loads them).") var directory: String
    @Option(name: .long, help: "The registered model's name.") var name: String
    @Option(name: .long, help: "Point this alias at the new version.") var alias: String?
    @Option(name: .long, help: "Task (text-embedding, text-classification, rerank, speech-recognition, ...).")
    var task: String?
    @Option(name: .long, help: "The version this one derives from.") var parent: Int?
    @Option(name: .long, help: "The dataset it was trained on.") var dataset: String?
    @Option(name: .long, help: "The training run that produced it.") var trainingRun: String?
    @Option(name: .long, help: "Where the files came from (default: the folder's path).") var source: String?
    @Option(name: .long, help: "A description of the version.") var description: String?
    @Option(name: .long, help: "A tag KEY=VALUE (repeatable).") var tag: [String] = []

    func run() async throws {
        let folder = URL(fileURLWithPath: directory).standardizedFileURL
        var tags: [String: String] = [:]
        for pair in tag {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw CLIError("--tag '\(pair)' must be KEY=VALUE") }
            tags[String(parts[0])] = String(parts[1])
        }
        let draft = try RegistryDrafts.draft(
            folder: folder, task: task, source: VersionSource(kind: "folder", uri: source ?? folder.path),
            parent: parent, dataset: dataset, trainingRun: trainingRun, description: description, tags: tags)
        let version = try await options.with {
            try await $0.register(folder: folder, name: name, draft: draft, alias: alias, actor: options.who)
        }
        print(ModelsCommand.json(version))
    }
}

struct ModelsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List registered models: task, versions, aliases.")
    @OptionGroup var options: RegistryOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() async throws {
        let models = try await options.with { try await $0.models() }
        if json { return print(ModelsCommand.json(models)) }
        for m in models {
            let aliases = m.aliases.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            print(
                "\(m.name)\t\(m.task)\tversions \(m.versions.map { String($0.version) }.joined(separator: ","))"
                    + (aliases.isEmpty ? "" : "\taliases \(aliases)"))
        }
    }
}

struct ModelsShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show a model (or one version, by number or alias) as JSON.")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "Model name.") var name: String
    @Option(name: .long, help: "A version number or alias.") var version: String?

    func run() async throws {
        if let version {
            print(ModelsCommand.json(try await options.with { try await $0.version(name, selector: version) }))
        } else {
            print(ModelsCommand.json(try await options.with { try await $0.model(name) }))
        }
    }
}

struct ModelsAlias: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alias", abstract: "Point an alias at a version, or delete it.",
        subcommands: [SetAlias.self, DeleteAlias.self])

    struct SetAlias: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set", abstract: "NAME ALIAS VERSION")
        @OptionGroup var options: RegistryOptions
        @Argument var name: String
        @Argument var alias: String
        @Argument var version: Int
        @Option(name: .long, help: "Why, for the history.") var reason: String?

        func run() async throws {
            let event = try await options.with {
                try await $0.setAlias(name, alias, to: version, actor: options.who, reason: reason)
            }
            print("\(name): \(alias) → \(version)" + (event.fromVersion.map { " (was \($0))" } ?? ""))
        }
    }

    struct DeleteAlias: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "NAME ALIAS")
        @OptionGroup var options: RegistryOptions
        @Argument var name: String
        @Argument var alias: String

        func run() async throws {
            try await options.with { try await $0.deleteAlias(name, alias, actor: options.who) }
            print("\(name): alias \(alias) deleted")
        }
    }
}

struct ModelsTag: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag", abstract: "Set KEY=VALUE tags (or --delete KEY) on a model or one of its versions.")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "Model name.") var name: String
    @Argument(help: "KEY=VALUE pairs.") var pairs: [String] = []
    @Option(name: .long, help: "Tag this version instead of the model.") var version: Int?
    @Option(name: .long, help: "Remove this tag (repeatable).") var delete: [String] = []

    func run() async throws {
        guard !pairs.isEmpty || !delete.isEmpty else { throw ValidationError("give KEY=VALUE or --delete KEY") }
        let changes: [(String, String?)] =
            try pairs.map { pair in
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { throw ValidationError("'\(pair)' must be KEY=VALUE") }
                return (String(parts[0]), String(parts[1]))
            } + delete.map { ($0, nil) }
        try await options.with { registry in
            for (key, value) in changes {
                try await registry.tag(name, version: version, key: key, value: value, actor: options.who)
            }
        }
    }
}

struct ModelsHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "A model's history, oldest first: who changed what, when, and why.")
    @OptionGroup var options: RegistryOptions
    @Argument var name: String
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() async throws {
        let events = try await options.with { try await $0.history(name) }
        if json { return print(ModelsCommand.json(events)) }
        for e in events {
            var line = "\(ModelsCommand.date(e.at))\t\(e.actor)\t\(e.kind)"
            if let alias = e.alias { line += "\t\(alias)" }
            if let from = e.fromVersion { line += "\t\(from) →" }
            if let version = e.version { line += "\t\(version)" }
            if let reason = e.reason { line += "\t\(reason)" }
            print(line)
        }
    }
}

struct ModelsPromote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote", abstract: "Point the production alias (or --alias) at a version.")
    @OptionGroup var options: RegistryOptions
    @Argument var name: String
    @Argument var version: Int
    @Option(name: .long) var alias = "production"
    @Option(name: .long, help: "Why, for the history.") var reason: String?

    func run() async throws {
        let event = try await options.with {
            try await $0.promote(name, version: version, alias: alias, actor: options.who, reason: reason)
        }
        print("\(name): \(alias) → \(version)" + (event.fromVersion.map { " (was \($0))" } ?? ""))
    }
}

struct ModelsRollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback", abstract: "Move the production alias (or --alias) back to its previous version.")
    @OptionGroup var options: RegistryOptions
    @Argument var name: String
    @Option(name: .long) var alias = "production"
    @Option(name: .long, help: "Why, for the history.") var reason: String?

    func run() async throws {
        let event = try await options.with {
            try await $0.rollback(name, alias: alias, actor: options.who, reason: reason)
        }
        print("\(name): \(alias) → \(event.version ?? 0) (was \(event.fromVersion ?? 0))")
    }
}

struct ModelsDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a version (refused while an alias points at it).")
    @OptionGroup var options: RegistryOptions
    @Argument var name: String
    @Argument var version: Int
    @Option(name: .long, help: "Why, for the history.") var reason: String?

    func run() async throws {
        let freed = try await options.with { registry in
            try await registry.deleteVersion(name, version, actor: options.who, reason: reason)
            return try await registry.collectGarbage()
        }
        print("\(name): version \(version) deleted (\(freed) bytes freed)")
    }
}
