import Foundation

/// Ends this process when its standard input reaches end of file: a worker's training child reads a pipe its
/// worker never writes to (except a study's verdicts), which the kernel closes when the worker exits or is killed.
enum ParentWatch {
    /// The worker's verdicts on a trial's reports, one line each: "continue" or "prune".
    private static let verdicts = Verdicts()

    static func start() {
        let thread = Thread {
            var byte: UInt8 = 0
            var line: [UInt8] = []
            while read(STDIN_FILENO, &byte, 1) > 0 {
                if byte == 10 {
                    verdicts.put(String(decoding: line, as: UTF8.self))
                    line = []
                } else {
                    line.append(byte)
                }
            }
            FileHandle.standardError.write(Data("the worker is gone: training stops\n".utf8))
            _exit(143)
        }
        thread.name = "mass-parent-watch"
        thread.start()
    }

    /// Waits for the worker's verdict on the report just printed: true to stop (the pruner's word). A worker that
    /// does not answer within `timeout` seconds (its database away) lets the trial go on.
    static func awaitVerdict(timeout: Double = 120) -> Bool { verdicts.take(timeout: timeout) == "prune" }

    private final class Verdicts: @unchecked Sendable {
        private let condition = NSCondition()
        private var pending: [String] = []

        func put(_ verdict: String) {
            condition.lock()
            pending.append(verdict)
            condition.signal()
            condition.unlock()
        }

        func take(timeout: Double) -> String? {
            condition.lock()
            defer { condition.unlock() }
            let deadline = Date().addingTimeInterval(timeout)
            while pending.isEmpty {
                if !condition.wait(until: deadline) { return nil }
            }
            return pending.removeFirst()
        }
    }
}
