import ArgumentParser
import Foundation
import Synchronization

/// A closed-loop HTTP load generator in the spirit of Triton's perf_analyzer: `concurrency` connections each send
/// a request, wait for its answer and send the next, for a warm-up period and then `duration` seconds.
struct BenchHTTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Load a server over HTTP: throughput, latency percentiles and errors.",
        discussion: """
            Works against any server that speaks the OpenAI embeddings API (--api openai, the default), KServe v2 \
            (--api kserve), Mass's image classification route (--api images) or OpenAI's transcription route \
            (--api transcriptions), Mass or not. Each connection is a keep-alive HTTP/1.1 connection on its own thread. \
            Requests that complete during the timed window count; latency is measured from send to the last byte.
            """)

    enum API: String, ExpressibleByArgument, CaseIterable { case openai, kserve, images, transcriptions }

    @Option(name: .long, help: "Server address, http://HOST:PORT.")
    var url = "http://127.0.0.1:8080"

    @Option(name: .long, help: "Model name as the server knows it.")
    var model: String

    @Option(name: .long, help: "Connections with one request in flight each.")
    var concurrency = 1

    @Option(name: .long, help: "Timed seconds.")
    var duration = 10.0

    @Option(name: .long, help: "Untimed seconds first.")
    var warmup = 2.0

    @Option(
        name: .long,
        help:
            "Request shape: openai (/v1/embeddings), kserve (/v2/models/M/infer), images (multipart to /v1/images/classifications) or transcriptions (multipart to /v1/audio/transcriptions)."
    )
    var api: API = .openai

    @Option(
        name: [.customLong("image"), .customLong("audio")],
        help: "An image (--api images) or audio file (--api transcriptions); repeat for several, sent in turn.")
    var files: [String] = []

    var sendsFiles: Bool { api == .images || api == .transcriptions }

    @Option(name: .long, help: "Request path, when the server mounts the API elsewhere (e.g. /embeddings).")
    var path: String?

    @Option(name: .long, help: "Texts, one per line, sent in turn (default: 8 built-in sentences).")
    var input: String?

    @Option(name: .long, help: "Texts per request.")
    var batch = 1

    @Option(name: .long, help: "A request header, 'Name: value' (repeatable; e.g. 'Authorization: Bearer mass_...').")
    var header: [String] = []

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    @Option(
        name: .long,
        help:
            "Seconds between the starts of a connection's requests (a light, paced load, e.g. 0.2); default: back to back."
    )
    var interval: Double?

    @Option(
        name: .long,
        help:
            "Process id of the server (on this machine): report its CPU time per request over the timed window, from /proc."
    )
    var serverPid: Int32?

    func validate() throws {
        guard concurrency >= 1, concurrency <= 1024 else { throw ValidationError("--concurrency must be 1-1024") }
        guard duration > 0, warmup >= 0 else { throw ValidationError("--duration must be > 0, --warmup >= 0") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        for h in header where !h.contains(":") || h.contains("\r") || h.contains("\n") {
            throw ValidationError("--header '\(h)' must be 'Name: value' on one line")
        }
        if let interval, !(interval > 0) { throw ValidationError("--interval must be > 0 seconds") }
        if let serverPid, ProcessCPU.seconds(pid: serverPid) == nil {
            throw ValidationError("--server-pid \(serverPid): no such process (or /proc/\(serverPid)/stat unreadable)")
        }
        guard !sendsFiles || !files.isEmpty else {
            throw ValidationError("--api \(api.rawValue) needs --\(api == .images ? "image" : "audio") FILE")
        }
    }

    static let sentences = [
        "Hello world", "A man is eating food.", "The new movie is awesome and I would watch it again.",
        "Two dogs play in the snow near a frozen lake while their owners watch from a bench.",
        "How do I reset my password?", "The quarterly report shows revenue growth in every region but one.",
        "Il pleut à Paris.", "Machine learning models need careful evaluation before they go into production.",
    ]

    func run() throws {
        let endpoint = try HTTPConnection.endpoint(url)
        var texts = Self.sentences
        if let input {
            texts = try TextInput.lines(try Data(contentsOf: URL(fileURLWithPath: input)), source: input)
            guard !texts.isEmpty else { throw CLIError("\(input) has no lines") }
        }
        let boundary = "mass-bench-boundary-7d1c"
        let bodies =
            sendsFiles
            ? try files.map { try multipart(Array(Data(contentsOf: URL(fileURLWithPath: $0))), boundary: boundary) }
            : (0..<texts.count).map { i in body((0..<batch).map { texts[(i * batch + $0) % texts.count] }) }
        let contentType = sendsFiles ? "multipart/form-data; boundary=\(boundary)" : "application/json"
        let route =
            path
            ?? {
                switch api {
                case .openai: "/v1/embeddings"
                case .kserve: "/v2/models/\(model)/infer"
                case .images: "/v1/images/classifications"
                case .transcriptions: "/v1/audio/transcriptions"
                }
            }()
        try checkOnce(endpoint, route: route, body: bodies[0], contentType: contentType)

        let next = Atomic<Int>(0)
        let results = Mutex<[(latency: Double, status: Int)]>([])
        let failures = Mutex<[String: Int]>([:])
        let start = Date()
        let windowStart = warmup
        let windowEnd = warmup + duration
        let cpu = Mutex<(start: Double?, end: Double?)>((nil, nil))
        if let serverPid {
            // The server's CPU time at the window's edges, read on a thread of its own.
            let sampler = Thread {
                Thread.sleep(until: start.addingTimeInterval(windowStart))
                let first = ProcessCPU.seconds(pid: serverPid)
                Thread.sleep(until: start.addingTimeInterval(windowEnd))
                let last = ProcessCPU.seconds(pid: serverPid)
                cpu.withLock { $0 = (first, last) }
            }
            sampler.start()
        }
        let group = DispatchGroup()
        for index in 0..<concurrency {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                let connection = HTTPConnection(host: endpoint.host, port: endpoint.port)
                var local: [(Double, Int)] = []
                // Paced connections start spread over one interval, so that they do not arrive together.
                var due = start.addingTimeInterval((interval ?? 0) * Double(index) / Double(concurrency))
                while Date().timeIntervalSince(start) < windowEnd {
                    if let interval {
                        Thread.sleep(until: due)
                        due = max(due.addingTimeInterval(interval), Date())
                        if Date().timeIntervalSince(start) >= windowEnd { break }
                    }
                    let body = bodies[next.wrappingAdd(1, ordering: .relaxed).oldValue % bodies.count]
                    let sent = Date()
                    let status: Int
                    do {
                        status = try connection.post(route, body: body, contentType: contentType, headers: header)
                            .status
                    } catch {
                        failures.withLock { $0[String(describing: error), default: 0] += 1 }
                        Thread.sleep(forTimeInterval: 0.01)
                        continue
                    }
                    let done = Date().timeIntervalSince(start)
                    if done >= windowStart && done <= windowEnd {
                        local.append((Date().timeIntervalSince(sent), status))
                    }
                }
                results.withLock { $0 += local.map { (latency: $0.0, status: $0.1) } }
            }
            thread.name = "mass-load-\(index)"
            thread.start()
        }
        group.wait()
        // The sampler's last reading is taken at the window's end, which the connections have passed.
        while serverPid != nil && cpu.withLock({ $0.end == nil }) { Thread.sleep(forTimeInterval: 0.01) }
        let window = cpu.withLock { $0 }
        let serverCPU = window.start.flatMap { a in window.end.map { $0 - a } }
        report(results.withLock { $0 }, failures: failures.withLock { $0 }, route: route, serverCPU: serverCPU)
    }

    /// A multipart form with the model name and one file.
    private func multipart(_ file: [UInt8], boundary: String) -> [UInt8] {
        Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n\(model)\r\n".utf8)
            + Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\n\r\n".utf8)
            + file + Array("\r\n--\(boundary)--\r\n".utf8)
    }

    private func body(_ texts: [String]) -> [UInt8] {
        let object: [String: Any]
        switch api {
        case .openai: object = ["model": model, "input": batch == 1 ? texts[0] as Any : texts]
        case .kserve, .images, .transcriptions:
            object = ["inputs": [["name": "text", "datatype": "BYTES", "shape": [texts.count], "data": texts]]]
        }
        return Array(try! JSONSerialization.data(withJSONObject: object))
    }

    /// One request before the clock starts: a wrong URL, model or API fails here with the server's answer.
    private func checkOnce(
        _ endpoint: (host: String, port: Int), route: String, body: [UInt8], contentType: String
    ) throws {
        let connection = HTTPConnection(host: endpoint.host, port: endpoint.port)
        let response = try connection.post(route, body: body, contentType: contentType, headers: header)
        guard response.status == 200 else {
            throw CLIError(
                "\(url)\(route) answered \(response.status): \(String(decoding: response.body.prefix(300), as: UTF8.self))"
            )
        }
    }

    private func report(
        _ results: [(latency: Double, status: Int)], failures: [String: Int], route: String, serverCPU: Double?
    ) {
        let ok = results.filter { $0.status == 200 }.map(\.latency).sorted()
        var errors: [String: Int] = failures
        for r in results where r.status != 200 { errors["HTTP \(r.status)", default: 0] += 1 }
        func percentile(_ p: Double) -> Double {  // nearest rank, in ms
            guard !ok.isEmpty else { return 0 }
            let rank = max(1, Int((p * Double(ok.count)).rounded(.up)))
            return ok[min(ok.count, rank) - 1] * 1000
        }
        let rps = Double(ok.count) / duration
        // CPU seconds over the window per request answered in it (the server's every thread, user + system).
        let cpuPerRequest = serverCPU.map { ok.isEmpty ? 0 : $0 / Double(ok.count) * 1000 }
        var summary: [String: Any] = [
            "url": url + route, "model": model, "api": api.rawValue, "concurrency": concurrency, "duration_s": duration,
            "texts_per_request": sendsFiles ? 1 : batch, "requests": ok.count, "requests_per_s": rps,
            "texts_per_s": rps * Double(batch),
            "latency_ms": [
                "p50": percentile(0.5), "p90": percentile(0.9), "p99": percentile(0.99),
                "max": (ok.last ?? 0) * 1000, "mean": ok.isEmpty ? 0 : ok.reduce(0, +) / Double(ok.count) * 1000,
            ],
            "errors": errors,
        ]
        if let interval { summary["interval_s"] = interval }
        if let serverCPU, let cpuPerRequest {
            summary["server_cpu_s"] = serverCPU
            summary["server_cpu_ms_per_request"] = cpuPerRequest
        }
        if json {
            let data = try! JSONSerialization.data(
                withJSONObject: summary, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let unit = api == .images ? "1 image" : api == .transcriptions ? "1 audio file" : "\(batch) text(s)"
        print("\(url)\(route)  model \(model)  concurrency \(concurrency)  \(unit)/request  \(duration) s")
        print(
            String(
                format: "  %.1f requests/s  %.1f inputs/s  (%d requests)", rps,
                rps * Double(sendsFiles ? 1 : batch), ok.count))
        print(
            String(
                format: "  latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f", percentile(0.5), percentile(0.9),
                percentile(0.99), (ok.last ?? 0) * 1000))
        if let serverCPU, let cpuPerRequest {
            print(
                String(
                    format: "  server CPU: %.3f s in the window, %.2f ms per request (%.0f%% of one core)", serverCPU,
                    cpuPerRequest, serverCPU / duration * 100))
        }
        let errorCount = errors.values.reduce(0, +)
        print("  errors: \(errorCount)" + (errors.isEmpty ? "" : "  \(errors)"))
    }
}

/// CPU time of a process of this machine, from `/proc/PID/stat` (Linux).
enum ProcessCPU {
    /// User plus system seconds of every thread of `pid`, or nil when it cannot be read.
    static func seconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm)": state is field 3; utime and stime are fields 14 and 15, in clock ticks.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
