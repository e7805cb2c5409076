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
    public static func depthwise(
        _ x: UnsafePointer<Float>, shape s: ConvShape, channels: Int, weights: UnsafePointer<Float>,
        bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Range<Int>, relu6: Bool
    ) {
        typealias W = SIMD16<Float>
        let k = s.kernel
        for oy in rows {
            let iy0 = oy * s.stride - s.padTop
            let ky0 = max(0, -iy0)
            let ky1 = min(k, s.height - iy0)
            for ox in 0..<s.outWidth {
                let ix0 = ox * s.stride - s.padLeft
                let kx0 = max(0, -ix0)
                let kx1 = min(k, s.width - ix0)
                let out = y + (oy * s.outWidth + ox) * channels
                var c = 0
                while c + 16 <= channels {
                    var acc = UnsafeRawPointer(bias + c).loadUnaligned(as: W.self)
                    for ky in ky0..<ky1 {
                        let row = x + ((iy0 + ky) * s.width + ix0) * channels + c
                        let wrow = weights + ky * k * channels + c
                        for kx in kx0..<kx1 {
                            let v = UnsafeRawPointer(row + kx * channels).loadUnaligned(as: W.self)
                            let w = UnsafeRawPointer(wrow + kx * channels).loadUnaligned(as: W.self)
                            acc.addProduct(v, w)
                        }
                    }
                    if relu6 { acc = Self.relu6(acc) }
                    UnsafeMutableRawPointer(out + c).storeBytes(of: acc, as: W.self)
                    c += 16
                }
                while c < channels {
                    var acc = bias[c]
                    for ky in ky0..<ky1 {
                        for kx in kx0..<kx1 {
                            acc +=
                                x[((iy0 + ky) * s.width + ix0 + kx) * channels + c]
                                * weights[(ky * k + kx) * channels + c]
                        }
                    }
                    out[c] = relu6 ? min(max(acc, 0), 6) : acc
                    c += 1
                }
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
