import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP proxy in front of a real provider (a second `mass serve`) that injects faults: added latency,
/// dropped connections, error statuses, 429s with Retry-After, a provider that hangs, answers that are not what
/// the API promises. Faults are scripted per request (`script`, consumed in order) over a standing `mode`.
final class FaultProxy: Sendable {
    enum Fault: Sendable, Equatable {
        /// Forward to the provider.
        case pass
        /// Forward after a delay.
        case delay(milliseconds: Int)
        /// Close the connection without an answer.
        case drop
        /// Answer this status with a small JSON error.
        case status(Int)
        /// 429 with a Retry-After in seconds.
        case tooMany(retryAfter: Int)
        /// Never answer (until the client gives up or the proxy stops).
        case hang
        /// Answer 200 with this body.
        case answer(String)
        /// Answer 400 with the request's headers in the body (a provider that echoes what it was sent).
        case echoHeaders
    }

    private struct State {
        var transform: (@Sendable (ByteBuffer) -> ByteBuffer)?
        var mode = Fault.pass
        var script: [Fault] = []
        var received = 0
        var authorizations: [String] = []
    }

    let port: Int
    let target: URL
    private final class Shared: Sendable { let state = Mutex(State()) }
    private let shared = Shared()
    private let client = HTTPClient(eventLoopGroupProvider: .singleton)
    private let serving: Task<Void, Never>

    init(target: URL) async throws {
        self.target = target
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        port = server.channel.localAddress?.port ?? 0
        let handle: @Sendable (NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async -> Void
        let forward = Forwarder(client: client, target: target)
        let shared = self.shared
        handle = { connection in
            try? await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                for try await part in inbound {
                    switch part {
                    case .head(let h):
                        head = h
                        body.clear()
                    case .body(var b): body.writeBuffer(&b)
                    case .end:
                        guard let head else { return }
                        let fault = shared.state.withLock { s -> Fault in
                            s.received += 1
                            if let auth = head.headers.first(name: "Authorization") { s.authorizations.append(auth) }
                            return s.script.isEmpty ? s.mode : s.script.removeFirst()
                        }
                        switch fault {
                        case .drop: return
                        case .hang:
                            try? await Task.sleep(for: .seconds(3600))
                            return
                        case .status(let code):
                            try await Self.write(outbound, status: code, body: "{\"error\": \"injected \(code)\"}")
                        case .tooMany(let seconds):
                            try await Self.write(
                                outbound, status: 429, body: "{\"error\": \"slow down\"}",
                                headers: [("Retry-After", String(seconds))])
                        case .answer(let text): try await Self.write(outbound, status: 200, body: text)
                        case .echoHeaders:
                            let echoed = head.headers.map { "\($0.name): \($0.value)" }.joined(separator: "; ")
                            let json = String(
                                decoding: try JSONSerialization.data(withJSONObject: ["error": "bad input; " + echoed]),
                                as: UTF8.self)
                            try await Self.write(outbound, status: 400, body: json)
                        case .pass, .delay:
                            if case .delay(let ms) = fault { try await Task.sleep(for: .milliseconds(ms)) }
                            let (status, bytes) = try await forward.send(head, body: body)
                            let transform = shared.state.withLock { $0.transform }
                            try await Self.write(
                                outbound, status: status, body: status == 200 ? transform?(bytes) ?? bytes : bytes)
                        }
                    }
                }
            }
        }
        serving = Task {
            try? await server.executeThenClose { connections in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in connections { group.addTask { await handle(connection) } }
                    } catch {}
                }
            }
        }
    }

    var base: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// The fault of every request not scripted.
    func set(_ mode: Fault) { shared.state.withLock { $0.mode = mode } }
    /// Rewrites the provider's 200 answers (another model's vectors, say).
    func transform(_ body: (@Sendable (ByteBuffer) -> ByteBuffer)?) { shared.state.withLock { $0.transform = body } }
    /// Faults for the next requests, in order.
    func script(_ faults: [Fault]) { shared.state.withLock { $0.script = faults } }
    var received: Int { shared.state.withLock { $0.received } }
    var authorizations: [String] { shared.state.withLock { $0.authorizations } }

    func stop() async {
        serving.cancel()
        try? await client.shutdown()
    }

    private static func write(
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, status: Int, body: String,
        headers: [(String, String)] = []
    ) async throws {
        try await write(outbound, status: status, body: ByteBuffer(string: body), headers: headers)
    }

    private static func write(
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, status: Int, body: ByteBuffer,
        headers: [(String, String)] = []
    ) async throws {
        var fields = HTTPHeaders(headers)
        fields.add(name: "Content-Type", value: "application/json")
        fields.add(name: "Content-Length", value: String(body.readableBytes))
        try await outbound.write(
            .head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: fields)))
        try await outbound.write(.body(.byteBuffer(body)))
        try await outbound.write(.end(nil))
    }

    /// Sends a request on to the provider.
    private struct Forwarder: Sendable {
        let client: HTTPClient
        let target: URL

        func send(_ head: HTTPRequestHead, body: ByteBuffer) async throws -> (Int, ByteBuffer) {
            var request = HTTPClientRequest(url: target.absoluteString + head.uri)
            request.method = head.method
            for (name, value) in head.headers
            where !["host", "content-length", "connection", "authorization"].contains(name.lowercased()) {
                request.headers.add(name: name, value: value)
            }
            request.body = .bytes(body)
            let response = try await client.execute(request, timeout: .seconds(60))
            return (Int(response.status.code), try await response.body.collect(upTo: 64 << 20))
        }
    }
}
