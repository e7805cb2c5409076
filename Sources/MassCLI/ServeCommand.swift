import ArgumentParser
import Foundation
import MassServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model repository over HTTP (KServe v2 and OpenAI-compatible APIs).",
        discussion: "Options fall back to MASS_REPOSITORY, MASS_HOST and MASS_PORT. SIGTERM/SIGINT drain and exit 0.")

    @Option(name: .long, help: "Model repository (default ./models, or $MASS_REPOSITORY).")
    var repository: String?

    @Option(name: .long, help: "Address to listen on (default 127.0.0.1, or $MASS_HOST).")
    var host: String?

    @Option(name: .long, help: "Port (default 8080, or $MASS_PORT).")
    var port: Int?

    func run() async throws {
        try Mass.checkCPU()
        let env = ProcessInfo.processInfo.environment
        guard let port = port ?? Int(env["MASS_PORT"] ?? "8080"), (1...65535).contains(port) else {
            throw ValidationError("the port must be 1-65535")
        }
        let options = MassServer.Options(
            repository: URL(fileURLWithPath: repository ?? env["MASS_REPOSITORY"] ?? "models"),
            host: host ?? env["MASS_HOST"] ?? "127.0.0.1", port: port)
        try await MassServer.run(options) {
            FileHandle.standardError.write(
                Data("mass: serving \(options.repository.path) on http://\(options.host):\(options.port)\n".utf8))
        }
    }
}
