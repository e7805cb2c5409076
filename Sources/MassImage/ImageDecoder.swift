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
        var image = cmass_image()
        let status = data.withUnsafeBufferPointer { buffer in
            isPNG
                ? cmass_decode_png(buffer.baseAddress, buffer.count, Int64(maxPixels), &image)
                : cmass_decode_jpeg(buffer.baseAddress, buffer.count, Int64(maxPixels), &image)
        }
        defer { cmass_image_free(&image) }
        guard status == 0 else {
            let message = withUnsafeBytes(of: image.error) {
                String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
            }
            throw ImageError(message.contains("over the limit") ? .tooLarge : .corrupt, message)
        }
        let (w, h) = (Int(image.width), Int(image.height))
        let decoded = RGBImage(
            width: w, height: h, pixels: Array(UnsafeBufferPointer(start: image.pixels, count: w * h * 3)))
        return decoded.oriented(Int(image.orientation))
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
