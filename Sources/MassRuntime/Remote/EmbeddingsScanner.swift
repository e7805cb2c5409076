import Foundation

/// Reads an OpenAI embeddings answer in one pass over its bytes: the `data` items' `index` and `embedding`, and
/// `usage.prompt_tokens`; every other value is skipped (checked for well-formedness, not built). The provider's
/// vectors are most of a service-type model's per-request CPU, and Foundation's JSONDecoder spent a quarter of
/// the front's time building them (perf, benchmarks/remote-overhead.sh).
struct EmbeddingsScanner {
    struct Item {
        var index: Int?
        var embedding: [Float]?
    }

    /// The bytes, with a NUL after them so that `strtod` always stops inside the buffer.
    private let bytes: [UInt8]
    private var at = 0

    init(_ data: some Collection<UInt8>) {
        var bytes = [UInt8](data)
        bytes.append(0)
        self.bytes = bytes
    }

    static func scan(_ data: some Collection<UInt8>) throws -> (items: [Item], tokens: Int?) {
        var scanner = EmbeddingsScanner(data)
        return try scanner.answer()
    }

    private static func bad() -> RemoteFailure {
        .malformed(reason: "malformed_json", message: "the embeddings answer is not the expected JSON")
    }

    private mutating func answer() throws -> (items: [Item], tokens: Int?) {
        var items: [Item]?
        var tokens: Int?
        try object { key, scanner in
            switch key {
            case "data":
                items = []
                try scanner.array { scanner in
                    var item = Item()
                    try scanner.object { key, scanner in
                        switch key {
                        case "index": item.index = try scanner.integer()
                        case "embedding": item.embedding = try scanner.floats()
                        default: try scanner.skip()
                        }
                    }
                    items?.append(item)
                }
            case "usage":
                try scanner.object { key, scanner in
                    if key == "prompt_tokens" { tokens = try scanner.integer() } else { try scanner.skip() }
                }
            default: try scanner.skip()
            }
        }
        space()
        guard at == bytes.count - 1, let items else { throw Self.bad() }
        return (items, tokens)
    }

    // MARK: JSON

    private mutating func space() {
        while at < bytes.count, bytes[at] == 0x20 || bytes[at] == 0x0A || bytes[at] == 0x0D || bytes[at] == 0x09 {
            at += 1
        }
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        space()
        guard bytes[at] == byte else { return false }
        at += 1
        return true
    }

    private mutating func object(_ member: (String, inout EmbeddingsScanner) throws -> Void) throws {
        guard take(UInt8(ascii: "{")) else { throw Self.bad() }
        if take(UInt8(ascii: "}")) { return }
        repeat {
            space()
            let key = try string()
            guard take(UInt8(ascii: ":")) else { throw Self.bad() }
            try member(key, &self)
        } while take(UInt8(ascii: ","))
        guard take(UInt8(ascii: "}")) else { throw Self.bad() }
    }

    private mutating func array(_ element: (inout EmbeddingsScanner) throws -> Void) throws {
        guard take(UInt8(ascii: "[")) else { throw Self.bad() }
        if take(UInt8(ascii: "]")) { return }
        repeat { try element(&self) } while take(UInt8(ascii: ","))
        guard take(UInt8(ascii: "]")) else { throw Self.bad() }
    }

    /// A string: its text, unescaped by Foundation when it has escapes.
    private mutating func string() throws -> String {
        guard bytes[at] == UInt8(ascii: "\"") else { throw Self.bad() }
        let start = at
        at += 1
        var escaped = false
        while at < bytes.count - 1, bytes[at] != UInt8(ascii: "\"") {
            if bytes[at] < 0x20 { throw Self.bad() }
            if bytes[at] == UInt8(ascii: "\\") {
                escaped = true
                at += 1
            }
            at += 1
        }
        guard at < bytes.count - 1 else { throw Self.bad() }
        at += 1
        if !escaped { return String(decoding: bytes[(start + 1)..<(at - 1)], as: UTF8.self) }
        guard let text = try? JSONDecoder().decode(String.self, from: Data(bytes[start..<at])) else {
            throw Self.bad()
        }
        return text
    }

    private mutating func number() throws -> Double {
        space()
        let first = bytes[at]
        guard first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            throw Self.bad()
        }
        return try bytes.withUnsafeBufferPointer { buffer -> Double in
            let start = UnsafeMutableRawPointer(mutating: buffer.baseAddress! + at).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(start, &end)
            guard let end, end > start, value.isFinite else { throw Self.bad() }
            // strtod also reads hexadecimal and "infinity"; JSON numbers are digits, sign, point and exponent.
            for byte in buffer[at..<(at + (end - start))] {
                guard
                    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
                        || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte | 0x20 == UInt8(ascii: "e")
                else { throw Self.bad() }
            }
            at += end - start
            return value
        }
    }

    private mutating func integer() throws -> Int {
        let value = try number()
        guard value == value.rounded(), abs(value) < 1e15 else { throw Self.bad() }
        return Int(value)
    }

    private mutating func floats() throws -> [Float] {
        var values: [Float] = []
        try array { scanner in values.append(Float(try scanner.number())) }
        return values
    }

    /// Any value, checked and passed over.
    private mutating func skip() throws {
        space()
        switch bytes[at] {
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "{"): try object { _, scanner in try scanner.skip() }
        case UInt8(ascii: "["): try array { scanner in try scanner.skip() }
        case UInt8(ascii: "t"): try word("true")
        case UInt8(ascii: "f"): try word("false")
        case UInt8(ascii: "n"): try word("null")
        default: _ = try number()
        }
    }

    private mutating func word(_ text: String) throws {
        for byte in text.utf8 {
            guard bytes[at] == byte else { throw Self.bad() }
            at += 1
        }
    }
}
