import Foundation
import MassTraining

/// The selection's Pareto plot as SVG: each measured candidate at (p99 latency, accuracy), the front joined and
/// in colour, the winner ringed, the rule's latency bound and the accuracy floor as dashed lines.
public enum SelectionPlot {
    public static func svg(_ report: SelectionReport, plan: SelectionPlan) -> String {
        let points = report.candidates.compactMap { c -> (CandidateResult, Double, Double)? in
            guard let x = c.p99Ms, let y = c.accuracy else { return nil }
            return (c, x, y)
        }
        let (width, height, left, right, top, bottom) = (640.0, 420.0, 70.0, 30.0, 40.0, 52.0)
        let latencyBound = (try? plan.conditions())?.first { $0.measure == "p99_ms" }?.bound
        let floor = plan.floor?["accuracy"]
        func range(_ values: [Double]) -> (Double, Double) {
            var (low, high) = (values.min() ?? 0, values.max() ?? 1)
            if high - low < 1e-9 { (low, high) = (low - 0.5 * max(abs(low), 1e-3), high + 0.5 * max(abs(high), 1e-3)) }
            let pad = (high - low) * 0.12
            return (low - pad, high + pad)
        }
        let (x0, x1) = range(points.map(\.1) + (latencyBound.map { [$0] } ?? []))
        let (y0, y1) = range(points.map(\.2) + (floor.map { [$0] } ?? []))
        func x(_ v: Double) -> Double { left + (width - left - right) * (v - x0) / (x1 - x0) }
        func y(_ v: Double) -> Double { top + (height - top - bottom) * (1 - (v - y0) / (y1 - y0)) }
        let (f, escaped) = (SVGFrame.number, SVGFrame.escaped)
        var svg = SVGFrame.open(
            width: width, height: height, left: left, right: right, top: top, bottom: bottom,
            title: "\(report.name): accuracy against p99 latency (batch 1)")
        for k in 0...4 {
            let vy = y0 + (y1 - y0) * Double(k) / 4
            let vx = x0 + (x1 - x0) * Double(k) / 4
            svg += """
                <line x1="\(f(left))" y1="\(f(y(vy)))" x2="\(f(width - right))" y2="\(f(y(vy)))" stroke="#e4e4e4"/>
                <text x="\(f(left - 6))" y="\(f(y(vy) + 4))" text-anchor="end">\(String(format: "%.3f", vy))</text>
                <text x="\(f(x(vx)))" y="\(f(height - bottom + 16))" text-anchor="middle">\(String(format: "%.3g", vx))</text>

                """
        }
        svg += """
            <text x="\(f((left + width - right) / 2))" y="\(f(height - 12))" text-anchor="middle">p99 latency, ms</text>
            <text x="18" y="\(f((top + height - bottom) / 2))" text-anchor="middle" \
            transform="rotate(-90 18 \(f((top + height - bottom) / 2)))">accuracy</text>

            """
        if let latencyBound {
            svg += """
                <line x1="\(f(x(latencyBound)))" y1="\(f(top))" x2="\(f(x(latencyBound)))" y2="\(f(height - bottom))" \
                stroke="#888" stroke-dasharray="6 4"/>
                <text x="\(f(x(latencyBound) + 4))" y="\(f(top + 12))" fill="#666">p99 bound</text>

                """
        }
        if let floor {
            svg += """
                <line x1="\(f(left))" y1="\(f(y(floor)))" x2="\(f(width - right))" y2="\(f(y(floor)))" stroke="#888" \
                stroke-dasharray="6 4"/>
                <text x="\(f(width - right - 4))" y="\(f(y(floor) - 4))" text-anchor="end" fill="#666">accuracy floor</text>

                """
        }
        let front = points.filter { $0.0.onFront }.sorted { $0.1 < $1.1 }
        if front.count > 1 {
            let path = front.map { "\(f(x($0.1))),\(f(y($0.2)))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
        }
        // Labels right of and above their points, moved down past any label they would overlap.
        var placed: [(x: Double, y: Double, width: Double)] = []
        for (c, vx, vy) in points {
            let colour = c.onFront ? "#d62728" : "#7f7f7f"
            svg += "<circle cx=\"\(f(x(vx)))\" cy=\"\(f(y(vy)))\" r=\"5\" fill=\"\(colour)\"/>\n"
            if c.name == report.winner {
                svg += "<circle cx=\"\(f(x(vx)))\" cy=\"\(f(y(vy)))\" r=\"10\" fill=\"none\" stroke=\"#2ca02c\" "
                svg += "stroke-width=\"2.5\"/>\n"
            }
            let label = c.name + (c.name == report.winner ? " (chosen)" : "")
            let (lx, width) = (x(vx) + 9, 7.5 * Double(label.count))
            var ly = y(vy) - 8
            while placed.contains(where: { abs($0.y - ly) < 14 && lx < $0.x + $0.width && $0.x < lx + width }) {
                ly += 15
            }
            placed.append((lx, ly, width))
            svg += "<text x=\"\(f(lx))\" y=\"\(f(ly))\">\(escaped(label))</text>\n"
        }
        return svg + "</svg>\n"
    }
}
