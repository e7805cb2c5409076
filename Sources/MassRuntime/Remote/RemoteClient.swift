import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// Calls one provider: a pooled keep-alive HTTP client, the bound on calls in flight, the circuit breaker,
/// retries with backoff inside the request's deadline, optional hedging, and the provider's metrics
/// (`mass_remote_*`, labelled by the Mass model's name). The API key is sent as a bearer token and is never
/// logged, counted or put in an error: provider text is redacted before it is kept.
final class RemoteClient: Sendable {
    /// A 2xx answer's body.
    struct Answer: Sendable {
        let body: ByteBuffer
    }

    let name: String
    let config: RemoteConfig
    private let http: HTTPClient
    private let key: Result<String?, RemoteFailure>
    private let breaker: Mutex<CircuitBreaker>
    private let slots: InFlightLimit
    private let metrics: MetricsRegistry?
    /// Called with true when the breaker opens and false when it closes again.
    private let onBreaker: @Sendable (Bool, String) -> Void
    private let origin = ContinuousClock.now

    init(
        name: String, config: RemoteConfig, key: Result<String?, RemoteFailure>, metrics: MetricsRegistry?,
        onBreaker: @escaping @Sendable (Bool, String) -> Void
    ) {
        self.name = name
        self.config = config
        self.key = key
        self.metrics = metrics
        self.onBreaker = onBreaker
        breaker = Mutex(CircuitBreaker(policy: config.breaker))
        slots = InFlightLimit(config.maxInFlight)
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: .milliseconds(Int64(config.connectTimeoutMilliseconds))),
            connectionPool: .init(
                idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: config.maxInFlight))
        configuration.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        metrics?.set("mass_remote_breaker_state", 0, labels: [("model", name)], help: Self.breakerHelp)
    }

    static let breakerHelp = "Circuit breaker of a service-type model's provider: 0 closed, 1 half-open, 2 open."

    func shutdown() async { try? await http.shutdown() }

    /// Replaces every occurrence of the API key in provider text, and keeps it short.
    func redact(_ text: String) -> String {
        var text = String(text.prefix(300))
        if case .success(let key?) = key, key.count >= 4 {
            text = text.replacingOccurrences(of: key, with: "[redacted]")
        }
        return text
    }

    /// POSTs `body` to `path` (relative to the base URL) with retries until `deadline`; the 2xx answer's body.
    func post(
        _ path: String, body: ByteBuffer, contentType: String = "application/json",
        deadline: ContinuousClock.Instant, retries: Bool = true
    ) async throws -> Answer {
        let key = try self.key.get()
        let attempts = retries ? config.retry.attempts : 1
        var last: RemoteFailure = .timeout
        for attempt in 1...attempts {
            try Task.checkCancellation()
            let admission = breaker.withLock { $0.admit(now: now()) }
            if case .refused(let seconds) = admission {
                throw attempt == 1 ? RemoteFailure.breakerOpen(retryIn: seconds) : last
            }
            let probe = admission == .probe
            guard await slots.acquire(until: deadline) else {
                breaker.withLock { $0.abandon(probe: probe) }
                try Task.checkCancellation()
                throw attempt == 1 ? RemoteFailure.saturated : last
            }
            let outcome: Result<Answer, RemoteFailure>
            do {
                outcome = try await hedged(path, body: body, contentType: contentType, key: key, deadline: deadline)
                // The caller went away (client disconnected): its outcome says nothing about the provider.
                try Task.checkCancellation()
            } catch {
                slots.release()
                breaker.withLock { $0.abandon(probe: probe) }
                throw error
            }
            slots.release()
            let failure: RemoteFailure?
            if case .failure(let f) = outcome { failure = f } else { failure = nil }
            record(failure, probe: probe)
            switch outcome {
            case .success(let answer): return answer
            case .failure(let failure):
                last = failure
                guard failure.isRetryable, attempt < attempts else { throw failure }
                var wait = RetryTiming.backoff(retry: attempt, policy: config.retry, unit: Double.random(in: 0..<1))
                if case .status(429, let retryAfter?, _) = failure {
                    guard retryAfter * 1000 <= config.retry.maxRetryAfterMilliseconds else { throw failure }
                    wait = retryAfter
                }
                guard ContinuousClock.now.advanced(by: .seconds(wait)) < deadline else { throw failure }
                metrics?.add(
                    "mass_remote_retries_total", labels: [("model", name)],
                    help: "Calls to a service-type model's provider made again after a retryable failure.")
                try await Task.sleep(for: .seconds(wait))
            }
        }
        throw last
    }

    /// One attempt: a call, and a second one when the first is slower than `hedge_after_ms`; the first success
    /// wins and the other is cancelled.
    private func hedged(
        _ path: String, body: ByteBuffer, contentType: String, key: String?, deadline: ContinuousClock.Instant
    ) async throws -> Result<Answer, RemoteFailure> {
        guard let hedge = config.hedgeAfterMilliseconds else {
            return await once(path, body: body, contentType: contentType, key: key, deadline: deadline)
        }
        let hedging = Flag()
        return try await withThrowingTaskGroup(of: Result<Answer, RemoteFailure>?.self) { group in
            group.addTask { await self.once(path, body: body, contentType: contentType, key: key, deadline: deadline) }
            group.addTask {
                try await Task.sleep(for: .milliseconds(hedge))
                guard self.slots.tryAcquire() else { return nil }
                defer { self.slots.release() }
                hedging.value.withLock { $0 = true }
                self.metrics?.add(
                    "mass_remote_hedges_total", labels: [("model", self.name)],
                    help: "Second calls made because the first was slower than hedge_after_ms.")
                return await self.once(path, body: body, contentType: contentType, key: key, deadline: deadline)
            }
            var failure: RemoteFailure?
            var pending = 2
            while let next = try await group.next() {
                pending -= 1
                switch next {
                case .success(let answer)?:
                    group.cancelAll()
                    return .success(answer)
                case .failure(let f)?:
                    failure = failure ?? f
                    // The first call failed before a hedge was made: no hedge (the retry loop decides).
                    if pending > 0, !hedging.value.withLock({ $0 }) {
                        group.cancelAll()
                        return .failure(f)
                    }
                case nil: break
                }
            }
            return .failure(failure ?? .timeout)
        }
    }

    private final class Flag: Sendable { let value = Mutex(false) }

    /// One HTTP call, bounded by the call timeout and the deadline.
    private func once(
        _ path: String, body: ByteBuffer, contentType: String, key: String?, deadline: ContinuousClock.Instant
    ) async -> Result<Answer, RemoteFailure> {
        let started = ContinuousClock.now
        let budget = min(
            Duration.milliseconds(config.callTimeoutMilliseconds), deadline - started)
        guard budget > .zero else { return .failure(.timeout) }
        var request = HTTPClientRequest(url: url(path))
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        request.headers.add(name: "Accept", value: "application/json")
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        request.body = .bytes(body)
        let outcome: Result<Answer, RemoteFailure>
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(Int64(budget.inSeconds * 1e9)))
            let bytes: ByteBuffer
            do {
                bytes = try await response.body.collect(upTo: config.maxResponseBytes)
            } catch is NIOTooManyBytesError {
                throw RemoteFailure.malformed(
                    reason: "too_large", message: "the answer is over \(config.maxResponseBytes) bytes")
            }
            if (200..<300).contains(response.status.code) {
                outcome = .success(Answer(body: bytes))
            } else {
                let code = Int(response.status.code)
                outcome = .failure(
                    .status(
                        code, retryAfter: RetryTiming.retryAfter(response.headers.first(name: "Retry-After")),
                        message: redact(Self.message(bytes))))
            }
        } catch let failure as RemoteFailure {
            outcome = .failure(failure)
        } catch {
            outcome = .failure(classify(error))
        }
        count(outcome, seconds: (ContinuousClock.now - started).inSeconds, cancelled: Task.isCancelled)
        return outcome
    }

    private func classify(_ error: any Error) -> RemoteFailure {
        if let e = error as? HTTPClientError,
            [.deadlineExceeded, .readTimeout, .writeTimeout].contains(e)
        {
            return .timeout
        }
        if error is CancellationError { return .timeout }
        return .connection(redact(String(describing: error)))
    }

    private func count(_ outcome: Result<Answer, RemoteFailure>, seconds: Double, cancelled: Bool) {
        guard let metrics else { return }
        let label: String
        switch outcome {
        case .failure where cancelled: label = "cancelled"
        case .success: label = "2xx"
        case .failure(.status(let code, _, _)): label = "\(code / 100)xx"
        case .failure(let f): label = f.reason
        }
        metrics.add(
            "mass_remote_calls_total", labels: [("model", name), ("outcome", label)],
            help: "Calls to a service-type model's provider by outcome: status class, connection, timeout.")
        metrics.observe(
            "mass_remote_call_seconds", seconds, labels: [("model", name)],
            help: "Time of one call to a service-type model's provider.")
    }

    /// Feeds the breaker; a client error (the provider refused the input) is the provider working.
    private func record(_ failure: RemoteFailure?, probe: Bool) {
        let success = failure == nil || failure!.isClientError
        let (before, after) = breaker.withLock { b -> (CircuitBreaker.State, CircuitBreaker.State) in
            let before = b.state
            b.record(success: success, probe: probe, now: now())
            return (before, b.state)
        }
        guard before.gauge != after.gauge else { return }
        metrics?.set("mass_remote_breaker_state", after.gauge, labels: [("model", name)], help: Self.breakerHelp)
        if case .open = after {
            metrics?.add(
                "mass_remote_breaker_opens_total", labels: [("model", name)],
                help: "Times a service-type model's circuit breaker opened.")
            onBreaker(true, failure.map(\.description) ?? "")
        } else if case .closed = after {
            onBreaker(false, "")
        }
    }

    private func url(_ path: String) -> String {
        var base = config.url.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        return base + path
    }

    private func now() -> Double { (ContinuousClock.now - origin).inSeconds }

    /// The provider's error message: OpenAI's `error.message`, TEI's `error`, KServe's `error`, else the text.
    static func message(_ body: ByteBuffer) -> String {
        let data = Data(body.readableBytesView)
        if let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            if let error = json["error"] as? [String: Any], let message = error["message"] as? String {
                return message
            }
            if let error = json["error"] as? String { return error }
            if let message = json["message"] as? String { return message }
        }
        return String(decoding: data.prefix(300), as: UTF8.self)
    }
}
