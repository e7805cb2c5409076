import ArgumentParser
import Foundation
import MassRegistry

/// `mass tenants`, `mass plans`, `mass keys`: the service agreements, in the registry's database (a running
/// server picks changes up within a second).
extension RegistryOptions {
    /// Runs `body` on the tenancy records of an open registry.
    func tenancy<T>(_ body: (TenancyStore) async throws -> T) async throws -> T {
        try await with { try await body(TenancyStore(database: $0.database)) }
    }
}

struct TenantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants", abstract: "Create, list and delete tenants, and set their plans.",
        subcommands: [TenantsCreate.self, TenantsList.self, TenantsPlan.self, TenantsDelete.self])
}

struct TenantsCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a tenant.")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "The tenant's name.") var name: String
    @Option(name: .long, help: "Its plan (default: unlimited).") var plan: String?
    @Option(name: .long, help: "A description.") var description: String?

    func run() async throws {
        let tenant = try await options.tenancy {
            try await $0.createTenant(name, plan: plan, description: description, actor: options.who)
        }
        print(ModelsCommand.json(tenant))
    }
}

struct TenantsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List tenants and their plans.")
    @OptionGroup var options: RegistryOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() async throws {
        let tenants = try await options.tenancy { try await $0.tenants() }
        if json { return print(ModelsCommand.json(tenants)) }
        for t in tenants { print("\(t.name)\tplan \(t.plan ?? "-")" + (t.description.map { "\t\($0)" } ?? "")) }
    }
}

struct TenantsPlan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Move a tenant to a plan ('-' for unlimited).")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "The tenant.") var name: String
    @Argument(help: "The plan, or '-'.") var plan: String

    func run() async throws {
        let tenant = try await options.tenancy {
            try await $0.setTenantPlan(name, plan: plan == "-" ? nil : plan, actor: options.who)
        }
        print(ModelsCommand.json(tenant))
    }
}

struct TenantsDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a tenant and its keys (its usage stays in the ledger).")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "The tenant.") var name: String

    func run() async throws {
        try await options.tenancy { try await $0.deleteTenant(name, actor: options.who) }
        print("deleted tenant \(name)")
    }
}

struct PlansCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plans", abstract: "Set, list and delete plans (limits, budget, weight; docs/tenancy.md).",
        subcommands: [PlansSet.self, PlansList.self, PlansDelete.self])
}

struct PlansSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Create or replace a plan from its JSON (a file, or --json).")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "The plan's name.") var name: String
    @Option(name: .long, help: "A JSON file with the plan.") var file: String?
    @Option(name: .long, help: "The plan as JSON text.") var json: String?

    func run() async throws {
        let data: Data
        if let file {
            guard let read = FileManager.default.contents(atPath: file) else {
                throw CLIError("cannot read the plan file \(file)")
            }
            data = read
        } else if let json {
            data = Data(json.utf8)
        } else {
            throw CLIError("give the plan with --file PATH or --json TEXT")
        }
        let spec: PlanSpec
        do {
            spec = try JSONDecoder().decode(PlanSpec.self, from: data)
        } catch {
            throw CLIError("the plan is not valid JSON of a plan: \(error)")
        }
        let plan = try await options.tenancy { try await $0.setPlan(name, spec, actor: options.who) }
        print(ModelsCommand.json(plan))
    }
}

struct PlansList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List plans as JSON.")
    @OptionGroup var options: RegistryOptions

    func run() async throws {
        print(ModelsCommand.json(try await options.tenancy { try await $0.plans() }))
    }
}

struct PlansDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a plan no tenant or key uses.")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "The plan.") var name: String

    func run() async throws {
        try await options.tenancy { try await $0.deletePlan(name, actor: options.who) }
        print("deleted plan \(name)")
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Create, list, revoke and rotate API keys (secrets are shown once).",
        subcommands: [KeysCreate.self, KeysList.self, KeysRevoke.self, KeysRotate.self])
}

struct KeysCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a key; prints its secret once (only its hash is stored).")
    @OptionGroup var options: RegistryOptions
    @Option(name: .long, help: "The tenant it belongs to.") var tenant: String
    @Option(name: .long, help: "A name for the key.") var name: String?
    @Option(name: .long, help: "A role: inference (default) or admin (repeatable).") var role: [String] = []
    @Option(name: .long, help: "A model it may call (repeatable; default all).") var model: [String] = []
    @Option(name: .long, help: "A plan applied to this key on top of the tenant's.") var plan: String?
    @Option(name: .long, help: "Seconds until it expires.") var expiresIn: Int?
    @Flag(name: .long, help: "Print only the secret.") var quiet = false

    func run() async throws {
        if let seconds = expiresIn, seconds <= 0 { throw CLIError("--expires-in must be a positive number of seconds") }
        let draft = TenancyStore.KeyDraft(
            name: name, roles: role.isEmpty ? ["inference"] : role, models: model.isEmpty ? nil : model, plan: plan,
            expiresAt: expiresIn.map { Int(Date().timeIntervalSince1970 * 1000) + $0 * 1000 })
        let (key, secret) = try await options.tenancy {
            try await $0.createKey(tenant: tenant, draft, actor: options.who)
        }
        if quiet { return print(secret) }
        print(ModelsCommand.json(key))
        print("secret (shown once): \(secret)")
    }
}

struct KeysList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List keys by prefix.")
    @OptionGroup var options: RegistryOptions
    @Option(name: .long, help: "Only this tenant's keys.") var tenant: String?
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() async throws {
        let keys = try await options.tenancy { try await $0.keys(tenant: tenant) }
        if json { return print(ModelsCommand.json(keys)) }
        let now = Int(Date().timeIntervalSince1970 * 1000)
        for k in keys {
            let status =
                k.revokedAt != nil
                ? "revoked"
                : k.expiresAt.map { $0 <= now ? "expired" : "expires \(ModelsCommand.date($0))" } ?? "active"
            print(
                "\(k.prefix)\t\(k.tenant)\t\(k.roles.joined(separator: ","))\t\(k.models?.joined(separator: ",") ?? "all models")\t\(status)"
            )
        }
    }
}

struct KeysRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a key at once.")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "The key's prefix (mass_ and 8 hex digits).") var prefix: String

    func run() async throws {
        print(ModelsCommand.json(try await options.tenancy { try await $0.revokeKey(prefix, actor: options.who) }))
    }
}

struct KeysRotate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate", abstract: "Replace a key; the old one keeps working for --grace seconds.")
    @OptionGroup var options: RegistryOptions
    @Argument(help: "The key's prefix.") var prefix: String
    @Option(name: .long, help: "Seconds the old key stays valid (default 0).") var grace = 0
    @Flag(name: .long, help: "Print only the new secret.") var quiet = false

    func run() async throws {
        let (key, secret, old) = try await options.tenancy {
            try await $0.rotateKey(prefix, grace: grace, actor: options.who)
        }
        if quiet { return print(secret) }
        print(ModelsCommand.json(key))
        print("old key \(old.prefix) expires \(old.expiresAt.map(ModelsCommand.date) ?? "now")")
        print("secret (shown once): \(secret)")
    }
}
