/// Convolution kernels on NHWC activations (channels innermost, so that SIMD runs across channels), with the
/// bias and ReLU6 fused. Pointwise (1×1) convolutions are matrix products (`ComputePool.apply`); these are the
/// rest: depthwise k×k and a small dense k×k convolution for the stem.
extension Kernels {
    /// min(max(v, 0), 6) lane-wise, as two blends (`clamped` is a scalar loop over the lanes).
    @inline(__always)
    static func relu6(_ v: SIMD16<Float>) -> SIMD16<Float> {
        let low = v.replacing(with: 0, where: v .< 0)
        return low.replacing(with: 6, where: low .> 6)
    }

    /// In place: x = min(max(x, 0), 6).
    public static func relu6(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var c = 0
        while c + 8 <= count {
            let v = load(x + c)
            let low = v.replacing(with: 0, where: v .< 0)
            store(low.replacing(with: 6, where: low .> 6), x + c)
            c += 8
        }
        while c < count {
            x[c] = min(max(x[c], 0), 6)
            c += 1
        }
    }

    /// TensorFlow "SAME" padding: output size `ceil(in / stride)` and the padding before (the rest goes after).
    public static func samePadding(input: Int, kernel: Int, stride: Int) -> (output: Int, before: Int) {
        let output = (input + stride - 1) / stride
        let total = max((output - 1) * stride + kernel - input, 0)
        return (output, total / 2)
    }

    /// The geometry of one 2-D convolution on an NHWC image.
    public struct ConvShape: Sendable, Equatable {
        public let height: Int, width: Int
        public let kernel: Int, stride: Int
        public let outHeight: Int, outWidth: Int
        public let padTop: Int, padLeft: Int

        /// "SAME" padding, as TensorFlow computes it.
        public init(height: Int, width: Int, kernel: Int, stride: Int) {
            self.height = height
            self.width = width
            self.kernel = kernel
            self.stride = stride
            (outHeight, padTop) = samePadding(input: height, kernel: kernel, stride: stride)
            (outWidth, padLeft) = samePadding(input: width, kernel: kernel, stride: stride)
        }
    }

    /// Depthwise convolution of output rows `rows` of one image: x [H, W, C] → y [outH, outW, C] with weights
    /// [k, k, C] and a bias [C], then ReLU6 when `relu6`. Out-of-image taps count as zeros.
    ///
    /// Per output row and block of 16 channels, four output pixels are computed together where all their taps
    /// lie inside the image, so each weight vector loaded serves four FMAs; edge pixels take the general path.
    public static func depthwise(
        _ x: UnsafePointer<Float>, shape s: ConvShape, channels: Int, weights: UnsafePointer<Float>,
        bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Range<Int>, relu6: Bool
    ) {
        typealias W = SIMD16<Float>
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> W { UnsafeRawPointer(p).loadUnaligned(as: W.self) }
        @inline(__always) func store(_ v: W, _ p: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(p).storeBytes(of: relu6 ? Self.relu6(v) : v, as: W.self)
        }
        let k = s.kernel
        let stride = s.stride
        let c16 = channels & ~15
        // Output columns whose taps are all inside the image horizontally.
        let firstFull = (s.padLeft + stride - 1) / stride
        let lastFull = min(s.outWidth, (s.width - k + s.padLeft) / stride + 1)  // exclusive
        for oy in rows {
            let iy0 = oy &* stride &- s.padTop
            let ky0 = max(0, -iy0)
            let ky1 = min(k, s.height &- iy0)
            let outRowOffset: Int = oy &* s.outWidth &* channels
            let outRow = y + outRowOffset
            // One pixel, all channels, any position (edges).
            func pixel(_ ox: Int) {
                let ix0 = ox &* stride &- s.padLeft
                let kx0 = max(0, -ix0)
                let kx1 = min(k, s.width &- ix0)
                let outOffset: Int = ox &* channels
                let out = outRow + outOffset
                var c = 0
                while c < c16 {
                    var acc = load(bias + c)
                    for ky in ky0..<ky1 {
                        let rowOffset: Int = ((iy0 &+ ky) &* s.width &+ ix0) &* channels &+ c
                        let weightOffset: Int = ky &* k &* channels &+ c
                        let row = x + rowOffset
                        let wrow = weights + weightOffset
                        for kx in kx0..<kx1 {
                            let tap: Int = kx &* channels
                            acc.addProduct(load(row + tap), load(wrow + tap))
                        }
                    }
                    store(acc, out + c)
                    c &+= 16
                }
                while c < channels {
                    var acc = bias[c]
                    for ky in ky0..<ky1 {
                        for kx in kx0..<kx1 {
                            acc +=
                                x[((iy0 &+ ky) &* s.width &+ ix0 &+ kx) &* channels &+ c]
                                * weights[(ky &* k &+ kx) &* channels &+ c]
                        }
                    }
                    out[c] = relu6 ? min(max(acc, 0), 6) : acc
                    c &+= 1
                }
            }
            var ox = 0
            while ox < min(firstFull, s.outWidth) {
                pixel(ox)
                ox &+= 1
            }
            // Interior: four pixels at a time, 16 channels at a time.
            let step = stride &* channels
            let step2 = 2 &* step
            let step3 = 3 &* step
            let channels2 = 2 &* channels
            let channels3 = 3 &* channels
            while ox &+ 4 <= lastFull && c16 == channels {
                let ix0 = ox &* stride &- s.padLeft
                var c = 0
                while c < channels {
                    let b = load(bias + c)
                    var a0 = b
                    var a1 = b
                    var a2 = b
                    var a3 = b
                    for ky in ky0..<ky1 {
                        let rowOffset: Int = ((iy0 &+ ky) &* s.width &+ ix0) &* channels &+ c
                        let weightOffset: Int = ky &* k &* channels &+ c
                        var p = x + rowOffset
                        var w = weights + weightOffset
                        for _ in 0..<k {
                            let wv = load(w)
                            a0.addProduct(load(p), wv)
                            a1.addProduct(load(p + step), wv)
                            a2.addProduct(load(p + step2), wv)
                            a3.addProduct(load(p + step3), wv)
                            p += channels
                            w += channels
                        }
                    }
                    let outOffset: Int = ox &* channels &+ c
                    let out = outRow + outOffset
                    store(a0, out)
                    store(a1, out + channels)
                    store(a2, out + channels2)
                    store(a3, out + channels3)
                    c &+= 16
                }
                ox &+= 4
            }
            while ox < s.outWidth {
                pixel(ox)
                ox &+= 1
            }
        }
    }

