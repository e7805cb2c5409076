import Foundation
public import MassRegistry

/// Who is calling: the key a request authenticated with, its tenant, and the plans that limit it.
public struct Principal: Sendable {
    public let key: APIKey
    public let tenantPlan: Plan?
    public let keyPlan: Plan?

    public var tenant: String { key.tenant }
    /// The weight of the tenant's requests in each model's queue.
    public var weight: Double { tenantPlan?.spec.weight ?? 1 }
    public var priority: String { tenantPlan?.spec.priority ?? "interactive" }

    /// Whether the key may call `model` (a served name).
    public func allows(model: String) -> Bool { key.models.map { $0.contains(model) } ?? true }

    /// The scopes that limit a request of this principal to `model` (nil: before the model is known): the
    /// tenant's plan (tenant-wide, per key, per model) and the key's own plan (key-wide, per model).
    func scopes(model: String?) -> [Scope] {
        func scopes(of plan: Plan?, whole: String, perKey: Bool, perModel: String) -> [Scope] {
            guard let spec = plan?.spec else { return [] }
            let prices: @Sendable (String) -> Double = { spec.price($0) }
            var out = [Scope(name: whole, limits: spec.limits, maxConcurrent: spec.maxConcurrent, prices: prices)]
            if perKey, let scope = spec.perKey {
                out.append(
                    Scope(
                        name: "key:\(key.prefix)", limits: scope.limits, maxConcurrent: scope.maxConcurrent,
                        prices: prices))
            }
            if let model, let scope = spec.models[model] {
                out.append(
                    Scope(
                        name: "\(perModel)/\(model)", limits: scope.limits, maxConcurrent: scope.maxConcurrent,
                        prices: prices))
            }
            return out
        }
        return scopes(of: tenantPlan, whole: "tenant:\(tenant)", perKey: true, perModel: "model:\(tenant)")
            + scopes(of: keyPlan, whole: "keyplan:\(key.prefix)", perKey: false, perModel: "keymodel:\(key.prefix)")
    }

    /// Units of `amount` of `kind` at the tenant plan's prices (what the usage record says).
    func units(_ kind: String, _ amount: Double) -> Double {
        amount * (tenantPlan?.spec.price(kind) ?? PlanSpec.defaultPrices[kind] ?? 0)
    }
}

/// The keys a server knows, by the hash of their secret, from one snapshot of the database.
struct KeyBook: Sendable {
    let entries: [String: (key: APIKey, tenantPlan: Plan?, keyPlan: Plan?)]
    let version: Int

    init(_ snapshot: TenancySnapshot) {
        let plans = Dictionary(snapshot.plans.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let tenants = Dictionary(snapshot.tenants.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var entries: [String: (APIKey, Plan?, Plan?)] = [:]
        for (key, hash) in snapshot.keys {
            guard let tenant = tenants[key.tenant] else { continue }
            entries[hash] = (key, tenant.plan.flatMap { plans[$0] }, key.plan.flatMap { plans[$0] })
        }
        self.entries = entries
        version = snapshot.version
    }

    init() {
        entries = [:]
        version = -1
    }

    var isEmpty: Bool { entries.isEmpty }

    /// The principal a secret names, or why not. `now` in milliseconds since 1970.
    func principal(secret: String, now: Int) throws(TenancyError) -> Principal {
        guard let entry = entries[TenancyStore.hash(secret)] else {
            throw TenancyError(.unauthenticated, "the API key is not valid")
        }
        if entry.key.revokedAt != nil {
            throw TenancyError(.unauthenticated, "API key \(entry.key.prefix) has been revoked")
        }
        if let expires = entry.key.expiresAt, expires <= now {
            throw TenancyError(.unauthenticated, "API key \(entry.key.prefix) has expired")
        }
        return Principal(key: entry.key, tenantPlan: entry.tenantPlan, keyPlan: entry.keyPlan)
    }

    /// The secret of `Authorization: Bearer KEY` or `api-key: KEY`; nil when the request has neither.
    static func secret(authorization: String?, apiKey: String?) throws(TenancyError) -> String? {
        if let authorization {
            let parts = authorization.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw TenancyError(.unauthenticated, "the Authorization header must be 'Bearer <API key>'")
            }
            return try checked(String(parts[1]))
        }
        if let apiKey { return try checked(apiKey.trimmingCharacters(in: .whitespaces)) }
        return nil
    }

    private static func checked(_ secret: String) throws(TenancyError) -> String {
        guard secret.hasPrefix("mass_"), secret.utf8.count == 53,
            secret.utf8.dropFirst(5).allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
        else {
            throw TenancyError(.unauthenticated, "the API key is malformed (Mass keys are mass_ and 48 hex digits)")
        }
        return secret
    }
}
