import Foundation

/// What Mass's SVG charts share (`CurvePlot`, the selection's Pareto plot): coordinates, escaped text, and the
/// opening of a chart (white background, title, the two axes) in a plot area `left`/`right`/`top`/`bottom` in
/// from the edges.
public enum SVGFrame {
    public static func number(_ v: Double) -> String { String(format: "%.1f", v) }

    public static func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    public static func open(
        width: Double, height: Double, left: Double, right: Double, top: Double, bottom: Double, title: String
    ) -> String {
        let f = number
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            font-family="DejaVu Sans, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f(width / 2))" y="22" text-anchor="middle" font-size="14">\(escaped(title))</text>
            <line x1="\(f(left))" y1="\(f(height - bottom))" x2="\(f(width - right))" y2="\(f(height - bottom))" \
            stroke="black"/>
            <line x1="\(f(left))" y1="\(f(top))" x2="\(f(left))" y2="\(f(height - bottom))" stroke="black"/>

            """
    }
}
