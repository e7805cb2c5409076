import Foundation

/// Runs heavy synchronous work (loading a model, tokenizing a large request) on a thread of its own, so that it
/// never occupies one of the few threads of Swift's cooperative pool.
public enum OffPool {
    public static func run<T: Sendable>(
        name: String = "mass-offpool", _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.name = name
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}
