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
    /// so that its request is dropped before compute instead of being computed for nobody.
    ///
    /// While a request is in flight the HTTP pipeline does not read from the connection, so a client's close
    /// (FIN) is not seen as an event: a watcher asks the kernel for the socket's TCP state every 25 ms instead.
    func cancellingOnDisconnect<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await operation() }
        channel.closeFuture.whenComplete { _ in task.cancel() }
        let watcher: Task<Void, Never>? = (channel as? any SocketOptionProvider).map { provider in
            Task {
                while true {
                    try? await Task.sleep(for: .milliseconds(25))
                    if Task.isCancelled { return }
                    guard let info = try? await provider.getTCPInfo().get() else { return task.cancel() }
                    // TCP_CLOSE (7), TCP_CLOSE_WAIT (8: the peer sent FIN), TCP_LAST_ACK (9).
                    if (7...9).contains(info.tcpi_state) { return task.cancel() }
                }
            }
        }
        defer { watcher?.cancel() }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }
}
