import NIOCore
import Synchronization

/// Watches the connections of requests in flight for clients that went away, with one polling task for the whole
/// server (not one per request): every 25 ms it asks the kernel for each watched socket's TCP state and cancels
/// the request of a connection that is closed or half-closed by the peer.
///
/// While a request is in flight the HTTP pipeline does not read from the connection, so a client's close (FIN) is
/// not seen as an event; polling the TCP state is how it is noticed.
final class DisconnectWatcher: Sendable {
    static let shared = DisconnectWatcher()

    private struct Watched: Sendable {
        let provider: any SocketOptionProvider
        let cancel: @Sendable () -> Void
    }

    private struct State {
        var watched: [UInt64: Watched] = [:]
        var next: UInt64 = 0
        var polling = false
    }

    private let state = Mutex(State())

    /// Connections watched now (for tests).
    var count: Int { state.withLock { $0.watched.count } }

    /// Starts watching; `cancel` is called at most once, when the peer is gone. Returns the key for `stop`.
    func watch(_ provider: any SocketOptionProvider, cancel: @escaping @Sendable () -> Void) -> UInt64 {
        let (key, start) = state.withLock { s -> (UInt64, Bool) in
            s.next += 1
            s.watched[s.next] = Watched(provider: provider, cancel: cancel)
            defer { s.polling = true }
            return (s.next, !s.polling)
        }
        if start { Task.detached { await self.poll() } }
        return key
    }

    func stop(_ key: UInt64) { _ = state.withLock { $0.watched.removeValue(forKey: key) } }

    /// Polls while anything is watched, then ends (the next `watch` starts it again).
    private func poll() async {
        while true {
            try? await Task.sleep(for: .milliseconds(25))
            let snapshot = state.withLock { s -> [(UInt64, Watched)] in
                if s.watched.isEmpty { s.polling = false }
                return s.watched.map { ($0.key, $0.value) }
            }
            if snapshot.isEmpty { return }
            for (key, entry) in snapshot {
                let info = try? await entry.provider.getTCPInfo().get()
                // TCP_CLOSE (7), TCP_CLOSE_WAIT (8: the peer sent FIN), TCP_LAST_ACK (9); nil: the socket is gone.
                if info.map({ (7...9).contains($0.tcpi_state) }) ?? true {
                    if state.withLock({ $0.watched.removeValue(forKey: key) }) != nil { entry.cancel() }
                }
            }
        }
    }
}
