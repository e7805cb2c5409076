import MassTensor

/// 2-D convolution on NHWC images (channels innermost, as Mass's image path), with PyTorch's weight layout
/// [out, in / groups, kh, kw], explicit padding, stride and groups (groups == channels is depthwise). Without
/// groups, oneDNN's direct convolutions run it (`ConvolutionBackend`); otherwise each group is an im2col matrix
/// times its weights through OpenBLAS, the gradients the transposed products and col2im.
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
    ///
    /// Per group, the patches are gathered as rows of (ky, kx, channel) (in NHWC a patch position's channels are
    /// contiguous, so each is one copy) and multiplied by the weights reordered to the same order; the product
    /// lands in the output's columns of the group directly. Backward: dW from the same patches, reordered back;
    /// dX by the patches' gradients added back in place (col2im).
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
        if let bias { precondition(bias.shape == [cout], "conv2d: bias \(bias.shape) does not fit \(cout) channels") }
        if groups == 1, ConvolutionBackend.selected == .oneDNN,
            let result = conv2dOneDNN(weight, bias, conv, outHeight: oh, outWidth: ow)
        {
            return result
        }
        let coutG = cout / groups
        let pixels = n * oh * ow
        let patch = cinG * kh * kw
        let geometry = Im2Col(
            n: n, h: h, w: w, cin: cin, cinG: cinG, kh: kh, kw: kw, oh: oh, ow: ow, stride: conv.stride,
            top: p.top, left: p.left)
        /// The weights of a group as [coutG, (ky, kx, ci)].
        func reordered(_ group: Int) -> [Float] {
            let source = weight.value
            return [Float](unsafeUninitializedCapacity: coutG * patch) { out, initialized in
                for o in 0..<coutG {
                    let base = (group * coutG + o) * patch
                    for ci in 0..<cinG {
                        for ky in 0..<kh {
                            for kx in 0..<kw {
                                out[o * patch + (ky * kw + kx) * cinG + ci] = source[base + (ci * kh + ky) * kw + kx]
                            }
                        }
                    }
                }
                initialized = coutG * patch
            }
        }
        var out = Self.unfilled(pixels * cout)
        if let bias {
            precondition(bias.shape == [cout], "conv2d: bias \(bias.shape) does not fit \(cout) channels")
            let b = bias.value
            out.withUnsafeMutableBufferPointer { o in
                b.withUnsafeBufferPointer {
                    for r in 0..<pixels { (o.baseAddress! + r * cout).update(from: $0.baseAddress!, count: cout) }
                }
            }
        }
        for group in 0..<groups {
            let cols = geometry.gather(value, group: group)
            Self.strided(
                false, true, pixels, coutG, patch, 1, (cols, 0, patch), (reordered(group), 0, patch), &out,
                group * coutG, cout, beta: bias == nil ? 0 : 1)
        }
        let parents = [self, weight] + (bias.map { [$0] } ?? [])
        return Variable(out, shape: [n, oh, ow, cout], parents: parents) { [self] g in
            var dx = [Float](repeating: 0, count: requiresGrad ? count : 0)
            var dw = [Float](repeating: 0, count: weight.requiresGrad ? weight.count : 0)
            for group in 0..<groups {
                if weight.requiresGrad {
                    // dW[group] = dY[:, group]ᵀ · patches, in (ky, kx, ci) order, then back to PyTorch's.
                    var dwg = Self.unfilled(coutG * patch)
                    Self.strided(
                        true, false, coutG, patch, pixels, 1, (g, group * coutG, cout),
                        (geometry.gather(value, group: group), 0, patch), &dwg, 0, patch)
                    for o in 0..<coutG {
                        let base = (group * coutG + o) * patch
                        for ci in 0..<cinG {
                            for ky in 0..<kh {
                                for kx in 0..<kw {
                                    dw[base + (ci * kh + ky) * kw + kx] = dwg[o * patch + (ky * kw + kx) * cinG + ci]
                                }
                            }
                        }
                    }
                }
                if requiresGrad {
                    var dcols = Self.unfilled(pixels * patch)
                    Self.strided(
                        false, false, pixels, patch, coutG, 1, (g, group * coutG, cout), (reordered(group), 0, patch),
                        &dcols, 0, patch)
                    geometry.scatterAdd(dcols, into: &dx, group: group)
                }
            }
            if requiresGrad { accumulate(dx) }
            if weight.requiresGrad { weight.accumulate(dw) }
            if let bias, bias.requiresGrad { bias.accumulate(Self.columnSums(g, rows: pixels, columns: cout)) }
        }
    }

    /// The largest value of each `size`×`size` window, `stride` apart, per channel: x [n, h, w, c] →
    /// [n, h', w', c]; the gradient goes to the (first) largest element.
    public func maxPooled(size: Int, stride: Int) -> Variable {
        precondition(shape.count == 4, "maxPooled: x must be NHWC, got \(shape)")
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        let (oh, ow) = ((h - size) / stride + 1, (w - size) / stride + 1)
        let outCount = n * oh * ow * c
        var winner = [Int32](repeating: 0, count: outCount)
        let out = [Float](unsafeUninitializedCapacity: outCount) { o, initialized in
            value.withUnsafeBufferPointer { x in
                winner.withUnsafeMutableBufferPointer { win in
                    for b in 0..<n {
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                let base = ((b * oh + oy) * ow + ox) * c
                                let first = ((b * h + oy * stride) * w + ox * stride) * c
                                var ch = 0
                                // Eight channels at a time: the largest so far and where it was (the first of
                                // equals, as the scalar loop).
                                while ch + 8 <= c {
                                    let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
                                    var best = Self.load8(x.baseAddress! + first + ch)
                                    var at = SIMD8<Int32>(repeating: Int32(first + ch)) &+ lanes
                                    for ky in 0..<size {
                                        for kx in 0..<size where ky > 0 || kx > 0 {
                                            let row = ((b * h + oy * stride + ky) * w + ox * stride + kx) * c + ch
                                            let v = Self.load8(x.baseAddress! + row)
                                            let larger = v .> best
                                            best.replace(with: v, where: larger)
                                            at.replace(
                                                with: SIMD8<Int32>(repeating: Int32(row)) &+ lanes, where: larger)
                                        }
                                    }
                                    UnsafeMutableRawPointer(o.baseAddress! + base + ch).storeBytes(
                                        of: best, as: SIMD8<Float>.self)
                                    UnsafeMutableRawPointer(win.baseAddress! + base + ch).storeBytes(
                                        of: at, as: SIMD8<Int32>.self)
                                    ch += 8
                                }
                                for ch in ch..<c {
                                    o[base + ch] = x[first + ch]
                                    win[base + ch] = Int32(first + ch)
                                    for ky in 0..<size {
                                        for kx in 0..<size where ky > 0 || kx > 0 {
                                            let i = ((b * h + oy * stride + ky) * w + ox * stride + kx) * c + ch
                                            if x[i] > o[base + ch] {
                                                o[base + ch] = x[i]
                                                win[base + ch] = Int32(i)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            initialized = outCount
        }
        return Variable(out, shape: [n, oh, ow, c], parents: [self]) { [self] g in
            var d = [Float](repeating: 0, count: count)
            d.withUnsafeMutableBufferPointer { dp in
                winner.withUnsafeBufferPointer { win in
                    g.withUnsafeBufferPointer { gp in for o in 0..<gp.count { dp[Int(win[o])] += gp[o] } }
                }
            }
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

extension Variable {
    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
}

/// Where each patch of a convolution reads its input (NHWC): rows of (ky, kx, channel), one per output pixel, each
/// (ky, kx) a run of `cinG` contiguous channels or padding.
struct Im2Col {
    let n: Int, h: Int, w: Int, cin: Int, cinG: Int, kh: Int, kw: Int, oh: Int, ow: Int, stride: Int, top: Int,
        left: Int
    var patch: Int { cinG * kh * kw }

    /// Calls `body(row offset in the patch matrix, input offset)` for every (pixel, ky, kx) inside the image.
    @inline(__always)
    func forEachRun(_ body: (Int, Int) -> Void) {
        for b in 0..<n {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let row = ((b * oh + oy) * ow + ox) * patch
                    for ky in 0..<kh {
                        let y = oy * stride + ky - top
                        guard y >= 0 && y < h else { continue }
                        for kx in 0..<kw {
                            let x = ox * stride + kx - left
                            guard x >= 0 && x < w else { continue }
                            body(row + (ky * kw + kx) * cinG, ((b * h + y) * w + x) * cin)
                        }
                    }
                }
            }
        }
    }

    /// The patches of `group` as a [pixels, patch] matrix (zeros for padding).
    func gather(_ x: [Float], group: Int) -> [Float] {
        let count = n * oh * ow * patch
        let (runs, offset) = (cinG, group * cinG)
        var cols = [Float](repeating: 0, count: count)
        cols.withUnsafeMutableBufferPointer { c in
            x.withUnsafeBufferPointer { src in
                let (cp, sp) = (c.baseAddress!, src.baseAddress! + offset)
                forEachRun { row, input in (cp + row).update(from: sp + input, count: runs) }
            }
        }
        return cols
    }

    /// Adds the patches' gradients `dcols` back into `dx` (col2im) for `group`.
    func scatterAdd(_ dcols: [Float], into dx: inout [Float], group: Int) {
        let (runs, offset) = (cinG, group * cinG)
        dx.withUnsafeMutableBufferPointer { d in
            dcols.withUnsafeBufferPointer { c in
                let (dp, cp) = (d.baseAddress! + offset, c.baseAddress!)
                forEachRun { row, input in Kernels.add(cp + row, to: dp + input, count: runs) }
            }
        }
    }
}
