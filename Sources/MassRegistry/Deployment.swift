import Foundation
import SQLKit

/// How a registered model is served: weighted routes to versions or aliases ("3", "production"), optionally
/// sticky by a request header (one key always reaches the same route while the weights stand), and optionally a
/// shadow that receives a sample of live requests whose answers are compared, never returned.
public struct DeploymentSpec: Codable, Sendable, Equatable {
    public struct Route: Codable, Sendable, Equatable {
        /// A version number or an alias.
        public var target: String
        public var weight: Double

        public init(target: String, weight: Double) {
            self.target = target
            self.weight = weight
        }
    }

    public struct Shadow: Codable, Sendable, Equatable {
        public var target: String
        /// The fraction of requests mirrored, 0-1.
        public var sample: Double

        public init(target: String, sample: Double) {
            self.target = target
            self.sample = sample
        }
    }

    public var routes: [Route]
    public var stickyHeader: String?
    public var shadow: Shadow?

    public init(routes: [Route], stickyHeader: String? = nil, shadow: Shadow? = nil) {
        self.routes = routes
        self.stickyHeader = stickyHeader
        self.shadow = shadow
    }

    /// Without a deployment a model serves its `production` alias, or its latest version.
    public static let fallbackAlias = "production"

    func validate() throws {
        guard !routes.isEmpty else { throw RegistryError(.invalid, "a deployment needs at least one route") }
        for route in routes where !(route.weight.isFinite && route.weight >= 0) {
            throw RegistryError(.invalid, "route '\(route.target)': the weight must be a number ≥ 0")
        }
        guard routes.reduce(0, { $0 + $1.weight }) > 0 else {
            throw RegistryError(.invalid, "the routes' weights add up to 0: at least one must be positive")
        }
        guard Set(routes.map(\.target)).count == routes.count else {
            throw RegistryError(.invalid, "a target appears in two routes")
        }
        if let header = stickyHeader {
            guard !header.isEmpty, header.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) else {
                throw RegistryError(.invalid, "sticky header '\(header)' is not a header name")
            }
        }
        if let shadow, !(0...1).contains(shadow.sample) {
            throw RegistryError(.invalid, "the shadow's sample must be from 0 to 1, not \(shadow.sample)")
        }
    }
}

/// A deployment with every target resolved to a version number (what a server loads and routes to).
public struct ResolvedDeployment: Sendable, Equatable {
    public struct Route: Sendable, Equatable {
        public var target: String
        public var version: Int
        public var weight: Double
    }

    public var model: String
    public var task: String
    public var routes: [Route]
    public var stickyHeader: String?
    public var shadow: (version: Int, sample: Double)?
    /// Whether this came from a stored deployment (false: the production alias or the latest version).
    public var explicit: Bool

    /// Every version the deployment needs loaded.
    public var versions: Set<Int> { Set(routes.map(\.version) + (shadow.map { [$0.version] } ?? [])) }

    public static func == (a: Self, b: Self) -> Bool {
        a.model == b.model && a.task == b.task && a.routes == b.routes && a.stickyHeader == b.stickyHeader
            && a.shadow?.version == b.shadow?.version && a.shadow?.sample == b.shadow?.sample
            && a.explicit == b.explicit
    }
}

extension ModelRegistry {
    /// The stored deployment of a model, if any.
    public func deployment(_ name: String) async throws -> DeploymentSpec? {
        try await database.transaction(readOnly: true) { db in try await Self.readDeployment(name, db) }
    }

    /// Stores (replaces) a model's deployment after checking every target exists; one event records it.
    public func deploy(_ name: String, _ spec: DeploymentSpec, actor: String, reason: String? = nil) async throws {
        try spec.validate()
        try await database.transaction { db in
            let model = try await Self.readModel(name, db)
            for target in spec.routes.map(\.target) + (spec.shadow.map { [$0.target] } ?? []) {
                _ = try Self.resolve(target, in: model)
            }
            let json = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
            try await db.insert(into: "deployments").columns("model", "spec", "updated_at")
                .values(SQLBind(name), SQLBind(json), SQLBind(Timestamp.now()))
                .onConflict(with: ["model"]) { $0.set(excludedValueOf: "spec").set(excludedValueOf: "updated_at") }
                .run()
            try await Self.appendEvent(name, actor: actor, kind: "deployed", reason: reason ?? json, db)
        }
    }

    /// Removes a model's deployment (it then serves its production alias or latest version).
    public func undeploy(_ name: String, actor: String) async throws {
        try await database.transaction { db in
            _ = try await Self.readModel(name, db)
            try await db.delete(from: "deployments").where("model", .equal, name).run()
            try await Self.appendEvent(name, actor: actor, kind: "undeployed", reason: nil, db)
        }
    }

    /// What every registered model serves now, resolved to version numbers, in one consistent read.
    public func resolvedDeployments() async throws -> [ResolvedDeployment] {
        try await database.transaction(readOnly: true) { db in
            let names = try await db.select().column("name").from("models").orderBy("name")
                .all(decodingColumn: "name", as: String.self)
            var out: [ResolvedDeployment] = []
            for name in names {
                let model = try await Self.readModel(name, db)
                guard !model.versions.isEmpty else { continue }
                if let spec = try await Self.readDeployment(name, db) {
                    out.append(
                        ResolvedDeployment(
                            model: name, task: model.task,
                            routes: try spec.routes.map {
                                .init(
                                    target: $0.target, version: try Self.resolve($0.target, in: model),
                                    weight: $0.weight)
                            },
                            stickyHeader: spec.stickyHeader,
                            shadow: try spec.shadow.map { (try Self.resolve($0.target, in: model), $0.sample) },
                            explicit: true))
                } else {
                    let alias = DeploymentSpec.fallbackAlias
                    let version = model.aliases[alias] ?? model.versions.last!.version
                    out.append(
                        ResolvedDeployment(
                            model: name, task: model.task,
                            routes: [
                                .init(
                                    target: model.aliases[alias] == nil ? String(version) : alias, version: version,
                                    weight: 1)
                            ],
                            stickyHeader: nil, shadow: nil, explicit: false))
                }
            }
            return out
        }
    }

    /// A number that grows with every change to the registry (the newest event's id): servers poll it.
    public func changeCounter() async throws -> Int {
        try await database.transaction(readOnly: true) { db in
            try await db.select().column(SQLFunction("max", args: SQLColumn("id")), as: "id").from("events")
                .first()?.decode(column: "id", as: Int?.self) ?? 0
        }
    }

    static func resolve(_ target: String, in model: RegisteredModel) throws -> Int {
        if let number = Int(target) {
            guard model.version(number) != nil else {
                throw RegistryError(.notFound, "model '\(model.name)' has no version \(number)")
            }
            return number
        }
        guard let number = model.aliases[target] else {
            throw RegistryError(.notFound, "model '\(model.name)' has no alias '\(target)'")
        }
        return number
    }

    static func readDeployment(_ name: String, _ db: any SQLDatabase) async throws -> DeploymentSpec? {
        guard
            let json = try await db.select().column("spec").from("deployments").where("model", .equal, name)
                .first(decodingColumn: "spec", as: String.self)
        else { return nil }
        do {
            return try JSONDecoder().decode(DeploymentSpec.self, from: Data(json.utf8))
        } catch {
            throw RegistryError(.unavailable, "the stored deployment of '\(name)' is unreadable", detail: "\(error)")
        }
    }
}
