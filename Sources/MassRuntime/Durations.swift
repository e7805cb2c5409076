extension Duration {
    /// The duration in seconds, as a Double (the runtime's clocks, timings and metrics).
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

/// The value at quantile `q` (0-1) of ascending `sorted` values, by nearest rank; nil when there are none.
func nearestRank(_ sorted: [Double], _ q: Double) -> Double? {
    sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int((q * Double(sorted.count)).rounded(.down)))]
}
