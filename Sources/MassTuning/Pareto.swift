/// Non-dominated sorting of points where lower is better in every coordinate.
public enum Pareto {
    /// Whether `a` dominates `b`: no worse in any coordinate, better in one.
    public static func dominates(_ a: [Double], _ b: [Double]) -> Bool {
        var better = false
        for (x, y) in zip(a, b) {
            if x > y { return false }
            if x < y { better = true }
        }
        return better
    }

    /// The indices of the points no other point dominates, in input order.
    public static func front(_ points: [[Double]]) -> [Int] { fronts(points).first ?? [] }

    /// The points split into successive non-dominated fronts (the first is the Pareto front).
    public static func fronts(_ points: [[Double]]) -> [[Int]] {
        var remaining = Array(points.indices)
        var fronts: [[Int]] = []
        while !remaining.isEmpty {
            let front = remaining.filter { i in !remaining.contains { j in j != i && dominates(points[j], points[i]) } }
            fronts.append(front)
            remaining.removeAll { front.contains($0) }
        }
        return fronts
    }

    /// NSGA-II's crowding distance of each point within one front (infinite at each coordinate's extremes).
    public static func crowding(_ points: [[Double]]) -> [Double] {
        guard points.count > 2, let dimensions = points.first?.count else {
            return [Double](repeating: .infinity, count: points.count)
        }
        var distance = [Double](repeating: 0, count: points.count)
        for d in 0..<dimensions {
            let order = points.indices.sorted { points[$0][d] < points[$1][d] }
            let span = points[order.last!][d] - points[order.first!][d]
            distance[order.first!] = .infinity
            distance[order.last!] = .infinity
            guard span > 0 else { continue }
            for k in 1..<(order.count - 1) {
                distance[order[k]] += (points[order[k + 1]][d] - points[order[k - 1]][d]) / span
            }
        }
        return distance
    }
}
