import CMassImage
import Foundation

/// An 8-bit RGB image, rows top to bottom, 3 bytes per pixel.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Why an image could not be read; the server maps every code to 400 (415 for an unknown format).
public struct ImageError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case empty, unsupportedFormat = "unsupported_format", corrupt, tooLarge = "too_large"
    }

    public let code: Code
    public let message: String
    public var description: String { message }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Decodes PNG (libpng: palette, grayscale, 16-bit, alpha, interlaced) and JPEG (libjpeg-turbo: baseline,
/// progressive, grayscale) to RGB, the way Pillow's `convert("RGB")` does (alpha dropped, grey replicated), and
/// applies a JPEG's EXIF orientation.
public enum ImageDecoder {
    /// 40 megapixels: a 4 MiB file cannot turn into gigabytes of pixels.
    public static let defaultMaxPixels = 40_000_000

    public static func decode(_ data: [UInt8], maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        guard !data.isEmpty else { throw ImageError(.empty, "the image file is empty") }
        let isPNG = data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let isJPEG = data.starts(with: [0xFF, 0xD8, 0xFF])
        guard isPNG || isJPEG else {
            throw ImageError(.unsupportedFormat, "not a PNG or JPEG file (the first bytes match neither signature)")
        }
        return try call(data) { bytes, count, image in
            isPNG
                ? cmass_decode_png(bytes, count, Int64(maxPixels), image)
                : cmass_decode_jpeg(bytes, count, Int64(maxPixels), image)
        } result: { image in
            decodedPixels(image).oriented(Int(image.orientation))
        }
    }

    /// The PNG through libpng alone, the reference for the direct path `decode` tries first (8-bit RGB or
    /// RGBA, not interlaced: libdeflate and SSE unfiltering).
    public static func decodePNGWithLibpng(_ data: [UInt8], maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        try call(data) {
            cmass_decode_png_libpng($0, $1, Int64(maxPixels), $2)
        } result: {
            decodedPixels($0)
        }
    }

    /// The PNG through the direct path alone; nil when that path leaves the file to libpng.
    public static func decodePNGDirectly(_ data: [UInt8], maxPixels: Int = defaultMaxPixels) -> RGBImage? {
        var image = cmass_image()
        defer { cmass_image_free(&image) }
        let done = data.withUnsafeBufferPointer {
            cmass_decode_png_direct($0.baseAddress, $0.count, Int64(maxPixels), &image)
        }
        return done == 1 ? decodedPixels(image) : nil
    }

    /// A JPEG's size and EXIF orientation from its header alone; nil when `data` is not a JPEG.
    public static func jpegHeader(_ data: [UInt8], maxPixels: Int = defaultMaxPixels) throws -> (
        width: Int, height: Int, orientation: Int
    )? {
        guard data.starts(with: [0xFF, 0xD8, 0xFF]) else { return nil }
        return try call(data) {
            cmass_jpeg_header($0, $1, Int64(maxPixels), $2)
        } result: {
            (Int($0.full_width), Int($0.full_height), Int($0.orientation))
        }
    }

    /// Part of a JPEG: the pixels of `columns` × `rows` (stored orientation, EXIF ignored), decoded without the
    /// others' colour conversion and upsampling. The part returned may start left of `columns` (libjpeg-turbo
    /// crops at iMCU boundaries); `left` and `top` say where it sits in the whole image.
    public static func decodeJPEG(
        _ data: [UInt8], columns: Range<Int>, rows: Range<Int>, maxPixels: Int = defaultMaxPixels
    ) throws -> (image: RGBImage, left: Int, top: Int) {
        guard !data.isEmpty else { throw ImageError(.empty, "the image file is empty") }
        return try call(data) { bytes, count, image in
            cmass_decode_jpeg_region(
                bytes, count, Int64(maxPixels), Int32(columns.lowerBound), Int32(rows.lowerBound),
                Int32(columns.count), Int32(rows.count), image)
        } result: { image in
            (decodedPixels(image), Int(image.left), Int(image.top))
        }
    }

    /// Runs a C decoder over `data` and turns its status into a value or an `ImageError`.
    private static func call<T>(
        _ data: [UInt8], _ decode: (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<cmass_image>) -> Int32,
        result: (cmass_image) -> T
    ) throws -> T {
        var image = cmass_image()
        let status = data.withUnsafeBufferPointer { decode($0.baseAddress, $0.count, &image) }
        defer { cmass_image_free(&image) }
        guard status == 0 else {
            let message = withUnsafeBytes(of: image.error) {
                String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
            }
            throw ImageError(message.contains("over the limit") ? .tooLarge : .corrupt, message)
        }
        return result(image)
    }

    private static func decodedPixels(_ image: cmass_image) -> RGBImage {
        let (w, h) = (Int(image.width), Int(image.height))
        return RGBImage(width: w, height: h, pixels: Array(UnsafeBufferPointer(start: image.pixels, count: w * h * 3)))
    }
}

extension RGBImage {
    /// The image as EXIF orientation `tag` (1–8) says it should be displayed (Pillow's `exif_transpose`).
    public func oriented(_ tag: Int) -> RGBImage {
        guard (2...8).contains(tag) else { return self }
        let swaps = tag >= 5
        let (ow, oh) = swaps ? (height, width) : (width, height)
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<oh {
            for x in 0..<ow {
                let (sx, sy): (Int, Int)
                switch tag {
                case 2: (sx, sy) = (width - 1 - x, y)
                case 3: (sx, sy) = (width - 1 - x, height - 1 - y)
                case 4: (sx, sy) = (x, height - 1 - y)
                case 5: (sx, sy) = (y, x)
                case 6: (sx, sy) = (y, height - 1 - x)
                case 7: (sx, sy) = (width - 1 - y, height - 1 - x)
                default: (sx, sy) = (width - 1 - y, x)  // 8
                }
                let s = (sy * width + sx) * 3
                let d = (y * ow + x) * 3
                out[d] = pixels[s]
                out[d + 1] = pixels[s + 1]
                out[d + 2] = pixels[s + 2]
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }
}
