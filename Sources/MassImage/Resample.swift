import CMassImage

/// Pillow's `Image.resize(size, BILINEAR)` (libImaging/Resample.c), reproduced exactly: a triangle filter whose
/// support grows with the downscale factor (antialiasing), coefficients in double normalised to 22-bit fixed
/// point, a horizontal pass into an 8-bit intermediate, then the vertical pass, each rounding and clamping to
/// 0–255. Every output pixel depends only on its own coefficients, so a part of the output (the centre crop a
/// model sees) can be computed alone, from the source pixels it reads, with the bytes a full resize would give.
public struct BilinearResize: Sendable {
    static let precisionBits = 22  // resample.c's PRECISION_BITS

    /// Per output pixel: the first input index, the tap count, and fixed-point weights (`ksize` per output).
    struct Coefficients: Sendable {
        let first: [Int32]
        let count: [Int32]
        let weights: [Int32]
        let ksize: Int

        /// Input pixels the outputs read.
        var span: Range<Int> { Int(first.first!)..<Int(first.last! + count.last!) }

        /// The same, with input indices counted from `origin`.
        func shifted(by origin: Int) -> [Int32] { first.map { $0 - Int32(origin) } }
    }

    /// The output pixels computed.
    public let columns: Range<Int>
    public let rows: Range<Int>
    let horizontal: Coefficients
    let vertical: Coefficients

    /// The part `columns` × `rows` of `sourceWidth`×`sourceHeight` resized to `width`×`height`.
    public init(
        sourceWidth: Int, sourceHeight: Int, width: Int, height: Int, columns: Range<Int>? = nil,
        rows: Range<Int>? = nil
    ) {
        self.columns = columns ?? 0..<width
        self.rows = rows ?? 0..<height
        precondition(
            !self.columns.isEmpty && !self.rows.isEmpty && self.columns.upperBound <= width
                && self.rows.upperBound <= height, "BilinearResize: region outside the output")
        horizontal = Self.coefficients(inSize: sourceWidth, outSize: width, outputs: self.columns)
        vertical = Self.coefficients(inSize: sourceHeight, outSize: height, outputs: self.rows)
    }

    /// Source columns and rows the computed pixels read.
    public var sourceColumns: Range<Int> { horizontal.span }
    public var sourceRows: Range<Int> { vertical.span }

    static func coefficients(inSize: Int, outSize: Int, outputs: Range<Int>) -> Coefficients {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var first: [Int32] = []
        var count: [Int32] = []
        var weights = [Int32](repeating: 0, count: outputs.count * ksize)
        var k = [Double](repeating: 0, count: ksize)
        for (i, xx) in outputs.enumerated() {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1 / filterScale
            let xmin = max(0, Int(center - support + 0.5))
            let xmax = min(inSize, Int(center + support + 0.5)) - xmin
            var total = 0.0
            for x in 0..<xmax {
                let t = abs((Double(x + xmin) - center + 0.5) * ss)
                let w = t < 1 ? 1 - t : 0
                k[x] = w
                total += w
            }
            for x in 0..<xmax {
                let w = total != 0 ? k[x] / total : k[x]
                let fixed = w * Double(1 << precisionBits)
                weights[i * ksize + x] = Int32(w < 0 ? fixed - 0.5 : fixed + 0.5)
            }
            first.append(Int32(xmin))
            count.append(Int32(xmax))
        }
        return Coefficients(first: first, count: count, weights: weights, ksize: ksize)
    }

    /// The computed pixels (`columns.count` × `rows.count`). `part` holds the source from (`left`, `top`) on and
    /// must cover `sourceColumns` × `sourceRows`. A horizontal pass over the source rows the vertical pass reads
    /// (CMassImage's resample.c), into an 8-bit intermediate, then the vertical pass.
    public func apply(to part: RGBImage, left: Int = 0, top: Int = 0) -> RGBImage {
        precondition(
            left <= sourceColumns.lowerBound && top <= sourceRows.lowerBound
                && sourceColumns.upperBound <= left + part.width && sourceRows.upperBound <= top + part.height,
            "BilinearResize: the source part does not cover the pixels read")
        let outW = columns.count
        let firstRow = sourceRows.lowerBound
        let tempRows = sourceRows.count
        // The part's last row cannot be read past its last pixel.
        let vectorRows = min(tempRows, part.height - 1 - (firstRow - top))
        var temp = [UInt8](repeating: 0, count: outW * tempRows * 3)
        let firstColumn = horizontal.shifted(by: left)
        part.pixels.withUnsafeBufferPointer { src in
            temp.withUnsafeMutableBufferPointer { dst in
                cmass_resample_horizontal(
                    src.baseAddress! + (firstRow - top) * part.width * 3, part.width * 3, Int32(tempRows),
                    Int32(vectorRows), firstColumn, horizontal.count, horizontal.weights, Int32(horizontal.ksize),
                    Int32(outW), dst.baseAddress!)
            }
        }
        var out = [UInt8](repeating: 0, count: outW * rows.count * 3)
        temp.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                cmass_resample_vertical(
                    src.baseAddress!, outW * 3, vertical.shifted(by: firstRow), vertical.count, vertical.weights,
                    Int32(vertical.ksize), Int32(rows.count), dst.baseAddress!)
            }
        }
        return RGBImage(width: outW, height: rows.count, pixels: out)
    }
}

extension RGBImage {
    /// The image resized to `width`×`height` as Pillow's bilinear resize does it.
    public func resizedBilinear(width outW: Int, height outH: Int) -> RGBImage {
        BilinearResize(sourceWidth: width, sourceHeight: height, width: outW, height: outH).apply(to: self)
    }

    /// The `width`×`height` region at (`left`, `top`), which must lie inside the image.
    public func cropped(left: Int, top: Int, width w: Int, height h: Int) -> RGBImage {
        precondition(left >= 0 && top >= 0 && left + w <= width && top + h <= height, "crop outside the image")
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            let s = ((top + y) * width + left) * 3
            out.replaceSubrange((y * w * 3)..<((y + 1) * w * 3), with: pixels[s..<(s + w * 3)])
        }
        return RGBImage(width: w, height: h, pixels: out)
    }
}