    /// Dense convolution of output rows `rows` of one image, for few input channels (the stem): x [H, W, Cin]
    /// → y [outH, outW, Cout] with weights [k, k, Cin, Cout] and a bias [Cout], ReLU6 when `relu6`.
    /// `Cout` must be a multiple of 16.
    public static func denseConv(
        _ x: UnsafePointer<Float>, shape s: ConvShape, inChannels: Int, outChannels: Int,
        weights: UnsafePointer<Float>, bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
        rows: Range<Int>, relu6: Bool
    ) {
        typealias W = SIMD16<Float>
        precondition(outChannels % 16 == 0, "denseConv needs output channels in multiples of 16. This is a bug.")
        let k = s.kernel
        for oy in rows {
            let iy0 = oy * s.stride - s.padTop
            for ox in 0..<s.outWidth {
                let ix0 = ox * s.stride - s.padLeft
                let out = y + (oy * s.outWidth + ox) * outChannels
                var c = 0
                while c < outChannels {
                    var acc = UnsafeRawPointer(bias + c).loadUnaligned(as: W.self)
                    for ky in max(0, -iy0)..<min(k, s.height - iy0) {
                        for kx in max(0, -ix0)..<min(k, s.width - ix0) {
                            let pixel = x + ((iy0 + ky) * s.width + ix0 + kx) * inChannels
                            let w = weights + ((ky * k + kx) * inChannels) * outChannels + c
                            for ci in 0..<inChannels {
                                acc.addProduct(
                                    W(repeating: pixel[ci]),
                                    UnsafeRawPointer(w + ci * outChannels).loadUnaligned(as: W.self))
                            }
                        }
                    }
                    if relu6 { acc = Self.relu6(acc) }
                    UnsafeMutableRawPointer(out + c).storeBytes(of: acc, as: W.self)
                    c += 16
                }
            }
        }
    }

    /// Mean over the `pixels` rows of x [pixels, C] into y [C].
    public static func averagePool(
        _ x: UnsafePointer<Float>, pixels: Int, channels: Int, into y: UnsafeMutablePointer<Float>
    ) {
        for c in 0..<channels { y[c] = 0 }
        for p in 0..<pixels {
            let row = x + p * channels
            for c in 0..<channels { y[c] += row[c] }
        }
        let scale = 1 / Float(pixels)
        for c in 0..<channels { y[c] *= scale }
    }
}
