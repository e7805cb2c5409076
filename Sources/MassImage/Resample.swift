/// Pillow's `Image.resize(size, BILINEAR)` (libImaging/Resample.c), reproduced exactly: a triangle filter whose
/// support grows with the downscale factor (antialiasing), coefficients in double normalised to 22-bit fixed
/// point, a horizontal pass into an 8-bit intermediate holding only the rows the vertical pass reads, then the
/// vertical pass, each rounding and clamping to 0–255.
extension RGBImage {
    static let precisionBits = 22

    /// Per output pixel: the first input index, the tap count, and fixed-point weights (`ksize` per output).
    struct Coefficients {
        let bounds: [(Int, Int)]
        let weights: [Int32]
        let ksize: Int
    }

    static func coefficients(inSize: Int, outSize: Int) -> Coefficients {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds: [(Int, Int)] = []
        var weights = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
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
                weights[xx * ksize + x] = Int32(w < 0 ? fixed - 0.5 : fixed + 0.5)
            }
            bounds.append((xmin, xmax))
        }
        return Coefficients(bounds: bounds, weights: weights, ksize: ksize)
    }

    @inline(__always)
    static func clip8(_ v: Int32) -> UInt8 {
        if v >= Int32(255) << Int32(precisionBits) { return 255 }
        if v <= 0 { return 0 }
        return UInt8(v >> Int32(precisionBits))
    }

    /// The image resized to `width`×`height` as Pillow's bilinear resize does it.
    public func resizedBilinear(width outW: Int, height outH: Int) -> RGBImage {
        let needH = outW != width
        let needV = outH != height
        let horizontal = Self.coefficients(inSize: width, outSize: outW)
        let vertical = Self.coefficients(inSize: height, outSize: outH)
        let half = Int32(1) << Int32(Self.precisionBits - 1)
        // Rows of the source the vertical pass reads.
        let first = needV ? vertical.bounds[0].0 : 0
        let last = needV ? vertical.bounds[outH - 1].0 + vertical.bounds[outH - 1].1 : height
        var temp = pixels
        var tempWidth = width
        var tempRows = height
        var rowOffset = 0
        if needH {
            tempWidth = outW
            tempRows = last - first
            rowOffset = first
            temp = [UInt8](repeating: 0, count: outW * tempRows * 3)
            let ksize = horizontal.ksize
            pixels.withUnsafeBufferPointer { srcBuffer in
                temp.withUnsafeMutableBufferPointer { dstBuffer in
                    horizontal.weights.withUnsafeBufferPointer { weightBuffer in
                        horizontal.bounds.withUnsafeBufferPointer { boundBuffer in
                            let src = srcBuffer.baseAddress!
                            let dst = dstBuffer.baseAddress!
                            let weights = weightBuffer.baseAddress!
                            let bounds = boundBuffer.baseAddress!
                            for y in 0..<tempRows {
                                let row = src + (y &+ first) &* width &* 3
                                var out = dst + y &* outW &* 3
                                for xx in 0..<outW {
                                    let (xmin, count) = bounds[xx]
                                    let w = weights + xx &* ksize
                                    var p = row + xmin &* 3
                                    var s0 = half
                                    var s1 = half
                                    var s2 = half
                                    for x in 0..<count {
                                        let k = w[x]
                                        s0 &+= Int32(p[0]) &* k
                                        s1 &+= Int32(p[1]) &* k
                                        s2 &+= Int32(p[2]) &* k
                                        p += 3
                                    }
                                    out[0] = Self.clip8(s0)
                                    out[1] = Self.clip8(s1)
                                    out[2] = Self.clip8(s2)
                                    out += 3
                                }
                            }
                        }
                    }
                }
            }
        }
        guard needV else { return RGBImage(width: tempWidth, height: tempRows, pixels: temp) }
        // Vertical: every byte of an output row is the same weighted sum of source rows, eight at a time.
        let rowBytes = tempWidth * 3
        var out = [UInt8](repeating: 0, count: rowBytes * outH)
        let ksize = vertical.ksize
        temp.withUnsafeBufferPointer { srcBuffer in
            out.withUnsafeMutableBufferPointer { dstBuffer in
                vertical.weights.withUnsafeBufferPointer { weightBuffer in
                    let src = srcBuffer.baseAddress!
                    let dst = dstBuffer.baseAddress!
                    for yy in 0..<outH {
                        let (ymin, count) = vertical.bounds[yy]
                        let base = ymin &- rowOffset
                        let w = weightBuffer.baseAddress! + yy &* ksize
                        let outRow = dst + yy &* rowBytes
                        var i = 0
                        while i &+ 8 <= rowBytes {
                            var acc = SIMD8<Int32>(repeating: half)
                            for y in 0..<count {
                                let offset: Int = (base &+ y) &* rowBytes &+ i
                                let p = src + offset
                                let v = SIMD8<Int32>(
                                    truncatingIfNeeded: UnsafeRawPointer(p).loadUnaligned(as: SIMD8<UInt8>.self))
                                acc &+= v &* w[y]
                            }
                            for lane in 0..<8 { outRow[i &+ lane] = Self.clip8(acc[lane]) }
                            i &+= 8
                        }
                        while i < rowBytes {
                            var acc = half
                            for y in 0..<count { acc &+= Int32(src[(base &+ y) &* rowBytes &+ i]) &* w[y] }
                            outRow[i] = Self.clip8(acc)
                            i &+= 1
                        }
                    }
                }
            }
        }
        return RGBImage(width: tempWidth, height: outH, pixels: out)
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
