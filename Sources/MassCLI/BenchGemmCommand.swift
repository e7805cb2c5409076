import ArgumentParser
import Foundation
import MassTensor

/// GFLOP/s of the two GEMM paths of `Linear` on a model's layer shapes: the pre-packed small-row kernel and
/// OpenBLAS, with 1 thread and with every thread. This is how `Linear.packedRowLimit` was chosen.
struct BenchGemmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "GFLOP/s of the packed kernel and OpenBLAS on Linear-layer shapes.")

    @Option(name: .long, parsing: .upToNextOption, help: "Row counts (tokens) to measure.")
    var rows: [Int] = [1, 8, 20, 40, 64, 128, 256, 1024]

    @Option(name: .long, help: "Layer shapes as OUTxIN, comma-separated (default: a MiniLM layer).")
    var shapes: String = "1152x384,384x384,1536x384,384x1536"

    @Option(name: .long, help: "Threads for the multi-threaded column.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(
        name: .long,
        help: "Also each int8 kernel the CPU has, 1 thread, quantising the activations inside the timing (GOP/s).")
    var int8 = false

    func run() throws {
        try Mass.checkCPU()
        try BLAS.load()
        let parsed = try shapes.split(separator: ",").map { item -> (Int, Int) in
            let parts = item.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts.allSatisfy({ $0 > 0 }) else { throw ValidationError("bad shape '\(item)'") }
            return (parts[0], parts[1])
        }
        let layers = try parsed.map { n, k in
            try Linear(
                weight: Tensor(shape: [n, k], values: (0..<(n * k)).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 }),
                bias: Tensor(zeros: [n]))
        }
        let single = ComputePool(threads: 1)
        let multi = ComputePool(threads: threads)
        print("blas \(BLAS.coreName), packed kernel \(PackedMatrix.usesAVX512 ? "AVX-512" : "AVX2"), shapes \(shapes)")
        let kernels = int8 ? QuantizedMatrix.Kernel.allCases.filter(\.isAvailable) : []
        let quantized = layers.map { layer in
            QuantizedMatrix(layer.weight!.floats, n: layer.outFeatures, k: layer.inFeatures)
        }
        print(
            "rows  packed×1  packed×\(threads)  blas×1  blas×\(threads)"
                + kernels.map { "  int8-\($0)×1" }.joined() + "   (GFLOP/s, int8 GOP/s, over the layer set)")
        for m in rows where m > 0 {
            let maxK = parsed.map(\.1).max()!
            let maxN = parsed.map(\.0).max()!
            let x = (0..<(m * maxK)).map { Float($0 % 13) / 13 }
            var y = [Float](repeating: 0, count: m * maxN)
            let flops = parsed.reduce(0.0) { $0 + 2.0 * Double(m * $1.0 * $1.1) }
            func measure(_ pool: ComputePool, packed: Bool) -> Double {
                let reps = max(3, Int(2e9 / flops))
                let run = {
                    for layer in layers {
                        if packed {
                            pool.apply(layer, x, rows: m, into: &y, forcePacked: true)
                        } else {
                            pool.linear(
                                x, rows: m, k: layer.inFeatures, weight: layer.weight!.floats, n: layer.outFeatures,
                                bias: layer.bias!.floats, into: &y)
                        }
                    }
                }
                run()
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<reps { run() }
                return flops * Double(reps) / Double(DispatchTime.now().uptimeNanoseconds - start)
            }
            func measureInt8(_ kernel: QuantizedMatrix.Kernel) -> Double {
                let reps = max(3, Int(4e9 / flops))
                let run = {
                    for (q, layer) in zip(quantized, layers) {
                        let a = x.withUnsafeBufferPointer {
                            QuantizedMatrix.Activations($0.baseAddress!, rows: m, k: q.k, lda: q.k)
                        }
                        q.linear(
                            a, columns: 0..<q.n, bias: layer.bias!.floats, into: &y, ldc: q.n, accumulate: false,
                            kernel: kernel)
                    }
                }
                run()
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<reps { run() }
                return flops * Double(reps) / Double(DispatchTime.now().uptimeNanoseconds - start)
            }
            print(
                String(
                    format: "%4d  %8.1f  %9.1f  %6.1f  %7.1f", m, measure(single, packed: true),
                    measure(multi, packed: true),
                    measure(single, packed: false), measure(multi, packed: false))
                    + kernels.map { String(format: "  %*.1f", 9 + "\($0)".count, measureInt8($0)) }.joined())
        }
    }
}
