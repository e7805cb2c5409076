/// Why a request was refused, with what the response must say: the status follows from `code`, and
/// `headers` carries the rate-limit headers (`x-ratelimit-*`, `Retry-After`) of a 429.
public struct TenancyError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// 401: no key, a malformed header, an unknown, expired or revoked key.
        case unauthenticated
        /// 403: a valid key without the role or model the request needs.
        case forbidden
        /// 429 `rate_limit_exceeded`: a short window's limit or the concurrency limit.
        case rateLimited
        /// 429 `insufficient_quota`: the budget (units) or a daily or monthly quota.
        case quotaExhausted
    }

    public let code: Code
    public let message: String
    public let headers: [(String, String)]

    public init(_ code: Code, _ message: String, headers: [(String, String)] = []) {
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var status: Int {
        switch code {
        case .unauthenticated: 401
        case .forbidden: 403
        case .rateLimited, .quotaExhausted: 429
        }
    }

    public var description: String { message }
}
