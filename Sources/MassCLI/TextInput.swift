import Foundation

/// Reads texts for the embedding commands: one per line, UTF-8, "\n" or "\r\n" line ends.
enum TextInput {
    /// Splits `data` into lines; a final line end does not start an empty line. Throws on invalid UTF-8,
    /// naming the line (1-based).
    static func lines(_ data: Data, source: String) throws -> [String] {
        var lines: [String] = []
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            var number = 1
            func emit(_ end: Int) throws {
                var stop = end
                if stop > start && bytes[stop - 1] == 13 { stop -= 1 }
                guard let line = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<stop]), as: UTF8.self)
                else { throw CLIError("\(source) line \(number) is not valid UTF-8") }
                lines.append(line)
                number += 1
            }
            for i in 0..<bytes.count where bytes[i] == 10 {
                try emit(i)
                start = i + 1
            }
            if start < bytes.count { try emit(bytes.count) }
        }
        return lines
    }
}
