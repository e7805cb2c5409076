import CMassBLAS
import Foundation
import Hummingbird
import MassRuntime

/// Builds and runs the HTTP server over a model repository (Hummingbird 2).
public enum MassServer {
    public struct Options: Sendable {
        public var repository: URL
        public var host: String
        public var port: Int
        /// Request bodies over this many bytes get 413.
        public var bodyLimit: Int

        public init(repository: URL, host: String = "127.0.0.1", port: Int = 8080, bodyLimit: Int = 8 << 20) {
            self.repository = repository
            self.host = host
            self.port = port
            self.bodyLimit = bodyLimit
        }
    }

    /// Loads and warms up every model, then serves until SIGTERM/SIGINT, after which it stops accepting,
    /// finishes what was accepted and returns. `onReady` is called once the port is open.
    public static func run(_ options: Options, onReady: @escaping @Sendable () async -> Void = {}) async throws {
        cmass_configure_allocator()  // before any model is loaded: unloading must return its memory
        let host = try await ModelHost(
            repository: ModelRepository(root: options.repository), bodyLimit: options.bodyLimit)
        let router = Router(context: MassRequestContext.self)
        KServeRoutes.add(to: router, host: host)
        OpenAIRoutes.add(to: router, host: host)
        ImageRoutes.add(to: router, host: host)
        AudioRoutes.add(to: router, host: host)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "mass"),
            onServerRunning: { _ in await onReady() })
        try await app.runService()
        host.shutdown()
    }
}
