import CMassDNNL
import Foundation
// EfficientNet-Lite0, after lukemelas/EfficientNet-PyTorch and its Lite fork (ml-illustrated, PyPI
// `efficientnet_lite_pytorch`, `model.py`): stem 3×3/2 → 16 MBConv blocks (1×1 expand, k×k depthwise,
// 1×1 project, no squeeze-excitation) → 1×1 head to 1280 → global average pool → fc. ReLU6 everywhere, no
// activation after a block's projection, a residual when stride 1 and in == out. TensorFlow "SAME" padding.
// Names: _conv_stem, _bn0, _blocks.N._expand_conv/_bn0, _depthwise_conv/_bn1, _project_conv/_bn2,
// _conv_head, _bn1, _fc — as in the checkpoint.
// Differences from the reference, by design: batch norms are folded into the convolutions at load (eps 1e-3),
// activations are NHWC so that SIMD runs across channels, and 1×1 convolutions are matrix products over all
// pixels of the batch.
public import MassTensor
public import MassWeights
import Synchronization

/// Scratch memory for one forward pass, grown to the largest batch seen; one per compute thread.
public final class EfficientNetWorkspace {
    var buffers: [UnsafeMutablePointer<Float>] = []
    var capacity = 0
    /// One single-threaded lane per thread of the caller's pool, for batches (made on first use).
    var lanes: [(workspace: EfficientNetWorkspace, pool: ComputePool)] = []

    public init() {}

    deinit { for b in buffers { b.deallocate() } }

    /// Four buffers of at least `count` floats each.
    func reserve(_ count: Int) {
        guard count > capacity else { return }
        for b in buffers { b.deallocate() }
        buffers = (0..<4).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: count) }
        capacity = count
    }
}

public final class EfficientNetLite: Sendable {
    /// A 1×1 convolution, batch norm folded: weights [out, in] and bias.
    struct Pointwise: Sendable {
        let weight: [Float]
        let bias: [Float]
        let inFeatures: Int, outFeatures: Int

        func linear() throws -> Linear {
            // The shapes were checked when the weights were read.
            try Linear(
                weight: Tensor(shape: [outFeatures, inFeatures], values: weight),
                bias: Tensor(shape: [outFeatures], values: bias))
        }
    }

    /// One MBConv block, batch norms folded.
    struct Block: Sendable {
        let inChannels: Int, expanded: Int, outChannels: Int
        let kernel: Int, stride: Int
        let expand: Pointwise?
        let depthwise: [Float]  // [k, k, expanded]
        let depthwiseBias: [Float]
        let project: Pointwise
        var residual: Bool { stride == 1 && inChannels == outChannels }
    }

    /// The 1×1 layers packed for Mass's own kernels, made when that path first runs: with oneDNN they are never
    /// needed unless oneDNN fails, and packing them cost two more copies of their weights (peak RSS 145 → 132 MB,
    /// a fifth of the page faults of loading).
    final class OwnLayers: @unchecked Sendable {  // `made` only under `lock`
        struct Made {
            let expand: [Linear?]
            let project: [Linear]
            let head: Linear
        }
        private let lock = NSLock()
        private var made: Made?

        func get(_ blocks: [Block], _ head: Pointwise) throws -> Made {
            try lock.withLock {
                if let made { return made }
                let new = Made(
                    expand: try blocks.map { try $0.expand?.linear() },
                    project: try blocks.map { try $0.project.linear() },
                    head: try head.linear())
                made = new
                return new
            }
        }
    }

    /// Lite0's input side; Lite1 takes 240 and Lite2 260 (their folders' `preprocessing.json` `crop`).
    public static let defaultInputSize = 224
    static let batchNormEpsilon: Float = 1e-3
    /// The stride of the first block of each of EfficientNet's seven stages (the blocks, their kernels, widths
    /// and repeats are read from the checkpoint: Lite0 has 16 blocks, Lite1 and Lite2 21).
    static let stageStrides = [1, 2, 2, 2, 1, 2, 1]

    /// The side of the square input (224 for Lite0).
    public let inputSize: Int
    /// The side of the head's output (7 for 224: each stride-2 convolution takes ceil(side / 2)).
    let headSide: Int

