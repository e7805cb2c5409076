import Foundation

/// Wall-clock timing and order statistics shared by the `mass bench` commands.
enum BenchTiming {
    /// Seconds `body` took.
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Seconds of each of `n` runs of `body`.
    static func runs(_ n: Int, _ body: () throws -> Void) rethrows -> [Double] {
        try (0..<n).map { _ in try seconds(body) }
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        values.sorted()[min(values.count - 1, Int(p * Double(values.count)))]
    }
}
