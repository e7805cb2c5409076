import Foundation

/// A customer of the service: who keys belong to, whose plan applies, whose usage is metered.
public struct Tenant: Codable, Sendable, Equatable {
    public var name: String
    /// The plan that limits the tenant (nil: unlimited).
    public var plan: String?
    public var description: String?
    /// Milliseconds since 1970.
    public var createdAt: Int

    enum CodingKeys: String, CodingKey {
        case name, plan, description
        case createdAt = "created_at"
    }
}

/// One limit of a plan: at most `limit` of `kind` per `window`.
public struct PlanLimit: Codable, Sendable, Equatable {
    /// `requests`, `tokens`, `audio_seconds`, `images` or `units` (the budget, priced by the plan's `prices`).
    public var kind: String
    public var limit: Double
    /// `second`, `minute`, `hour`, `day`, `month` (calendar months, UTC) or a number of seconds such as `10s`.
    /// Windows are aligned to the clock (UTC): a minute window resets on the minute.
    public var window: String

    public init(kind: String, limit: Double, window: String) {
        self.kind = kind
        self.limit = limit
        self.window = window
    }

    public static let kinds: Set<String> = ["requests", "tokens", "audio_seconds", "images", "units"]
}

/// Limits applied to one scope (the tenant, each of its keys, or the tenant's use of one model).
public struct PlanScope: Codable, Sendable, Equatable {
    public var limits: [PlanLimit]
    /// Requests of the scope in flight at once.
    public var maxConcurrent: Int?

    public init(limits: [PlanLimit] = [], maxConcurrent: Int? = nil) {
        self.limits = limits
        self.maxConcurrent = maxConcurrent
    }

    enum CodingKeys: String, CodingKey {
        case limits
        case maxConcurrent = "max_concurrent"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        limits = try c.decodeIfPresent([PlanLimit].self, forKey: .limits) ?? []
        maxConcurrent = try c.decodeIfPresent(Int.self, forKey: .maxConcurrent)
    }
}

/// What a plan allows, and the share of the machine it buys.
public struct PlanSpec: Codable, Sendable, Equatable {
    /// Tenant-wide limits.
    public var limits: [PlanLimit]
    public var maxConcurrent: Int?
    /// Limits applied to each key of the tenant separately.
    public var perKey: PlanScope?
    /// Limits on the tenant's use of one model (by served name).
    public var models: [String: PlanScope]
    /// Units charged per unit of each kind (for `units` limits and the usage's `units`); defaults in
    /// `PlanSpec.defaultPrices`.
    public var prices: [String: Double]
    /// The tenant's weight in each model's queue (fair scheduling): twice the weight, twice the share.
    public var weight: Double
    /// `interactive` (default) or `batch`: batch requests are served after waiting interactive ones.
    public var priority: String

    public static let defaultPrices: [String: Double] = ["tokens": 1, "audio_seconds": 50, "images": 20]

    public init(
        limits: [PlanLimit] = [], maxConcurrent: Int? = nil, perKey: PlanScope? = nil,
        models: [String: PlanScope] = [:], prices: [String: Double] = [:], weight: Double = 1,
        priority: String = "interactive"
    ) {
        self.limits = limits
        self.maxConcurrent = maxConcurrent
        self.perKey = perKey
        self.models = models
        self.prices = prices
        self.weight = weight
        self.priority = priority
    }

    /// The units one unit of `kind` costs.
    public func price(_ kind: String) -> Double { prices[kind] ?? Self.defaultPrices[kind] ?? 0 }

    enum CodingKeys: String, CodingKey {
        case limits, models, prices, weight, priority
        case maxConcurrent = "max_concurrent"
        case perKey = "per_key"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        limits = try c.decodeIfPresent([PlanLimit].self, forKey: .limits) ?? []
        maxConcurrent = try c.decodeIfPresent(Int.self, forKey: .maxConcurrent)
        perKey = try c.decodeIfPresent(PlanScope.self, forKey: .perKey)
        models = try c.decodeIfPresent([String: PlanScope].self, forKey: .models) ?? [:]
        prices = try c.decodeIfPresent([String: Double].self, forKey: .prices) ?? [:]
        weight = try c.decodeIfPresent(Double.self, forKey: .weight) ?? 1
        priority = try c.decodeIfPresent(String.self, forKey: .priority) ?? "interactive"
    }

    /// Rejects what cannot be enforced: unknown kinds and windows, negative limits, a weight of 0.
    public func validate() throws {
        func check(_ scope: [PlanLimit], _ where_: String) throws {
            for limit in scope {
                guard PlanLimit.kinds.contains(limit.kind) else {
                    throw RegistryError(
                        .invalid,
                        "\(where_): unknown limit kind '\(limit.kind)' (requests, tokens, audio_seconds, images, units)"
                    )
                }
                guard limit.limit >= 0, limit.limit.isFinite else {
                    throw RegistryError(.invalid, "\(where_): the \(limit.kind) limit must be a number >= 0")
                }
                guard LimitWindow(limit.window) != nil else {
                    throw RegistryError(
                        .invalid,
                        "\(where_): window '\(limit.window)' must be second, minute, hour, day, month or a number of seconds like 10s"
                    )
                }
            }
        }
        func check(concurrency: Int?, _ where_: String) throws {
            if let n = concurrency, n < 1 {
                throw RegistryError(.invalid, "\(where_): max_concurrent must be at least 1")
            }
        }
        try check(limits, "limits")
        try check(concurrency: maxConcurrent, "the plan")
        if let perKey {
            try check(perKey.limits, "per_key")
            try check(concurrency: perKey.maxConcurrent, "per_key")
        }
        for (model, scope) in models {
            try check(scope.limits, "models.\(model)")
            try check(concurrency: scope.maxConcurrent, "models.\(model)")
        }
        guard weight > 0, weight.isFinite else { throw RegistryError(.invalid, "the plan's weight must be > 0") }
        guard priority == "interactive" || priority == "batch" else {
            throw RegistryError(.invalid, "the plan's priority must be \"interactive\" or \"batch\"")
        }
        for (kind, price) in prices where !PlanLimit.kinds.contains(kind) || price < 0 || !price.isFinite {
            throw RegistryError(.invalid, "prices.\(kind): a known kind with a price >= 0")
        }
    }
}

