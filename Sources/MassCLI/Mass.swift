import ArgumentParser
import Foundation
import MassTensor

struct Mass: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mass",
        abstract: "Models as a service: host, run and benchmark AI models on a native CPU engine.",
        subcommands: [
            ServeCommand.self, EmbedCommand.self, ClassifyCommand.self, TranscribeCommand.self,
            ClassifyTextCommand.self, RerankCommand.self, ModelsCommand.self, DeployCommand.self, PullCommand.self,
            TenantsCommand.self, PlansCommand.self, KeysCommand.self, UsageCommand.self, ServicesCommand.self,
            CompressCommand.self, BenchCommand.self, TokenizeCommand.self, TrainCommand.self, JobsCommand.self,
            WorkerCommand.self, TuneCommand.self, StudiesCommand.self, SelectCommand.self, SelectionsCommand.self,
            SelectMeasureCommand.self,
            InfoCommand.self,
        ]
    )

    /// Refuses to start on a CPU without the instructions the binary was compiled for.
    static func checkCPU() throws {
        #if arch(x86_64)
            guard CPUFeatures.hasAVX2FMA else {
                throw CLIError("this CPU lacks AVX2/FMA, which Mass is compiled for (x86-64-v3)")
            }
        #endif
    }
}

/// A failure the CLI reports on standard error with exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Print what the engine runs on: CPU features and BLAS kernels.")

    func run() throws {
        try Mass.checkCPU()
        try BLAS.load()
        print("cpu: avx2+fma=\(CPUFeatures.hasAVX2FMA) avx512=\(CPUFeatures.hasAVX512)")
        print("blas: \(BLAS.configuration) (kernels: \(BLAS.coreName))")
        print("cores: \(ProcessInfo.processInfo.activeProcessorCount)")
    }
}
