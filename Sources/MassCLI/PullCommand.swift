import ArgumentParser
import Foundation
import MassHub
import MassRegistry
import MassRuntime

struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Fetch a model repository from a Hugging Face-style hub and register it.",
        discussion: """
            Speaks the hub's HTTP API: the revision's file listing, then each file through `resolve`, cached in \
            $MASS_CACHE (default ~/.cache/mass/hub), resumed after a dropped connection, and checked against the \
            hub's sha256 and sizes before anything is registered. HF_ENDPOINT (default https://huggingface.co) and \
            HF_TOKEN are read as Hugging Face's tools read them. The version records its source: hub, the \
            repository and the commit the revision resolved to.
            """)

    @OptionGroup var options: RegistryOptions
    @Argument(help: "owner/name, optionally @REVISION (a branch, tag or commit; default main).")
    var repository: String
    @Option(name: .long, help: "The registered model's name (default: the repository's name).") var name: String?
    @Option(name: .long, help: "Task, when the files do not say (see mass models register).") var task: String?
    @Option(name: .long, help: "Point this alias at the new version.") var alias: String?
    @Option(name: .long, help: "The files' cache (default $MASS_CACHE or ~/.cache/mass/hub).") var cache: String?

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let parts = repository.split(separator: "@", maxSplits: 1)
        let repo = String(parts[0])
        let revision = parts.count == 2 ? String(parts[1]) : "main"
        guard let endpoint = URL(string: env["HF_ENDPOINT"] ?? "https://huggingface.co"), endpoint.host != nil else {
            throw CLIError("HF_ENDPOINT '\(env["HF_ENDPOINT"] ?? "")' is not a URL")
        }
        let home = FileManager.default.homeDirectoryForCurrentUser
        let cacheFolder = URL(
            fileURLWithPath: cache ?? env["MASS_CACHE"] ?? home.appendingPathComponent(".cache/mass/hub").path)
        let client = HubClient(endpoint: endpoint, token: env["HF_TOKEN"], cache: cacheFolder)
        let terminal = isatty(STDERR_FILENO) == 1
        let bar = ProgressBar()
        let snapshot: HubClient.Snapshot
        do {
            snapshot = try await client.snapshot(repo, revision: revision) { path, done, total in
                if terminal { bar.show(path, done, total) }
            }
        } catch let error as HubError {
            if terminal { bar.finish() }
            throw CLIError(error.message)
        }
        if terminal { bar.finish() }
        let draft = try RegistryDrafts.draft(
            folder: snapshot.folder, task: task,
            source: VersionSource(kind: "hub", uri: "\(endpoint.absoluteString)/\(repo)", revision: snapshot.commit))
        let registeredName = name ?? String(repo.split(separator: "/").last ?? "model")
        let version = try await options.with {
            try await $0.register(
                folder: snapshot.folder, name: registeredName, draft: draft, alias: alias, actor: options.who)
        }
        print(ModelsCommand.json(version))
    }
}

/// One line on standard error, redrawn: the file, bytes so far and in all, the share.
final class ProgressBar: @unchecked Sendable {  // drawn from the download's one task
    private var last = Date.distantPast

    func show(_ path: String, _ done: Int, _ total: Int) {
        guard Date().timeIntervalSince(last) > 0.1 || done == total else { return }
        last = Date()
        let share = total > 0 ? Double(done) / Double(total) : 0
        let width = 30
        let filled = Int(share * Double(width))
        let line = String(
            format: "\r%@ [%@%@] %.1f/%.1f MB %3.0f%%", String(path.suffix(32)) as NSString,
            String(repeating: "#", count: filled) as NSString,
            String(repeating: ".", count: width - filled) as NSString,
            Double(done) / 1e6, Double(total) / 1e6, share * 100)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() { FileHandle.standardError.write(Data("\n".utf8)) }
}
