import ArgumentParser
import Foundation
import MassRegistry
import MassStudies

/// `mass selections`: the model selections `mass select` stored in the registry.
struct SelectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selections", abstract: "Model selections (mass select): list, show.",
        subcommands: [SelectionsList.self, SelectionsShow.self])
}

struct SelectionsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Selections, newest first: name, winner, what was promoted.")

    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        try await registry.with { models in
            print(["name", "winner", "promoted", "by"].joined(separator: "\t"))
            for s in try await SelectionStore(database: models.database).selections() {
                print([s.name, s.winner ?? "-", s.promoted ?? "-", s.createdBy].joined(separator: "\t"))
            }
        }
    }
}

struct SelectionsShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "A selection's report: every candidate's measures, the rule, the winner.")

    @OptionGroup var registry: RegistryOptions

    @Argument(help: "The selection's name.") var name: String

    @Flag(name: .long, help: "The stored record as JSON (document, report, winner, promotion).") var json = false

    func run() async throws {
        try await registry.with { models in
            let selection = try await SelectionStore(database: models.database).selection(name)
            if json { return print(ModelsCommand.json(selection)) }
            let report = try JSONDecoder().decode(SelectionReport.self, from: Data(try selection.report.text().utf8))
            print(report.table())
            if let promoted = selection.promoted { print("promoted: \(promoted)") }
        }
    }
}
