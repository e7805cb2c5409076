import CMassPlot
import Foundation

/// A plot's two files: the SVG Mass draws, and the same drawing rasterised to PNG by librsvg (twice the SVG's
/// size, for sharp text).
public enum PlotFiles {
    /// The PNG of an SVG document (which paints its own background).
    public static func png(svg: String, scale: Double = 2) throws(TrainingError) -> Data {
        var bytes = Array(svg.utf8)
        var png: UnsafeMutablePointer<UInt8>?
        var length = 0
        var message = [CChar](repeating: 0, count: 512)
        let status = bytes.withUnsafeMutableBufferPointer { svgBytes in
            svgBytes.withMemoryRebound(to: CChar.self) { text in
                mass_plot_svg_to_png(text.baseAddress, text.count, scale, &png, &length, &message, message.count)
            }
        }
        defer { mass_plot_free(png) }
        guard status == 0, let png else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw TrainingError(.io, "cannot draw the plot as PNG: \(text)")
        }
        return Data(bytes: png, count: length)
    }

    /// Writes `svg` to `<base>.svg` and its PNG to `<base>.png` (`base` a path without extension).
    public static func write(svg: String, to base: URL) throws {
        try Data(svg.utf8).write(to: base.appendingPathExtension("svg"))
        try png(svg: svg).write(to: base.appendingPathExtension("png"))
    }
}
