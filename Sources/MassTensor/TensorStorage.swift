import Foundation

/// The bytes behind a tensor: either an owned, 64-byte aligned allocation or a view into memory that another
/// object keeps alive (a memory-mapped checkpoint).
///
/// Thread safety: storage is written only while its tensor is being built (by one thread), then read-only;
/// model weights are shared between compute threads after loading, which is why this is `@unchecked Sendable`.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    private let owner: AnyObject?
    private let owned: Bool

    /// Allocates `byteCount` zeroed bytes aligned to 64 bytes (a cache line, and AVX-512 width).
    public init(zeroedByteCount byteCount: Int) {
        let size = max(byteCount, 1)
        pointer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        self.byteCount = byteCount
        owner = nil
        owned = true
    }

    /// A view of `byteCount` bytes at `pointer`, valid while `owner` is alive. Never written through.
    public init(borrowing pointer: UnsafeRawPointer, byteCount: Int, owner: AnyObject) {
        self.pointer = UnsafeMutableRawPointer(mutating: pointer)
        self.byteCount = byteCount
        self.owner = owner
        owned = false
    }

    deinit {
        if owned { pointer.deallocate() }
    }
}
