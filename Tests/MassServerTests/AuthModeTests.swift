import Foundation
import MassTesting
import Testing

/// When the built `mass serve` asks for keys, by the address it listens on: beyond loopback with no key it refuses
/// anonymous requests and says how to make a key; `--auth off` there serves them and warns at start-up.
@Suite(.serialized) struct AuthModeTests {
    static let body = Array(#"{"model": "all-MiniLM-L6-v2", "input": "hello"}"#.utf8)

    @Test func beyondLoopbackWithoutKeysEveryRequestNeedsOne() throws {
        let server = try LiveServer(massJSON: #"{"task": "text-embedding"}"#, arguments: ["--host", "0.0.0.0"])
        let r = server.rawPost("/v1/embeddings", body: Self.body, headers: ["Content-Type: application/json"])
        #expect(r.status == 401)
        let message = String(decoding: r.body, as: UTF8.self)
        #expect(message.contains("requires an API key and has none: create one with 'mass keys create'"), "\(message)")
        // Probes stay open.
        #expect(try server.request("GET", "/v2/health/ready").0 == 200)
    }

    @Test func authOffBeyondLoopbackServesAndWarns() throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("mass-auth-off-\(UUID()).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let server = try LiveServer(
            massJSON: #"{"task": "text-embedding"}"#, arguments: ["--host", "0.0.0.0", "--auth", "off"], log: log)
        let r = server.rawPost("/v1/embeddings", body: Self.body, headers: ["Content-Type: application/json"])
        #expect(r.status == 200)
        #expect(server.stop() == 0)
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(
            text.contains("warning") && text.contains("serving on 0.0.0.0 without authentication (--auth off)"),
            "\(text)")
    }

    @Test func loopbackWithoutKeysStaysOpen() throws {
        let server = try LiveServer(massJSON: #"{"task": "text-embedding"}"#)
        let r = server.rawPost("/v1/embeddings", body: Self.body, headers: ["Content-Type: application/json"])
        #expect(r.status == 200)
    }
}
