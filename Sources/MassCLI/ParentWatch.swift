import Foundation

/// Ends this process when its standard input reaches end of file: a worker's training child reads a pipe its
/// worker never writes to, which the kernel closes when the worker exits or is killed.
enum ParentWatch {
    static func start() {
        let thread = Thread {
            var byte: UInt8 = 0
            while read(STDIN_FILENO, &byte, 1) > 0 {}
            FileHandle.standardError.write(Data("the worker is gone: training stops\n".utf8))
            _exit(143)
        }
        thread.name = "mass-parent-watch"
        thread.start()
    }
}
