import Foundation
import MassImage
import MassTesting
import Testing

/// The preprocessing computes only the centre crop: Pillow's resize evaluated for the kept pixels alone, from a
/// JPEG decoded only where those pixels read it. Both must give the bytes of the whole computation.
@Suite struct PartialDecodeTests {
    /// JPEGs of every chroma subsampling, baseline and progressive, odd sizes, both orientations
    /// (scripts/make-jpeg-crops.py), the small decoder test files, and the fixture photo.
    static let jpegs = [
        "region-420", "region-422", "region-444", "region-420-progressive", "baseline", "progressive", "gray-jpeg",
        "rotated6",
    ]

    static func jpeg(_ name: String) throws -> [UInt8] {
        name == "rocket"
            ? Array(try Data(contentsOf: EfficientNetFixture.url("rocket.jpg"))) : try TestImages.bytes("\(name).jpg")
    }

    @Test(arguments: jpegs + ["rocket"])
    func cropFromTheEncodedFileEqualsTheWholeComputation(name: String) throws {
        let data = try Self.jpeg(name)
        let whole = try ImageDecoder.decode(data)
        for preprocessing in [ImagePreprocessing(), Self.preprocessing(resize: 230, crop: 200)] {
            let size = preprocessing.resizedSize(width: whole.width, height: whole.height)
            let (left, top) = preprocessing.cropOrigin(width: size.width, height: size.height)
            let expected = whole.resizedBilinear(width: size.width, height: size.height)
                .cropped(left: left, top: top, width: preprocessing.crop, height: preprocessing.crop)
            #expect(try preprocessing.crop(encoded: data) == expected, "\(name), resize \(preprocessing.resize)")
            #expect(preprocessing.crop(whole) == expected, "\(name), resize \(preprocessing.resize)")
        }
    }

    /// Skipped rows leave the rows after them exact, without a margin.
    @Test(arguments: ["region-420", "region-422", "region-420-progressive", "rocket"])
    func rowsOfAPartialDecodeAreExact(name: String) throws {
        let data = try Self.jpeg(name)
        let whole = try ImageDecoder.decode(data)
        for rows in [1..<2, 7..<100, 16..<33, (whole.height - 5)..<whole.height] {
            let part = try ImageDecoder.decodeJPEG(data, columns: 0..<whole.width, rows: rows)
            #expect(part.left == 0 && part.top == rows.lowerBound)
            #expect(part.image == whole.cropped(left: 0, top: rows.lowerBound, width: whole.width, height: rows.count))
        }
        // Columns start at an iMCU boundary at or left of the request.
        let part = try ImageDecoder.decodeJPEG(data, columns: 37..<120, rows: 3..<50)
        #expect(part.left <= 37 && part.left % 8 == 0 && part.left + part.image.width >= 120)
        #expect(part.image.height == 47 && part.top == 3)
    }

    @Test func anyRegionOfTheResizeEqualsTheWholeResize() throws {
        let image = try ImageDecoder.decode(Self.jpeg("region-420"))
        for (w, h) in [(379, 256), (150, 101), (301, 203), (640, 203), (301, 410)] {
            let whole = image.resizedBilinear(width: w, height: h)
            for (columns, rows) in [(0..<w, 0..<h), (3..<(w - 9), 11..<(h - 2)), ((w - 1)..<w, 0..<1)] {
                let plan = BilinearResize(
                    sourceWidth: image.width, sourceHeight: image.height, width: w, height: h, columns: columns,
                    rows: rows)
                let expected = whole.cropped(
                    left: columns.lowerBound, top: rows.lowerBound, width: columns.count, height: rows.count)
                #expect(plan.apply(to: image) == expected, "\(w)x\(h) \(columns) \(rows)")
                // From just the source pixels the region reads.
                let source = image.cropped(
                    left: plan.sourceColumns.lowerBound, top: plan.sourceRows.lowerBound,
                    width: plan.sourceColumns.count, height: plan.sourceRows.count)
                let fromPart = plan.apply(
                    to: source, left: plan.sourceColumns.lowerBound, top: plan.sourceRows.lowerBound)
                #expect(fromPart == expected, "\(w)x\(h) \(columns) \(rows) from its source part")
            }
        }
    }

    /// The rows below the crop are still entropy-decoded: damage there is refused, not ignored.
    @Test func damageOutsideTheCropIsStillRefused() throws {
        let file = try Self.jpeg("region-420")
        let preprocessing = ImagePreprocessing()
        for cut in [20, file.count / 2, file.count - 12] {
            let e = caught(ImageError.self) { _ = try preprocessing.crop(encoded: Array(file.prefix(cut))) }
            #expect(e?.code == .corrupt, "cut at \(cut): \(String(describing: e))")
        }
        var damaged = file
        for i in (file.count - 60)..<(file.count - 20) { damaged[i] ^= 0x5A }
        #expect(caught(ImageError.self) { _ = try preprocessing.crop(encoded: damaged) }?.code == .corrupt)
        let bomb = caught(ImageError.self) { _ = try preprocessing.crop(encoded: file, maxPixels: 60_000) }
        #expect(bomb?.code == .tooLarge, "\(String(describing: bomb))")
    }

    static func preprocessing(resize: Int, crop: Int) -> ImagePreprocessing {
        var p = ImagePreprocessing()
        p.resize = resize
        p.crop = crop
        return p
    }
}
