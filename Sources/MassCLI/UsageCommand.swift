import ArgumentParser
import Foundation
import MassRegistry

/// `mass usage`: the metered usage, in buckets and groups (as the admin API's `/admin/v1/usage`), or every
/// record; as a table or CSV.
struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage", abstract: "Report metered usage by bucket and tenant, key, model or route.")
    @OptionGroup var options: RegistryOptions
    @Option(name: .long, help: "Start: Unix seconds, or an age like 30m, 24h, 7d (default 24h).") var since = "24h"
    @Option(name: .long, help: "End: Unix seconds (default now).") var until: Int?
    @Option(name: .long, help: "Bucket width: 1m, 1h or 1d (default 1d).") var bucket = "1d"
    @Option(name: .long, help: "Group by tenant, key, model, route (comma separated).") var groupBy = "tenant"
    @Option(name: .long, help: "Only this tenant.") var tenant: String?
    @Flag(name: .long, help: "Every request's record instead of totals.") var records = false
    @Flag(name: .long, help: "CSV output.") var csv = false

    func run() async throws {
        let now = Int(Date().timeIntervalSince1970)
        let start = try Self.time(since, now: now)
        let end = until ?? now + 1
        guard end > start else { throw CLIError("--until must be after --since") }
        if records {
            let rows = try await options.tenancy { try await $0.records(since: start, until: end, tenant: tenant) }
            print(
                "id,at,tenant,key_prefix,model,version,route,status,requests,tokens,audio_seconds,images,units,queue_ms,compute_ms"
            )
            for r in rows {
                print(
                    [
                        r.id, ModelsCommand.date(r.at), r.tenant, r.keyPrefix, r.model,
                        r.version.map(String.init) ?? "",
                        r.route, String(r.status), String(r.requests), String(r.tokens), String(r.audioSeconds),
                        String(r.images), String(r.units), String(format: "%.3f", r.queueMs),
                        String(format: "%.3f", r.computeMs),
                    ].map(Self.field).joined(separator: ","))
            }
            return
        }
        let width: Int
        switch bucket {
        case "1m": width = 60
        case "1h": width = 3600
        case "1d": width = 86400
        default: throw CLIError("--bucket must be 1m, 1h or 1d")
        }
        let groups = groupBy.split(separator: ",").map(String.init)
        let query = UsageQuery(start: start, end: end, bucketSeconds: width, groupBy: groups, tenant: tenant)
        let totals = try await options.tenancy { try await $0.usage(query) }
        let separator = csv ? "," : "\t"
        print(
            (["bucket_start"] + groups + ["requests", "failed", "tokens", "audio_seconds", "images", "units"])
                .joined(separator: separator))
        for t in totals {
            var fields = [ModelsCommand.date(t.bucketStart * 1000)]
            for group in groups {
                switch group {
                case "tenant": fields.append(t.tenant ?? "")
                case "key", "api_key", "key_prefix": fields.append(t.keyPrefix ?? "")
                case "model": fields.append(t.model ?? "")
                default: fields.append(t.route ?? "")
                }
            }
            fields += [
                String(t.requests), String(t.failed), String(t.tokens), String(t.audioSeconds), String(t.images),
                String(t.units),
            ]
            print(fields.map { csv ? Self.field($0) : $0 }.joined(separator: separator))
        }
    }

    /// Unix seconds, or an age before `now` (`90s`, `30m`, `24h`, `7d`).
    static func time(_ text: String, now: Int) throws -> Int {
        if let seconds = Int(text) { return seconds }
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard let unit = text.last.flatMap({ units[$0] }), let n = Int(text.dropLast()), n >= 0 else {
            throw CLIError("'\(text)' must be Unix seconds or an age like 30m, 24h, 7d")
        }
        return now - n * unit
    }

    /// A CSV field, quoted when it needs to be.
    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
