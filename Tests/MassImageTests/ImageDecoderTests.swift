import Foundation
import MassImage
import MassTesting
import Testing

enum TestImages {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("images")
    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }
    static func decode(_ name: String) throws -> RGBImage { try ImageDecoder.decode(bytes(name)) }
}

/// The decoders against Pillow (`Image.open(...)` with `exif_transpose`, then `convert("RGB")`) on small files
/// Pillow and libpng wrote (Tests/MassImageTests/images).
@Suite struct ImageDecoderTests {
    func differences(_ a: RGBImage, _ b: RGBImage) -> (max: Int, mean: Double) {
        let d = zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }
        return (d.max() ?? 0, Double(d.reduce(0, +)) / Double(max(1, d.count)))
    }

    @Test(arguments: ["palette", "gray", "rgba", "gray-alpha"])
    func pngVariantsMatchPillow(name: String) throws {
        let image = try TestImages.decode("\(name).png")
        let expected = try TestImages.decode("\(name).expected.png")
        #expect(image.width == 37 && image.height == 23)
        #expect(image == expected)
    }

    @Test func sixteenBitInterlacedPNGKeepsTheHighByte() throws {
        #expect(try TestImages.decode("interlaced16.png") == TestImages.decode("base.png"))
    }

    /// Same library (libjpeg-turbo), same settings (islow IDCT, fancy upsampling): at most one level apart
    /// across versions.
    @Test(arguments: ["baseline", "progressive", "gray-jpeg", "rotated6", "rotated8"])
    func jpegVariantsMatchPillow(name: String) throws {
        let image = try TestImages.decode("\(name).jpg")
        let expected = try TestImages.decode("\(name).expected.png")
        #expect(image.width == expected.width && image.height == expected.height)
        let (maxDiff, _) = differences(image, expected)
        #expect(maxDiff <= 1, "\(name): max difference \(maxDiff)")
    }

    @Test func exifOrientationTurnsTheImage() throws {
        let upright = try TestImages.decode("baseline.jpg")
        let six = try TestImages.decode("rotated6.jpg")
        let eight = try TestImages.decode("rotated8.jpg")
        #expect(six.width == 23 && six.height == 37 && eight.width == 23 && eight.height == 37)
        // 6 is a quarter turn clockwise: the top row of the result is the left column, read bottom to top.
        for x in 0..<23 {
            let s = (0 * 23 + x) * 3
            let u = ((22 - x) * 37 + 0) * 3
            #expect(abs(Int(six.pixels[s]) - Int(upright.pixels[u])) <= 1)
        }
        #expect(upright.oriented(6).oriented(8) == upright)
        #expect(upright.oriented(2).oriented(2) == upright)
        // Transpose is a quarter turn clockwise then a mirror; transverse the same from a counter-clockwise turn.
        #expect(upright.oriented(5) == upright.oriented(6).oriented(2))
        #expect(upright.oriented(7) == upright.oriented(8).oriented(2))
        #expect(upright.oriented(3) == upright.oriented(2).oriented(4))
    }

    @Test func badFilesGetClearErrors() throws {
        func error(_ bytes: [UInt8], maxPixels: Int = ImageDecoder.defaultMaxPixels) -> ImageError? {
            caught(ImageError.self) { _ = try ImageDecoder.decode(bytes, maxPixels: maxPixels) }
        }
        #expect(error([])?.code == .empty)
        #expect(error(Array("GIF89a........".utf8))?.code == .unsupportedFormat)
        let png = try TestImages.bytes("base.png")
        let jpeg = try TestImages.bytes("progressive.jpg")
        for (name, file) in [("png", png), ("jpeg", jpeg)] {
            for cut in [20, file.count / 2, file.count - 12] {
                let e = error(Array(file.prefix(cut)))
                #expect(e?.code == .corrupt, "\(name) cut at \(cut): \(String(describing: e))")
            }
            var damaged = file
            for i in (file.count - 60)..<(file.count - 20) { damaged[i] ^= 0x5A }  // inside the image data
            #expect(error(damaged)?.code == .corrupt, "\(name) damaged")
            // A decompression bomb is refused from the header (37 x 23 = 851 pixels > 800).
            let bomb = error(file, maxPixels: 800)
            #expect(bomb?.code == .tooLarge && bomb!.message.contains("851 pixels"), "\(String(describing: bomb))")
        }
        let cmyk = error(try TestImages.bytes("cmyk.jpg"))
        #expect(cmyk?.code == .corrupt && cmyk!.message.contains("CMYK"))
    }
}

