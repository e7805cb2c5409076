import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's core storage plus the connection, so that a handler can
/// tell when its client has gone.
struct MassRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Runs `operation` (queued model work) in a task that is cancelled when the client closes the connection,
    /// so that its request is dropped before compute instead of being computed for nobody. The connection is
    /// watched by the server's one `DisconnectWatcher`.
    func cancellingOnDisconnect<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await operation() }
        channel.closeFuture.whenComplete { _ in task.cancel() }
        let key = (channel as? any SocketOptionProvider).map { DisconnectWatcher.shared.watch($0) { task.cancel() } }
        defer { if let key { DisconnectWatcher.shared.stop(key) } }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }
}
