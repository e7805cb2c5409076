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

    /// The centred crop of `crop`×`crop` (offsets rounded half to even, as Python's `round`).
    public func cropped(_ image: RGBImage) -> RGBImage {
        let left = Int((Double(image.width - crop) / 2).rounded(.toNearestOrEven))
        let top = Int((Double(image.height - crop) / 2).rounded(.toNearestOrEven))
        return image.cropped(left: left, top: top, width: crop, height: crop)
    }

    /// Resize, then crop: the `crop`×`crop` RGB bytes the model sees. Images smaller than the crop after the
    /// resize cannot occur (the shorter side becomes `resize` >= `crop`).
    public func crop(_ image: RGBImage) -> RGBImage {
        let size = resizedSize(width: image.width, height: image.height)
        return cropped(image.resizedBilinear(width: max(1, size.width), height: max(1, size.height)))
    }

    /// `(pixel − mean) / std` as NCHW float32 [3, crop, crop], written at `into`.
    public func normalize(_ image: RGBImage, into out: UnsafeMutablePointer<Float>) {
        let plane = image.width * image.height
        for i in 0..<plane {
            for c in 0..<3 { out[c * plane + i] = (Float(image.pixels[i * 3 + c]) - mean) / std }
        }
    }
}