    let stem: [Float]  // [3, 3, 3, 32]: ky, kx, ci, co
    let stemBias: [Float]
    let stemChannels: Int
    let blocks: [Block]
    let head: Pointwise
    let own = OwnLayers()
    let fc: Linear
    /// The convolutions on oneDNN (nil when it cannot be used; `MASS_ONEDNN=0` turns it off).
    let onednn: EfficientNetDNNL?
    public var classes: Int { fc.outFeatures }

    /// Builds the network from a state dict with EfficientNet-PyTorch's names. `onednn` runs the convolutions on
    /// oneDNN (default: unless the environment sets `MASS_ONEDNN=0`); otherwise, or if oneDNN fails, on Mass's own
    /// kernels. With `int8Ranges` (the input's and every convolution's largest |activation| on calibration images,
    /// `activationRanges`), the convolutions run in int8 on oneDNN: weights per output channel, activations per
    /// tensor (u8 after ReLU6, s8 otherwise), the head's output, the pooling and the classifier in float32.
    public init(
        weights: some WeightSource, onednn useOneDNN: Bool = ProcessInfo.processInfo.environment["MASS_ONEDNN"] != "0",
        int8Ranges: [Float]? = nil, inputSize: Int = EfficientNetLite.defaultInputSize
    ) throws {
        guard (32...1024).contains(inputSize) else {
            throw ModelError(.unsupported, "an EfficientNet-Lite input of \(inputSize)x\(inputSize) (32 to 1024)")
        }
        self.inputSize = inputSize
        try BLAS.load()
        func folded(_ conv: String, _ bn: String) throws -> (weight: Tensor, scale: [Float], shift: [Float]) {
            let w = try weights.float32(dequantizing: "\(conv).weight")
            let out = w.shape[0]
            let gamma = try weights.float32("\(bn).weight", shape: [out]).array
            let beta = try weights.float32("\(bn).bias", shape: [out]).array
            let mean = try weights.float32("\(bn).running_mean", shape: [out]).array
            let variance = try weights.float32("\(bn).running_var", shape: [out]).array
            var scale = [Float](repeating: 0, count: out)
            var shift = [Float](repeating: 0, count: out)
            for c in 0..<out {
                scale[c] = gamma[c] / (variance[c] + Self.batchNormEpsilon).squareRoot()
                shift[c] = beta[c] - mean[c] * scale[c]
            }
            return (w, scale, shift)
        }
        func pointwise(_ conv: String, _ bn: String, in inChannels: Int) throws -> Pointwise {
            let (w, scale, shift) = try folded(conv, bn)
            guard w.shape.count == 4, w.shape[1] == inChannels, w.shape[2] == 1, w.shape[3] == 1 else {
                throw ModelError(
                    .unsupported,
                    "\(weights.origin): '\(conv).weight' has shape \(w.shape), expected [_, \(inChannels), 1, 1]")
            }
            let out = w.shape[0]
            var values = w.array
            for o in 0..<out { for i in 0..<inChannels { values[o * inChannels + i] *= scale[o] } }
            return Pointwise(weight: values, bias: shift, inFeatures: inChannels, outFeatures: out)
        }

        // Stem: [32, 3, 3, 3] (O, I, kh, kw) → [kh, kw, I, O].
        let (stemWeight, stemScale, stemShift) = try folded("_conv_stem", "_bn0")
        guard stemWeight.shape.count == 4, stemWeight.shape[1] == 3, stemWeight.shape[2] == 3, stemWeight.shape[3] == 3,
            stemWeight.shape[0] % 16 == 0
        else {
            throw ModelError(
                .unsupported,
                "\(weights.origin): '_conv_stem.weight' has shape \(stemWeight.shape), expected [32, 3, 3, 3]")
        }
        let sc = stemWeight.shape[0]
        let sw = stemWeight.array
        var stem = [Float](repeating: 0, count: 27 * sc)
        for o in 0..<sc {
            for i in 0..<3 {
                for ky in 0..<3 {
                    for kx in 0..<3 {
                        stem[((ky * 3 + kx) * 3 + i) * sc + o] = sw[((o * 3 + i) * 3 + ky) * 3 + kx] * stemScale[o]
                    }
                }
            }
        }
        self.stem = stem
        stemBias = stemShift
        stemChannels = sc

        // The blocks as the checkpoint has them; a stage starts where the output width changes.
        var blocks: [Block] = []
        let names = Set(weights.names)
        var stage = -1
        var inChannels = sc
        while names.contains("_blocks.\(blocks.count)._project_conv.weight") {
            let p = "_blocks.\(blocks.count)"
            let expand =
                names.contains("\(p)._expand_conv.weight")
                ? try pointwise("\(p)._expand_conv", "\(p)._bn0", in: inChannels) : nil
            let expanded = expand?.outFeatures ?? inChannels
            let (dw, dwScale, dwShift) = try folded("\(p)._depthwise_conv", "\(p)._bn1")
            let kernel = dw.shape.count == 4 ? dw.shape[3] : 0
            guard dw.shape == [expanded, 1, kernel, kernel], [3, 5].contains(kernel) else {
                throw ModelError(
                    .unsupported,
                    "\(weights.origin): '\(p)._depthwise_conv.weight' has shape \(dw.shape), expected [\(expanded), 1, 3 or 5, 3 or 5]"
                )
            }
            let dwv = dw.array
            var depthwise = [Float](repeating: 0, count: kernel * kernel * expanded)
            for c in 0..<expanded {
                for t in 0..<(kernel * kernel) {
                    depthwise[t * expanded + c] = dwv[c * kernel * kernel + t] * dwScale[c]
                }
            }
            let project = try pointwise("\(p)._project_conv", "\(p)._bn2", in: expanded)
            let first = blocks.last?.outChannels != project.outFeatures
            if first { stage += 1 }
            guard stage < Self.stageStrides.count else {
                throw ModelError(
                    .unsupported, "\(weights.origin): '\(p)' starts an eighth stage; EfficientNet-Lite has seven")
            }
            blocks.append(
                Block(
                    inChannels: inChannels, expanded: expanded, outChannels: project.outFeatures, kernel: kernel,
                    stride: first ? Self.stageStrides[stage] : 1, expand: expand, depthwise: depthwise,
                    depthwiseBias: dwShift, project: project))
            inChannels = project.outFeatures
        }
        guard stage == Self.stageStrides.count - 1 else {
            throw ModelError(
                .unsupported,
                "\(weights.origin): \(blocks.count) blocks in \(stage + 1) stages; EfficientNet-Lite has seven stages")
        }
        headSide = blocks.reduce((inputSize + 1) / 2) { side, block in (side + block.stride - 1) / block.stride }
        self.blocks = blocks
        head = try pointwise("_conv_head", "_bn1", in: blocks.last!.outChannels)
        let fcWeight = try weights.float32("_fc.weight")
        guard fcWeight.shape.count == 2, fcWeight.shape[1] == head.outFeatures else {
            throw ModelError(
                .unsupported,
                "\(weights.origin): '_fc.weight' has shape \(fcWeight.shape), expected [_, \(head.outFeatures)]")
        }
        fc = try Linear(weight: fcWeight, bias: try weights.float32("_fc.bias", shape: [fcWeight.shape[0]]))
        if int8Ranges != nil, !useOneDNN {
            throw ModelError(.unsupported, "EfficientNet runs in int8 on oneDNN only (MASS_ONEDNN=0 turns it off)")
        }
        onednn =
            useOneDNN
            ? try Self.onednnChain(
                stem: stem, stemBias: stemBias, blocks: blocks, head: head, inputSize: inputSize,
                int8Ranges: int8Ranges)
            : nil
        if !useOneDNN { _ = try own.get(blocks, head) }
    }