/// Preprocessing against the reference crops: Pillow's fixed-point bilinear resize and the centre crop.
@Suite struct PreprocessingTests {
    @Test func cropsMatchTheRecordedCrops() throws {
        let fixture = try EfficientNetFixture.load()
        let preprocessing = ImagePreprocessing()
        for image in fixture.images {
            let decoded = try ImageDecoder.decode(Array(Data(contentsOf: EfficientNetFixture.url(image.file))))
            #expect([decoded.width, decoded.height] == image.size_wh)
            let size = preprocessing.resizedSize(width: decoded.width, height: decoded.height)
            #expect([size.width, size.height] == image.geometry.resized_wh, "\(image.id)")
            let crop = preprocessing.crop(decoded)
            let golden = try ImageDecoder.decode(Array(Data(contentsOf: EfficientNetFixture.url(image.crop224_file))))
            let d = zip(crop.pixels, golden.pixels).map { abs(Int($0) - Int($1)) }
            let maxDiff = d.max()!
            let mean = Double(d.reduce(0, +)) / Double(d.count)
            #expect(maxDiff <= 2 && mean <= 0.5, "\(image.id): max \(maxDiff), mean \(mean)")
            if image.file.hasSuffix(".png") {
                #expect(maxDiff == 0, "\(image.id): Pillow's fixed-point resize is reproduced exactly (max \(maxDiff))")
            }
        }
    }
}

/// The direct PNG path (libdeflate, SSE unfiltering) against libpng: the same bytes for every file it takes,
/// and every other file (other colour types, 16-bit, interlaced, damaged) left to libpng.
@Suite struct DirectPNGTests {
    static let taken = [
        "filters-rgb", "filters-rgba", "base", "rgba", "baseline.expected", "palette.expected",
    ]

    @Test(arguments: taken) func givesLibpngsBytes(name: String) throws {
        let data = try TestImages.bytes("\(name).png")
        let direct = try #require(ImageDecoder.decodePNGDirectly(data), "\(name) was left to libpng")
        #expect(direct == (try ImageDecoder.decodePNGWithLibpng(data)))
        #expect(try ImageDecoder.decode(data) == direct)
    }

    @Test func fixturePhotosGiveLibpngsBytes() throws {
        for name in ["chelsea.png", "coffee.png", "astronaut.png", "rocket.crop224.png"] {
            let data = Array(try Data(contentsOf: EfficientNetFixture.url(name)))
            let direct = try #require(ImageDecoder.decodePNGDirectly(data), "\(name) was left to libpng")
            #expect(direct == (try ImageDecoder.decodePNGWithLibpng(data)), "\(name)")
        }
    }

    @Test func otherFilesAreLeftToLibpng() throws {
        for name in ["palette", "gray", "gray-alpha", "interlaced16"] {
            #expect(ImageDecoder.decodePNGDirectly(try TestImages.bytes("\(name).png")) == nil, "\(name)")
        }
        let file = try TestImages.bytes("filters-rgb.png")
        for cut in [40, file.count / 2, file.count - 6] {
            #expect(ImageDecoder.decodePNGDirectly(Array(file.prefix(cut))) == nil, "cut at \(cut)")
            #expect(caught(ImageError.self) { _ = try ImageDecoder.decode(Array(file.prefix(cut))) }?.code == .corrupt)
        }
        var damaged = file
        for i in (file.count - 300)..<(file.count - 280) { damaged[i] ^= 0x5A }  // inside the last IDAT
        #expect(ImageDecoder.decodePNGDirectly(damaged) == nil)
        #expect(caught(ImageError.self) { _ = try ImageDecoder.decode(damaged) }?.code == .corrupt)
        // Over the pixel limit: left to libpng, which names it.
        #expect(ImageDecoder.decodePNGDirectly(file, maxPixels: 100) == nil)
        #expect(caught(ImageError.self) { _ = try ImageDecoder.decode(file, maxPixels: 100) }?.code == .tooLarge)
    }
}
