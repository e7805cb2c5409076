import Foundation
import Hummingbird
import Logging
import MassModels
import MassRegistry
import MassRuntime
import MassTenancy
import MassTensor
import ServiceLifecycle
import Synchronization

/// Builds and runs the HTTP server over a model repository (Hummingbird 2), in one `ServiceGroup` with the model
/// manager.
public enum MassServer {
    public struct Options: Sendable {
        public var repository: URL
        public var host: String
        public var port: Int
        /// Request bodies over this many bytes get 413.
        public var bodyLimit: Int
        public var logger: Logger
        /// The registry database (an SQLite path or a postgres:// URL) and artifact store; nil: the folder
        /// repository only.
        public var registry: String?
        public var store: URL?
        /// When requests need an API key (with a registry): see `TenancyGate.Mode`.
        public var auth: TenancyGate.Mode
        /// Whether `/metrics` needs a key too.
        public var protectMetrics: Bool
        /// The process environment, where service-type models find their API key variables.
        public var environment: [String: String]

        public init(
            repository: URL, host: String = "127.0.0.1", port: Int = 8080, bodyLimit: Int = 8 << 20,
            logger: Logger = Logger(label: "mass"), registry: String? = nil, store: URL? = nil,
            auth: TenancyGate.Mode = .auto, protectMetrics: Bool = false, environment: [String: String] = [:]
        ) {
            self.environment = environment
            self.auth = auth
            self.protectMetrics = protectMetrics
            self.registry = registry
            self.store = store
            self.repository = repository
            self.host = host
            self.port = port
            self.bodyLimit = bodyLimit
            self.logger = logger
        }
    }

    /// The KServe `infer` adapters of every task, each from the routes file of its API.
    static let kserveAdapters = [
        OpenAIRoutes.kserve, TEIRoutes.classifyAdapter, TEIRoutes.rerankAdapter, AudioRoutes.kserve,
        ImageRoutes.kserve,
    ]

    /// The application's router over a manager: every route, the request middleware.
    static func router(
        manager: ModelManager, bodyLimit: Int, gate: TenancyGate? = nil, protectMetrics: Bool = false
    ) -> Router<MassRequestContext> {
        let state = ServerState(manager: manager, bodyLimit: bodyLimit, kserve: kserveAdapters, gate: gate)
        let router = Router(context: MassRequestContext.self)
        router.add(middleware: RequestMiddleware(manager: manager, gate: gate, protectMetrics: protectMetrics))
        KServeRoutes.add(to: router, state: state)
        OpenAIRoutes.add(to: router, state: state)
        ImageRoutes.add(to: router, state: state)
        AudioRoutes.add(to: router, state: state)
        TEIRoutes.add(to: router, state: state)
        TokenizeRoutes.add(to: router, state: state)
        AdminRoutes.add(to: router, state: state)
        TenancyRoutes.add(to: router, state: state)
        JobRoutes.add(to: router, state: state)
        StudyRoutes.add(to: router, state: state)
        SelectionRoutes.add(to: router, state: state)
        ServiceRoutes.add(to: router, state: state)
        return router
    }

    /// The HTTP application over a manager whose models are loaded (for tests in process, and `run`).
    public static func application(
        manager: ModelManager, bodyLimit: Int = 8 << 20, configuration: ApplicationConfiguration = .init(),
        logger: Logger = Logger(label: "mass"), gate: TenancyGate? = nil, protectMetrics: Bool = false,
        onReady: @escaping @Sendable () async -> Void = {}
    ) -> some ApplicationProtocol & Service {
        Application(
            router: router(manager: manager, bodyLimit: bodyLimit, gate: gate, protectMetrics: protectMetrics),
            configuration: configuration,
            onServerRunning: { _ in await onReady() }, logger: logger)
    }

    /// Loads and warms up every model, then serves until SIGTERM/SIGINT, after which it stops accepting,
    /// finishes what was accepted, stops the models and returns. `onReady` is called once the port is open.
    public static func run(_ options: Options, onReady: @escaping @Sendable () async -> Void = {}) async throws {
        Memory.configureAllocator()  // before any model is loaded: unloading must return its memory
        var registry: ModelRegistry? = nil
        if let url = options.registry {
            let store =
                options.store ?? options.repository.appendingPathExtension("mass").appendingPathComponent("store")
            registry = try await ModelRegistry.open(
                database: RegistryDatabases.open(url), store: ArtifactStore(root: store))
        }
        let manager = ModelManager(
            repository: ModelRepository(root: options.repository), logger: options.logger, registry: registry,
            environment: options.environment)
        var gate: TenancyGate? = nil
        if let registry {
            let opened = TenancyGate(
                store: TenancyStore(database: registry.database), mode: options.auth,
                loopbackOnly: isLoopback(options.host), logger: options.logger)
            try await opened.start()
            countUsage(opened, metrics: manager.metrics)
            gate = opened
        }
        try await manager.loadAll()
        let app = application(
            manager: manager, bodyLimit: options.bodyLimit,
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "mass"),
            logger: options.logger, gate: gate, protectMetrics: options.protectMetrics, onReady: onReady)
        // Shut down in reverse order: the HTTP server drains first, then the usage meter writes what the drained
        // requests used, then the manager stops the models.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: manager)]
        if let gate { services.append(.init(service: gate)) }
        services.append(.init(service: app))
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint], logger: options.logger))
        try await group.run()
        await registry?.close()
    }

    /// Whether a listening address is reachable only from this machine.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Per-tenant counters from the usage records (tenants are created by admins, so the labels are bounded;
    /// past 200 tenants the rest are counted as "other").
    static func countUsage(_ gate: TenancyGate, metrics: MetricsRegistry) {
        let seen = Mutex(Set<String>())
        gate.meter.observe { record in
            let tenant = seen.withLock { s in
                if s.contains(record.tenant) || s.count < 200 {
                    s.insert(record.tenant)
                    return record.tenant
                }
                return "other"
            }
            metrics.add(
                "mass_tenant_requests_total", labels: [("tenant", tenant), ("status", String(record.status))],
                help: "Requests by tenant and HTTP status.")
            for (kind, amount) in [
                ("tokens", Double(record.tokens)), ("audio_seconds", record.audioSeconds),
                ("images", Double(record.images)), ("units", record.units),
            ] where amount > 0 {
                metrics.add(
                    "mass_tenant_usage_total", amount, labels: [("tenant", tenant), ("kind", kind)],
                    help: "Metered usage by tenant and kind (tokens, audio_seconds, images, units).")
            }
        }
    }
}