    /// The implementation oneDNN picked for each convolution of the chain on `threads` threads (default: every
    /// core; nil without oneDNN).
    public func onednnImplementations(threads: Int? = nil) throws -> [String]? {
        try onednn?.implementations(threads: threads)
    }

    /// The largest |value| of the input and of every convolution's output over `images` (each NCHW float32
    /// [3, 224, 224], preprocessed), on the float32 oneDNN chain: what `init(weights:onednn:int8Ranges:)` takes.
    public func activationRanges(_ images: [[Float]]) throws -> [Float] {
        guard let onednn else { throw ModelError(.unsupported, "calibration runs on oneDNN (MASS_ONEDNN=0 is set)") }
        guard onednn.convs[0].srcType == CMASS_DNNL_F32 else {
            throw ModelError(.unsupported, "calibration runs on the float32 network, not an int8 one")
        }
        let side = inputSize
        let nhwc = images.map { image in
            var x = [Float](repeating: 0, count: 3 * side * side)
            image.withUnsafeBufferPointer { Self.toNHWC($0.baseAddress!, side: side, rows: 0..<side, into: &x) }
            return x
        }
        return try onednn.activationRanges(nhwc)
    }

    /// The network's convolutions as oneDNN layers, weights back in OIHW (GOIHW for depthwise); in int8 when
    /// `int8Ranges` gives the input's and each layer's range (1 + layers values, each positive and finite).
    static func onednnChain(
        stem: [Float], stemBias: [Float], blocks: [Block], head: Pointwise, inputSize: Int, int8Ranges: [Float]? = nil
    ) throws -> EfficientNetDNNL {
        typealias Conv = EfficientNetDNNL.Conv
        let sc = stemBias.count
        var stemOIHW = [Float](repeating: 0, count: 27 * sc)
        for o in 0..<sc {
            for i in 0..<3 {
                for t in 0..<9 { stemOIHW[(o * 3 + i) * 9 + t] = stem[(t * 3 + i) * sc + o] }
            }
        }
        var size = inputSize
        let stemShape = Kernels.ConvShape(height: size, width: size, kernel: 3, stride: 2)
        var convs: [Conv] = [
            Conv(
                depthwise: false, inChannels: 3, outChannels: sc, shape: stemShape, relu6: true, residualFrom: -2,
                weights: stemOIHW, bias: stemBias)
        ]
        size = stemShape.outHeight
        func pointwise(_ layer: Pointwise, size: Int, relu6: Bool, residualFrom: Int = -2) -> Conv {
            Conv(
                depthwise: false, inChannels: layer.inFeatures, outChannels: layer.outFeatures,
                shape: Kernels.ConvShape(height: size, width: size, kernel: 1, stride: 1), relu6: relu6,
                residualFrom: residualFrom, weights: layer.weight, bias: layer.bias)
        }
        for block in blocks {
            let blockInput = convs.count - 1
            if let expand = block.expand { convs.append(pointwise(expand, size: size, relu6: true)) }
            let shape = Kernels.ConvShape(height: size, width: size, kernel: block.kernel, stride: block.stride)
            let k2 = block.kernel * block.kernel
            var dw = [Float](repeating: 0, count: k2 * block.expanded)
            for c in 0..<block.expanded {
                for t in 0..<k2 { dw[c * k2 + t] = block.depthwise[t * block.expanded + c] }
            }
            convs.append(
                Conv(
                    depthwise: true, inChannels: block.expanded, outChannels: block.expanded, shape: shape,
                    relu6: true, residualFrom: -2, weights: dw, bias: block.depthwiseBias))
            size = shape.outHeight
            convs.append(
                pointwise(block.project, size: size, relu6: false, residualFrom: block.residual ? blockInput : -2))
        }
        convs.append(pointwise(head, size: size, relu6: true))
        if let ranges = int8Ranges {
            guard ranges.count == convs.count + 1, ranges.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw ModelError(
                    .badConfig,
                    "int8 needs \(convs.count + 1) positive activation ranges (the input and each convolution), "
                        + "got \(ranges.count)")
            }
            // Inputs s8 by their range; ReLU6 outputs u8 (0...range), the others s8; the head gives float32.
            var scales = [127 / ranges[0]]
            for i in convs.indices {
                convs[i].srcType = i == 0 ? Int32(CMASS_DNNL_S8) : convs[i - 1].dstType
                convs[i].srcScale = scales[i]
                if i == convs.count - 1 {
                    convs[i].dstType = Int32(CMASS_DNNL_F32)
                    scales.append(1)
                } else {
                    convs[i].dstType = Int32(convs[i].relu6 ? CMASS_DNNL_U8 : CMASS_DNNL_S8)
                    scales.append((convs[i].relu6 ? 255 : 127) / ranges[i + 1])
                }
                convs[i].dstScale = scales[i + 1]
                if convs[i].residualFrom != -2 { convs[i].residualScale = scales[convs[i].residualFrom + 1] }
            }
        }
        return EfficientNetDNNL(convs: convs, threads: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The largest activation of one image, in floats.
    private var largestActivation: Int {
        var size = inputSize
        var largest = size * size * 3
        size = (size + 1) / 2
        largest = max(largest, size * size * stemChannels)
        for b in blocks {
            largest = max(largest, size * size * b.expanded)
            size = (size + b.stride - 1) / b.stride
        }
        return max(largest, size * size * head.outFeatures)
    }

    /// Logits [batch, classes] for images given as NCHW float32 [batch, 3, 224, 224] (already normalised).
    public func logits(
        _ input: UnsafePointer<Float>, batch: Int, workspace ws: EfficientNetWorkspace, pool: ComputePool
    ) -> [[Float]] {
        let imageSize = 3 * inputSize * inputSize
        return logits(batch: batch, workspace: ws, pool: pool) { i, x in
            Self.toNHWC(input + i * imageSize, side: inputSize, rows: 0..<inputSize, into: x)
            return true
        }.map { $0! }
    }

    /// How many features the classifier reads (the head's channels: 1,280 for Lite0).
    public var featureCount: Int { head.outFeatures }

    /// What the network gives for an image: the classifier's logits, or the features it classifies (the head's
    /// output, average-pooled: 1,280 values for Lite0), for a new head trained on them.
    public enum Output: Sendable {
        case logits, features
    }

    /// Logits for `batch` images whose inputs `prepare(i, x)` writes as NHWC float32 [224, 224, 3], already
    /// normalised; nil for an image whose `prepare` returned false.
    public func logits(
        batch: Int, workspace ws: EfficientNetWorkspace, pool: ComputePool,
        prepare: (Int, UnsafeMutablePointer<Float>) -> Bool
    ) -> [[Float]?] {
        outputs(.logits, batch: batch, workspace: ws, pool: pool, prepare: prepare)
    }

    /// Logits or features (`output`) for `batch` images whose inputs `prepare(i, x)` writes as NHWC float32
    /// [224, 224, 3], already normalised; nil for an image whose `prepare` returned false.
    ///
    /// One image runs with every thread of `pool` inside each layer. A batch runs image by image, one
    /// single-threaded lane per thread, each lane preparing the image it takes next: an image's activations stay
    /// in cache (a whole batch's would stream through memory layer after layer), and no layer waits for the
    /// slowest thread.
    public func outputs(
        _ output: Output, batch: Int, workspace ws: EfficientNetWorkspace, pool: ComputePool,
        prepare: (Int, UnsafeMutablePointer<Float>) -> Bool
    ) -> [[Float]?] {
        let prepared = UnsafeMutableBufferPointer<Bool>.allocate(capacity: batch)
        prepared.initialize(repeating: false)
        defer { prepared.deallocate() }
        func track(_ i: Int, _ x: UnsafeMutablePointer<Float>) -> Bool {
            prepared[i] = prepare(i, x)
            return prepared[i]
        }
        if let onednn,
            let result = try? onednn.run(
                batch: batch, pool: pool, prepare: track, { classify($0, batch: batch, ws, output) })
        {
            return (0..<batch).map { prepared[$0] ? result[$0] : nil }
        }
        guard batch > 1 else {
            ws.reserve(largestActivation)
            return track(0, ws.buffers[0]) ? [try? forward(workspace: ws, pool: pool, output: output)] : [nil]
        }
        if ws.lanes.count != pool.threadCount {
            ws.lanes = (0..<pool.threadCount).map { _ in (EfficientNetWorkspace(), ComputePool(threads: 1)) }
        }
        let results = UnsafeMutableBufferPointer<[Float]?>.allocate(capacity: batch)
        results.initialize(repeating: nil)
        defer { results.deinitialize().deallocate() }
        let next = Atomic<Int>(0)
        pool.parallelFor(ws.lanes.count) { lane in
            let (workspace, lanePool) = ws.lanes[lane]
            workspace.reserve(largestActivation)
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= batch { return }
                if track(i, workspace.buffers[0]) {
                    results[i] = try? forward(workspace: workspace, pool: lanePool, output: output)
                }
            }
        }
        return Array(results)
    }

