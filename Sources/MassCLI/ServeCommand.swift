import ArgumentParser
import Foundation
import Logging
import MassServer
import MassTenancy

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model repository over HTTP (KServe v2 and OpenAI-compatible APIs).",
        discussion: """
            Options fall back to MASS_REPOSITORY, MASS_HOST, MASS_PORT and MASS_LOG_LEVEL. SIGTERM/SIGINT drain \
            and exit 0. Logs go to standard error, each request's lines with its request id (hb.request.id, also \
            the X-Request-Id response header).
            """)

    @Option(name: .long, help: "Model repository (default ./models, or $MASS_REPOSITORY).")
    var repository: String?

    @Option(
        name: .long,
        help:
            "Registry database: an SQLite file or postgres://user:password@host:port/db (default <repository>.mass/registry.sqlite, or $MASS_REGISTRY)."
    )
    var registry: String?

    @Option(name: .long, help: "Artifact store (default <repository>.mass/store, or $MASS_STORE).")
    var store: String?

    @Option(name: .long, help: "Address to listen on (default 127.0.0.1, or $MASS_HOST).")
    var host: String?

    @Option(name: .long, help: "Port (default 8080, or $MASS_PORT).")
    var port: Int?

    @Option(
        name: .long,
        help:
            "API keys: auto (required once any key exists, or when listening beyond loopback), required, off (default auto, or $MASS_AUTH)."
    )
    var auth: String?

    @Flag(name: .long, help: "Require a key for /metrics too (probes never need one).")
    var protectMetrics = false

    @Option(
        name: .long,
        help: "Log level: trace, debug, info, notice, warning, error, critical (default info, or $MASS_LOG_LEVEL).")
    var logLevel: String?

    func run() async throws {
        try Mass.checkCPU()
        let env = ProcessInfo.processInfo.environment
        guard let port = port ?? Int(env["MASS_PORT"] ?? "8080"), (1...65535).contains(port) else {
            throw ValidationError("the port must be 1-65535")
        }
        let levelName = logLevel ?? env["MASS_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError(
                "the log level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "mass")
        logger.logLevel = level
        let registryOptions = RegistryOptions(repository: repository, registry: registry, store: store)
        let authName = auth ?? env["MASS_AUTH"] ?? "auto"
        guard let mode = TenancyGate.Mode(rawValue: authName) else {
            throw ValidationError("--auth must be auto, required or off, not '\(authName)'")
        }
        let options = MassServer.Options(
            repository: URL(fileURLWithPath: repository ?? env["MASS_REPOSITORY"] ?? "models"),
            host: host ?? env["MASS_HOST"] ?? "127.0.0.1", port: port, logger: logger,
            registry: registryOptions.databaseURL, store: URL(fileURLWithPath: registryOptions.storePath),
            auth: mode, protectMetrics: protectMetrics, environment: env)
        if mode == .off && !MassServer.isLoopback(options.host) {
            logger.warning(
                "serving on \(options.host) without authentication (--auth off): anyone who reaches the port gets unlimited compute"
            )
        }
        try await MassServer.run(options) {
            FileHandle.standardError.write(
                Data("mass: serving \(options.repository.path) on http://\(options.host):\(options.port)\n".utf8))
        }
    }
}
