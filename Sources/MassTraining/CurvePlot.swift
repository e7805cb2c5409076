import Foundation

/// Training curves as a self-contained SVG line chart: one polyline per series over a shared x axis (epochs or
/// steps), axes with tick labels, a legend. Written by Mass itself: no plotting library at run time.
public enum CurvePlot {
    public struct Series: Sendable {
        public var name: String
        public var values: [Double]
        public init(name: String, values: [Double]) {
            self.name = name
            self.values = values
        }
    }

    static let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]

    /// An SVG chart of `series` (x = 1...count) titled `title`, the y axis labelled `yLabel`.
    public static func svg(_ series: [Series], title: String, xLabel: String = "epoch", yLabel: String) -> String {
        let (width, height, left, right, top, bottom) = (640.0, 400.0, 64.0, 150.0, 36.0, 48.0)
        let finite = series.flatMap(\.values).filter(\.isFinite)
        var (low, high) = (finite.min() ?? 0, finite.max() ?? 1)
        if high - low < 1e-9 { (low, high) = (low - 0.5, high + 0.5) }
        let pad = (high - low) * 0.05
        (low, high) = (low - pad, high + pad)
        let count = max(2, series.map(\.values.count).max() ?? 2)
        func x(_ i: Int) -> Double { left + (width - left - right) * Double(i) / Double(count - 1) }
        func y(_ v: Double) -> Double { top + (height - top - bottom) * (1 - (v - low) / (high - low)) }
        let (f, escaped) = (SVGFrame.number, SVGFrame.escaped)
        var svg = SVGFrame.open(
            width: width, height: height, left: left, right: right, top: top, bottom: bottom, title: title)
        for k in 0...4 {
            let v = low + (high - low) * Double(k) / 4
            svg += """
                <text x="\(f(left - 6))" y="\(f(y(v) + 4))" text-anchor="end">\(String(format: "%.3g", v))</text>
                <line x1="\(f(left))" y1="\(f(y(v)))" x2="\(f(width - right))" y2="\(f(y(v)))" stroke="#ddd"/>

                """
        }
        for k in Set([0, (count - 1) / 2, count - 1]).sorted() {
            svg += "<text x=\"\(f(x(k)))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"middle\">\(k + 1)</text>\n"
        }
        svg += "<text x=\"\(f((left + width - right) / 2))\" y=\"\(f(height - 10))\" text-anchor=\"middle\">"
        svg += "\(escaped(xLabel))</text>\n"
        svg += "<text x=\"16\" y=\"\(f((top + height - bottom) / 2))\" text-anchor=\"middle\" "
        svg += "transform=\"rotate(-90 16 \(f((top + height - bottom) / 2)))\">\(escaped(yLabel))</text>\n"
        for (n, s) in series.enumerated() {
            let colour = colours[n % colours.count]
            let points = s.values.enumerated().filter { $0.element.isFinite }.map {
                "\(f(x($0.offset))),\(f(y($0.element)))"
            }
            svg +=
                "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
            let ly = top + 8 + Double(n) * 18
            svg +=
                "<line x1=\"\(f(width - right + 12))\" y1=\"\(f(ly))\" x2=\"\(f(width - right + 32))\" y2=\"\(f(ly))\" "
            svg += "stroke=\"\(colour)\" stroke-width=\"2\"/>\n"
            svg += "<text x=\"\(f(width - right + 38))\" y=\"\(f(ly + 4))\">\(escaped(s.name))</text>\n"
        }
        return svg + "</svg>\n"
    }
}
