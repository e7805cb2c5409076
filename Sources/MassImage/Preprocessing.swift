/// The classification preprocessing recorded with the reference results (torchvision/timm style): shorter side
/// to `resize` with Pillow's bilinear filter, centre crop `crop`×`crop`, then `(pixel − mean) / std` per channel,
/// as NCHW float32.
public struct ImagePreprocessing: Sendable, Equatable {
    public var resize = 256
    public var crop = 224
    public var mean: Float = 127
    public var std: Float = 128

    public init() {}

    /// The resized size: the shorter side becomes `resize`, the other keeps the aspect ratio (truncated).
    public func resizedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        width <= height
            ? (resize, Int(Double(resize * height) / Double(width)))
            : (Int(Double(resize * width) / Double(height)), resize)
    }

    /// Where the centred `crop`×`crop` sits in a `width`×`height` image (offsets rounded half to even, as
    /// Python's `round`).
    public func cropOrigin(width: Int, height: Int) -> (left: Int, top: Int) {
        (
            Int((Double(width - crop) / 2).rounded(.toNearestOrEven)),
            Int((Double(height - crop) / 2).rounded(.toNearestOrEven))
        )
    }

    /// The part of the resize that the centre crop keeps, for a `width`×`height` source. Images smaller than the
    /// crop after the resize cannot occur (the shorter side becomes `resize` >= `crop`).
    public func resizePlan(width: Int, height: Int) -> BilinearResize {
        let size = resizedSize(width: width, height: height)
        let (w, h) = (max(1, size.width), max(1, size.height))
        let (left, top) = cropOrigin(width: w, height: h)
        return BilinearResize(
            sourceWidth: width, sourceHeight: height, width: w, height: h, columns: left..<(left + crop),
            rows: top..<(top + crop))
    }

    /// Resize, then crop: the `crop`×`crop` RGB bytes the model sees. Only the kept pixels are computed.
    public func crop(_ image: RGBImage) -> RGBImage {
        resizePlan(width: image.width, height: image.height).apply(to: image)
    }

    /// Decode, resize and crop an encoded image. A JPEG stored upright is decoded only where the crop reads it
    /// (libjpeg-turbo skips the other rows' and columns' upsampling and colour conversion), with a margin of one
    /// iMCU each side because a partial decode's edge columns may differ from a full decode's; the bytes are
    /// those of a full decode.
    public func crop(encoded data: [UInt8], maxPixels: Int = ImageDecoder.defaultMaxPixels) throws -> RGBImage {
        if let header = try? ImageDecoder.jpegHeader(data, maxPixels: maxPixels), header.orientation == 1 {
            let plan = resizePlan(width: header.width, height: header.height)
            let margin = 16
            let columns =
                max(
                    0, plan.sourceColumns.lowerBound - margin)..<min(
                    header.width, plan.sourceColumns.upperBound + margin)
            let part = try ImageDecoder.decodeJPEG(
                data, columns: columns, rows: plan.sourceRows, maxPixels: maxPixels)
            return plan.apply(to: part.image, left: part.left, top: part.top)
        }
        return crop(try ImageDecoder.decode(data, maxPixels: maxPixels))
    }

    /// `(pixel − mean) / std` in the pixels' own order: NHWC float32 [crop, crop, 3], written at `into`.
    public func normalizeInterleaved(_ image: RGBImage, into out: UnsafeMutablePointer<Float>) {
        let (mean, std) = (self.mean, self.std)
        image.pixels.withUnsafeBufferPointer { p in
            for i in p.indices { out[i] = (Float(p[i]) - mean) / std }
        }
    }

    /// `(pixel − mean) / std` as NCHW float32 [3, crop, crop], written at `into`.
    public func normalize(_ image: RGBImage, into out: UnsafeMutablePointer<Float>) {
        let plane = image.width * image.height
        for i in 0..<plane {
            for c in 0..<3 { out[c * plane + i] = (Float(image.pixels[i * 3 + c]) - mean) / std }
        }
    }
}