    static let singleThread = ComputePool(threads: 1)

    /// NCHW input [batch, 3, 224, 224] → NHWC, for image rows `rows` (row r is image r / 224, row r % 224).
    static func toNHWC(
        _ input: UnsafePointer<Float>, side: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>
    ) {
        let plane = side * side
        for r in rows {
            let (n, row) = (r / side, r % side)
            for c in 0..<3 {
                let source = input + (n * 3 + c) * plane + row * side
                let target = out + (n * plane + row * side) * 3 + c
                for col in 0..<side { target[col * 3] = source[col] }
            }
        }
    }

    /// Average pooling and the classifier over the head's NHWC output [batch, pixels, features] (the pooled
    /// features alone for `.features`).
    private func classify(
        _ headOutput: UnsafePointer<Float>, batch: Int, _ ws: EfficientNetWorkspace, _ output: Output
    ) -> [[Float]] {
        let features = head.outFeatures
        let pixels = headSide * headSide
        ws.reserve(batch * max(features, classes))
        let pooled = ws.buffers[2]
        let out = ws.buffers[3]
        for n in 0..<batch {
            Kernels.averagePool(
                headOutput + n * pixels * features, pixels: pixels, channels: features, into: pooled + n * features)
        }
        if output == .features {
            return (0..<batch).map { n in Array(UnsafeBufferPointer(start: pooled + n * features, count: features)) }
        }
        // One thread: waking the pool here would have its helpers spin against oneDNN's threads.
        Self.singleThread.apply(fc, pooled, rows: batch, into: out)
        return (0..<batch).map { n in Array(UnsafeBufferPointer(start: out + n * classes, count: classes)) }
    }

