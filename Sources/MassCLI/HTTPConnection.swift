import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One blocking HTTP/1.1 keep-alive connection (plain http only), for the load generator: each of its threads
/// owns one, so concurrency is exactly the number of connections. Reconnects when the server closes.
final class HTTPConnection {
    struct Response {
        let status: Int
        let body: [UInt8]
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let host: String
    let port: Int
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    deinit { disconnect() }

    /// Parses `http://host:port` (no path; https is not supported).
    static func endpoint(_ url: String) throws -> (host: String, port: Int) {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host
        else {
            throw Failure(description: "--url must look like http://HOST:PORT (got '\(url)'; https is not supported)")
        }
        return (host, components.port ?? 80)
    }

    func post(
        _ path: String, body: [UInt8], contentType: String = "application/json", headers: [String] = []
    ) throws -> Response {
        try send("POST", path, body: body, contentType: contentType, headers: headers)
    }

    func get(_ path: String, headers: [String] = []) throws -> Response {
        try send("GET", path, body: [], contentType: "application/json", headers: headers)
    }

    private func send(
        _ method: String, _ path: String, body: [UInt8], contentType: String, headers: [String]
    ) throws -> Response {
        let extra = headers.map { $0 + "\r\n" }.joined()
        var lastError: (any Error)?
        for _ in 0..<2 {  // a kept-alive connection the server closed gets one retry on a new one
            do {
                if fd < 0 { try connect() }
                let head =
                    "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\(extra)\r\n"
                try send(Array(head.utf8) + body)
                return try readResponse()
            } catch {
                lastError = error
                disconnect()
            }
        }
        throw lastError!
    }

    private func connect() throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw Failure(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let e = entry {
            let s = socket(e.pointee.ai_family, e.pointee.ai_socktype, e.pointee.ai_protocol)
            if s >= 0 {
                if Glibc.connect(s, e.pointee.ai_addr, e.pointee.ai_addrlen) == 0 {
                    var one: Int32 = 1
                    setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    fd = s
                    buffer.removeAll(keepingCapacity: true)
                    return
                }
                close(s)
            }
            entry = e.pointee.ai_next
        }
        throw Failure(description: "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))")
    }

    private func disconnect() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    private func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
            guard n > 0 else { throw Failure(description: "send failed: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    /// Reads more bytes into the buffer; throws when the connection closed.
    private func fill() throws {
        let n = recv(fd, &chunk, chunk.count, 0)
        guard n > 0 else { throw Failure(description: "the server closed the connection") }
        buffer.append(contentsOf: chunk[0..<n])
    }

    private func readLine() throws -> String {
        while true {
            if let i = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[0..<i], as: UTF8.self)
                buffer.removeFirst(i + 1)
                return line.hasSuffix("\r") ? String(line.dropLast()) : line
            }
            try fill()
        }
    }

    private func readBytes(_ n: Int) throws -> [UInt8] {
        while buffer.count < n { try fill() }
        let bytes = Array(buffer[0..<n])
        buffer.removeFirst(n)
        return bytes
    }

    private func readResponse() throws -> Response {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure(description: "not an HTTP response: '\(statusLine.prefix(80))'")
        }
        var length: Int?
        var chunked = false
        var close = false
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces).lowercased()
            if name == "content-length" { length = Int(value) }
            if name == "transfer-encoding" && value.contains("chunked") { chunked = true }
            if name == "connection" && value == "close" { close = true }
        }
        var body: [UInt8] = []
        if chunked {
            while true {
                let size = Int(try readLine().split(separator: ";")[0], radix: 16) ?? 0
                if size == 0 {
                    while try !readLine().isEmpty {}
                    break
                }
                body += try readBytes(size)
                _ = try readLine()
            }
        } else if let length {
            body = try readBytes(length)
        }
        if close { disconnect() }
        return Response(status: status, body: body)
    }
}
