import MassTensor

/// 2-D convolution on NHWC images (channels innermost, as Mass's image path), with PyTorch's weight layout
/// [out, in / groups, kh, kw], explicit padding, stride and groups (groups == channels is depthwise). Each group
/// is an im2col matrix times its weights through OpenBLAS; the gradients are the transposed products and col2im.
extension Variable {
    public struct Convolution: Sendable, Equatable {
        public var stride: Int
        /// Zeros added above, left, below and right of the image.
        public var padding: (top: Int, left: Int, bottom: Int, right: Int)
        public var groups: Int

        public init(stride: Int = 1, padding: Int = 0, groups: Int = 1) {
            self.stride = stride
            self.padding = (padding, padding, padding, padding)
            self.groups = groups
        }

        public init(stride: Int, padding: (top: Int, left: Int, bottom: Int, right: Int), groups: Int = 1) {
            self.stride = stride
            self.padding = padding
            self.groups = groups
        }

        public static func == (a: Convolution, b: Convolution) -> Bool {
            a.stride == b.stride && a.groups == b.groups && a.padding == b.padding
        }
    }

    /// x [n, h, w, cin] ⊛ weight [cout, cin / groups, kh, kw] + bias [cout] → [n, oh, ow, cout].
    public func conv2d(_ weight: Variable, _ bias: Variable?, _ conv: Convolution) -> Variable {
        precondition(shape.count == 4 && weight.shape.count == 4, "conv2d: x must be NHWC and weight 4-D")
        let (n, h, w, cin) = (shape[0], shape[1], shape[2], shape[3])
        let (cout, cinG, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let groups = conv.groups
        precondition(
            cin % groups == 0 && cout % groups == 0 && cinG == cin / groups,
            "conv2d: \(cin) input and \(cout) output channels do not fit weight \(weight.shape) in \(groups) groups")
        let p = conv.padding
        let oh = (h + p.top + p.bottom - kh) / conv.stride + 1
        let ow = (w + p.left + p.right - kw) / conv.stride + 1
        precondition(oh > 0 && ow > 0, "conv2d: a \(kh)×\(kw) kernel does not fit a \(h)×\(w) image")
        let coutG = cout / groups
        let pixels = n * oh * ow
        let patch = cinG * kh * kw
        // For pixel (b, oy, ox) and column (ci, ky, kx) of a group: the index of its input element, or −1 (padding).
        var source = [Int](repeating: -1, count: pixels * patch)
        for b in 0..<n {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let row = ((b * oh + oy) * ow + ox) * patch
                    for ci in 0..<cinG {
                        for ky in 0..<kh {
                            let y = oy * conv.stride + ky - p.top
                            guard y >= 0 && y < h else { continue }
                            for kx in 0..<kw {
                                let x = ox * conv.stride + kx - p.left
                                guard x >= 0 && x < w else { continue }
                                source[row + (ci * kh + ky) * kw + kx] = ((b * h + y) * w + x) * cin + ci
                            }
                        }
                    }
                }
            }
        }
        func columns(_ group: Int) -> [Float] {
            let offset = group * cinG
            return source.map { $0 < 0 ? 0 : value[$0 + offset] }
        }
        var out = [Float](repeating: 0, count: pixels * cout)
        if let bias {
            precondition(bias.shape == [cout], "conv2d: bias \(bias.shape) does not fit \(cout) channels")
            for r in 0..<pixels { for c in 0..<cout { out[r * cout + c] = bias.value[c] } }
        }
        for group in 0..<groups {
            let cols = columns(group)
            let weights = Array(weight.value[(group * coutG * patch)..<((group + 1) * coutG * patch)])
            var y = [Float](repeating: 0, count: pixels * coutG)
            Self.gemm(false, true, pixels, coutG, patch, cols, patch, weights, patch, 0, &y, coutG)
            for r in 0..<pixels { for c in 0..<coutG { out[r * cout + group * coutG + c] += y[r * coutG + c] } }
        }
        let parents = [self, weight] + (bias.map { [$0] } ?? [])
        return Variable(out, shape: [n, oh, ow, cout], parents: parents) { [self] g in
            var dx = [Float](repeating: 0, count: requiresGrad ? count : 0)
            var dw = [Float](repeating: 0, count: weight.requiresGrad ? weight.count : 0)
            for group in 0..<groups {
                var dy = [Float](repeating: 0, count: pixels * coutG)
                for r in 0..<pixels { for c in 0..<coutG { dy[r * coutG + c] = g[r * cout + group * coutG + c] } }
                if weight.requiresGrad {
                    var dwg = [Float](repeating: 0, count: coutG * patch)
                    Self.gemm(true, false, coutG, patch, pixels, dy, coutG, columns(group), patch, 0, &dwg, patch)
                    for i in 0..<dwg.count { dw[group * coutG * patch + i] = dwg[i] }
                }
                if requiresGrad {
                    let weights = Array(weight.value[(group * coutG * patch)..<((group + 1) * coutG * patch)])
                    var dcols = [Float](repeating: 0, count: pixels * patch)
                    Self.gemm(false, false, pixels, patch, coutG, dy, coutG, weights, patch, 0, &dcols, patch)
                    let offset = group * cinG
                    for i in 0..<source.count where source[i] >= 0 { dx[source[i] + offset] += dcols[i] }
                }
            }
            if requiresGrad { accumulate(dx) }
            if weight.requiresGrad { weight.accumulate(dw) }
            if let bias, bias.requiresGrad {
                var db = [Float](repeating: 0, count: cout)
                for r in 0..<pixels { for c in 0..<cout { db[c] += g[r * cout + c] } }
                bias.accumulate(db)
            }
        }
    }

    /// The largest value of each `size`×`size` window, `stride` apart, per channel: x [n, h, w, c] →
    /// [n, h', w', c]; the gradient goes to the (first) largest element.
    public func maxPooled(size: Int, stride: Int) -> Variable {
        precondition(shape.count == 4, "maxPooled: x must be NHWC, got \(shape)")
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        let (oh, ow) = ((h - size) / stride + 1, (w - size) / stride + 1)
        var out = [Float](repeating: -.infinity, count: n * oh * ow * c)
        var winner = [Int](repeating: 0, count: out.count)
        for b in 0..<n {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    for ch in 0..<c {
                        let o = ((b * oh + oy) * ow + ox) * c + ch
                        for ky in 0..<size {
                            for kx in 0..<size {
                                let i = ((b * h + oy * stride + ky) * w + ox * stride + kx) * c + ch
                                if value[i] > out[o] {
                                    out[o] = value[i]
                                    winner[o] = i
                                }
                            }
                        }
                    }
                }
            }
        }
        return Variable(out, shape: [n, oh, ow, c], parents: [self]) { [self] g in
            var d = [Float](repeating: 0, count: count)
            for o in 0..<g.count { d[winner[o]] += g[o] }
            accumulate(d)
        }
    }

    /// The mean over each image's pixels: x [n, h, w, c] → [n, c].
    public func globalAveragePooled() -> Variable {
        precondition(shape.count == 4, "globalAveragePooled: x must be NHWC, got \(shape)")
        let (n, pixels, c) = (shape[0], shape[1] * shape[2], shape[3])
        return reshaped([n, pixels, c]).pooledOverPixels(n: n, pixels: pixels, channels: c)
    }

    private func pooledOverPixels(n: Int, pixels: Int, channels c: Int) -> Variable {
        var out = [Float](repeating: 0, count: n * c)
        for b in 0..<n {
            for p in 0..<pixels { for ch in 0..<c { out[b * c + ch] += value[(b * pixels + p) * c + ch] } }
        }
        let scale = 1 / Float(pixels)
        for i in 0..<out.count { out[i] *= scale }
        return Variable(out, shape: [n, c], parents: [self]) { [self] g in
            var d = [Float](repeating: 0, count: count)
            for b in 0..<n {
                for p in 0..<pixels { for ch in 0..<c { d[(b * pixels + p) * c + ch] = g[b * c + ch] * scale } }
            }
            accumulate(d)
        }
    }
}