    /// One image's logits (or pooled features); its NHWC input is in `ws.buffers[0]`.
    private func forward(workspace ws: EfficientNetWorkspace, pool: ComputePool, output: Output) throws -> [Float] {
        let batch = 1
        let side = inputSize
        var x = ws.buffers[0]
        var y = ws.buffers[1]
        let e = ws.buffers[2]
        let d = ws.buffers[3]
        let plane = side * side
        // Stem.
        let stemShape = Kernels.ConvShape(height: side, width: side, kernel: 3, stride: 2)
        var size = stemShape.outHeight
        stem.withUnsafeBufferPointer { w in
            stemBias.withUnsafeBufferPointer { b in
                let (source, target) = (UnsafePointer(x), y)
                pool.forRowRanges(batch * size, minimumRowsPerThread: 4) { r0, r1 in
                    var r = r0
                    while r < r1 {  // rows of one image at a time
                        let n = r / size
                        let end = min(r1, (n + 1) * size)
                        Kernels.denseConv(
                            source + n * plane * 3, shape: stemShape, inChannels: 3, outChannels: stemChannels,
                            weights: w.baseAddress!, bias: b.baseAddress!,
                            into: target + n * size * size * stemChannels,
                            rows: (r - n * size)..<(end - n * size), relu6: true)
                        r = end
                    }
                }
            }
        }
        swap(&x, &y)
        let layers = try own.get(blocks, head)
        for (index, block) in blocks.enumerated() {
            let pixels = size * size
            var expanded = UnsafePointer(x)
            if let expand = layers.expand[index] {
                pool.applyByRows(expand, x, rows: batch * pixels, into: e, activation: .relu6)
                expanded = UnsafePointer(e)
            }
            let shape = Kernels.ConvShape(height: size, width: size, kernel: block.kernel, stride: block.stride)
            let outSize = shape.outHeight
            block.depthwise.withUnsafeBufferPointer { w in
                block.depthwiseBias.withUnsafeBufferPointer { b in
                    let c = block.expanded
                    pool.forRowRanges(batch * outSize, minimumRowsPerThread: 1) { r0, r1 in
                        var r = r0
                        while r < r1 {
                            let n = r / outSize
                            let end = min(r1, (n + 1) * outSize)
                            Kernels.depthwise(
                                expanded + n * pixels * c, shape: shape, channels: c, weights: w.baseAddress!,
                                bias: b.baseAddress!, into: d + n * outSize * outSize * c,
                                rows: (r - n * outSize)..<(end - n * outSize), relu6: true)
                            r = end
                        }
                    }
                }
            }
            let outPixels = batch * outSize * outSize
            if block.residual {
                y.update(from: x, count: outPixels * block.outChannels)
                pool.applyByRows(layers.project[index], d, rows: outPixels, into: y, accumulate: true)
            } else {
                pool.applyByRows(layers.project[index], d, rows: outPixels, into: y)
            }
            swap(&x, &y)
            size = outSize
        }
        let pixels = size * size
        pool.applyByRows(layers.head, x, rows: batch * pixels, into: y, activation: .relu6)
        let features = head.outFeatures
        for n in 0..<batch {
            Kernels.averagePool(y + n * pixels * features, pixels: pixels, channels: features, into: e + n * features)
        }
        if output == .features { return Array(UnsafeBufferPointer(start: e, count: features)) }
        pool.apply(fc, e, rows: batch, into: d)
        return Array(UnsafeBufferPointer(start: d, count: classes))
    }
}