/// A named plan.
public struct Plan: Codable, Sendable, Equatable {
    public var name: String
    public var spec: PlanSpec
    public var updatedAt: Int

    enum CodingKeys: String, CodingKey {
        case name, spec
        case updatedAt = "updated_at"
    }
}

/// A window of a limit, aligned to the clock.
public enum LimitWindow: Sendable, Hashable {
    case seconds(Int)
    case month

    public init?(_ text: String) {
        switch text {
        case "second": self = .seconds(1)
        case "minute": self = .seconds(60)
        case "hour": self = .seconds(3600)
        case "day": self = .seconds(86400)
        case "month": self = .month
        default:
            guard text.hasSuffix("s"), let n = Int(text.dropLast()), n >= 1, n <= 31 * 86400 else { return nil }
            self = .seconds(n)
        }
    }

    /// The window holding `time` (seconds since 1970): its start and its end.
    public func bounds(at time: Double) -> (start: Double, end: Double) {
        switch self {
        case .seconds(let n):
            let start = (time / Double(n)).rounded(.down) * Double(n)
            return (start, start + Double(n))
        case .month:
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let date = Date(timeIntervalSince1970: time)
            let start = calendar.dateInterval(of: .month, for: date)!
            return (start.start.timeIntervalSince1970, start.end.timeIntervalSince1970)
        }
    }
}

/// An API key as listed: everything but its secret, which is shown once and stored only as a hash.
public struct APIKey: Codable, Sendable, Equatable {
    /// The key's first characters (`mass_` and 8 hex digits): its name in listings, logs and usage.
    public var prefix: String
    public var tenant: String
    public var name: String?
    /// `inference`, `admin`.
    public var roles: [String]
    /// The models (served names) it may call; nil: all.
    public var models: [String]?
    /// A plan applied to this key on top of the tenant's.
    public var plan: String?
    public var createdAt: Int
    public var expiresAt: Int?
    public var revokedAt: Int?

    enum CodingKeys: String, CodingKey {
        case prefix, tenant, name, roles, models, plan
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case revokedAt = "revoked_at"
    }

    public static let roles: Set<String> = ["inference", "admin"]
}

/// Everything a server needs to authenticate and limit requests, read in one transaction.
public struct TenancySnapshot: Sendable {
    public var tenants: [Tenant]
    public var plans: [Plan]
    /// Each key with the sha256 (hex) of its secret.
    public var keys: [(key: APIKey, hash: String)]
    /// The change counter this snapshot is at.
    public var version: Int
}

/// One metered request.
public struct UsageRecord: Codable, Sendable, Equatable {
    /// Unique per request: a retried write of the same record is ignored.
    public var id: String
    /// Milliseconds since 1970 (when the request arrived).
    public var at: Int
    public var tenant: String
    public var keyPrefix: String
    public var model: String
    public var version: Int?
    public var route: String
    public var status: Int
    public var requests: Int
    public var tokens: Int
    public var audioSeconds: Double
    public var images: Int
    public var units: Double
    public var queueMs: Double
    public var computeMs: Double

    /// The `usage` table's columns, in the order of the fields above.
    static let columns = [
        "id", "at", "tenant", "key_prefix", "model", "version", "route", "status", "requests", "tokens",
        "audio_seconds", "images", "units", "queue_ms", "compute_ms",
    ]

    public init(
        id: String, at: Int, tenant: String, keyPrefix: String, model: String, version: Int?, route: String,
        status: Int, requests: Int = 1, tokens: Int = 0, audioSeconds: Double = 0, images: Int = 0,
        units: Double = 0, queueMs: Double = 0, computeMs: Double = 0
    ) {
        self.id = id
        self.at = at
        self.tenant = tenant
        self.keyPrefix = keyPrefix
        self.model = model
        self.version = version
        self.route = route
        self.status = status
        self.requests = requests
        self.tokens = tokens
        self.audioSeconds = audioSeconds
        self.images = images
        self.units = units
        self.queueMs = queueMs
        self.computeMs = computeMs
    }
}

/// A usage query, shaped like OpenAI's organization usage API.
public struct UsageQuery: Sendable {
    /// Seconds since 1970; `end` exclusive.
    public var start: Int
    public var end: Int
    /// 60, 3600 or 86400.
    public var bucketSeconds: Int
    /// Any of `tenant`, `key`, `model`, `route`.
    public var groupBy: [String]
    public var tenant: String?

    public init(start: Int, end: Int, bucketSeconds: Int, groupBy: [String] = [], tenant: String? = nil) {
        self.start = start
        self.end = end
        self.bucketSeconds = bucketSeconds
        self.groupBy = groupBy
        self.tenant = tenant
    }
}

/// One row of a usage answer: a bucket's totals for one group.
public struct UsageTotal: Codable, Sendable, Equatable {
    /// Seconds since 1970.
    public var bucketStart: Int
    public var tenant: String?
    public var keyPrefix: String?
    public var model: String?
    public var route: String?
    public var requests: Int
    public var tokens: Int
    public var audioSeconds: Double
    public var images: Int
    public var units: Double
    /// Requests answered with a status of 400 or over.
    public var failed: Int
}
