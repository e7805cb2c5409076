import Foundation

/// Why a call to a provider did not give an answer. Messages never hold the API key: provider text is redacted
/// before it is kept (`RemoteClient.redact`).
public enum RemoteFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// No connection, or it dropped before the answer.
    case connection(String)
    /// The call outlived its timeout or the request's deadline.
    case timeout
    /// The provider answered a status other than 2xx (`retryAfter`: its Retry-After, in seconds).
    case status(Int, retryAfter: Double?, message: String)
    /// The answer is not what the API promises; `reason` is the metric label (malformed_json, wrong_count,
    /// wrong_dimension, too_large).
    case malformed(reason: String, message: String)
    /// The breaker is open: the provider is not called.
    case breakerOpen(retryIn: Double)
    /// Every in-flight slot stayed taken until the deadline.
    case saturated
    /// The API key cannot be read (names the variable or file, never a value).
    case credential(String)

    /// The metric label of the failure.
    public var reason: String {
        switch self {
        case .connection: "connection"
        case .timeout: "timeout"
        case .status(let code, _, _): code == 429 ? "status_429" : code >= 500 ? "status_5xx" : "status_4xx"
        case .malformed(let reason, _): reason
        case .breakerOpen: "breaker_open"
        case .saturated: "saturated"
        case .credential: "credential"
        }
    }

    /// Worth another call after a wait: connection errors, 429 and 502/503/504.
    public var isRetryable: Bool {
        switch self {
        case .connection: true
        case .status(let code, _, _): [429, 502, 503, 504].contains(code)
        default: false
        }
    }

    /// The request's own fault (the provider refused its input): passed to the client, never a fallback, never
    /// counted against the provider.
    public var isClientError: Bool {
        guard case .status(let code, _, _) = self else { return false }
        return [400, 413, 422].contains(code)
    }

    public var description: String {
        switch self {
        case .connection(let why): "cannot reach the provider: \(why)"
        case .timeout: "the provider did not answer in time"
        case .status(let code, _, let message):
            message.isEmpty ? "the provider answered HTTP \(code)" : "the provider answered HTTP \(code): \(message)"
        case .malformed(_, let message): "the provider's answer is malformed: \(message)"
        case .breakerOpen(let seconds):
            "the provider's circuit breaker is open (next probe in \(String(format: "%.1f", max(0, seconds))) s)"
        case .saturated: "every call slot to the provider stayed busy until the request's deadline"
        case .credential(let why): "the provider's API key is not available: \(why)"
        }
    }

    /// The error a client reads.
    func runtimeError(model: String) -> RuntimeError {
        if case .status(let code, _, let message) = self, isClientError {
            return RuntimeError(
                code == 413 ? .inputTooLong : .invalidInput, "the provider of '\(model)' refused the input: \(message)")
        }
        switch self {
        case .breakerOpen, .saturated, .credential:
            return RuntimeError(.providerUnavailable, "model '\(model)': \(description)")
        default:
            return RuntimeError(.providerFailed, "model '\(model)': \(description)")
        }
    }
}

/// When to call again: exponential backoff with full jitter, and the provider's Retry-After.
public enum RetryTiming {
    /// Seconds to wait before retry `retry` (1 for the first retry); `unit` is uniform in [0, 1).
    public static func backoff(retry: Int, policy: RemoteConfig.Retry, unit: Double) -> Double {
        let cap = min(policy.maxDelayMilliseconds, policy.baseDelayMilliseconds * pow(2, Double(max(0, retry - 1))))
        return cap * unit / 1000
    }

    /// A Retry-After value in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3); nil when unreadable.
    public static func retryAfter(_ value: String?, now: Date = Date()) -> Double? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Double(value), seconds >= 0, seconds.isFinite { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return max(0, date.timeIntervalSince(now))
    }
}
