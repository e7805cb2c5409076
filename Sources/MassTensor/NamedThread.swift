internal import CMassBLAS
import Foundation

/// Threads named where the system shows them (ps -L, top -H, gdb, /proc/PID/task/TID/comm). Foundation's
/// `Thread.name` is not passed to the kernel on Linux, so every Mass thread starts through here.
public enum NamedThread {
    /// Starts a thread that names itself `name` (at most 15 bytes are kept) and runs `body`.
    public static func start(_ name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            _ = cmass_name_current_thread(name)
            body()
        }
        thread.name = name
        if let stackSize { thread.stackSize = stackSize }
        thread.start()
    }
}
