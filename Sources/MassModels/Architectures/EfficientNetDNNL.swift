// EfficientNet-Lite's convolutions on oneDNN (Debian libdnnl-dev 2.6): the stem, every expand, depthwise and
// project convolution and the head, with folded batch norms as biases, ReLU6 and residual sums fused into the
// primitives, NHWC activations, weights reordered once into oneDNN's blocked layouts. A fixed set of chains, built
// on first use whatever the batch sizes: one image on every thread, and one image on one thread per lane; the
// pooling and the classifier stay in Swift.
import CMassDNNL
import Foundation
import MassTensor
import Synchronization

final class EfficientNetDNNL: @unchecked Sendable {  // `nets` only under `lock`
    /// A layer as the C side takes it, with its weights in oneDNN's user layouts (OIHW, or GOIHW for depthwise).
    struct Conv: Sendable {
        var depthwise: Bool
        var inChannels: Int, outChannels: Int
        var shape: Kernels.ConvShape
        var relu6: Bool
        var residualFrom: Int  // -2: none
        var weights: [Float]
        var bias: [Float]
        /// int8 (static quantisation, q = real · scale): the types and scales of the layer's input and output
        /// (CMASS_DNNL_F32, _U8, _S8), and the scale of the residual it adds. All float32 by default.
        var srcType = Int32(CMASS_DNNL_F32), dstType = Int32(CMASS_DNNL_F32)
        var srcScale: Float = 0, dstScale: Float = 0, residualScale: Float = 0
    }

    /// The layers, weights and biases moved to `store`.
    let convs: [Conv]
    /// Every layer's weights and bias in one block the C side reads while it builds a chain, and where.
    private let store: UnsafeMutableBufferPointer<Float>
    private let offsets: [(weights: Int, bias: Int)]
    let threads: Int
    private let lock = NSLock()
    private var nets: [Int: NetBox] = [:]  // by threads · 64 + lane
    private var inputs: [Float] = []  // one NHWC image per lane
    private var gathered: [Float] = []

    final class NetBox {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
        deinit { cmass_dnnl_destroy(pointer) }
    }

    init(convs: [Conv], threads: Int) {
        var offsets: [(weights: Int, bias: Int)] = []
        var total = 0
        for c in convs {
            offsets.append((total, total + c.weights.count))
            total += c.weights.count + c.bias.count
        }
        store = .allocate(capacity: total)
        for (c, o) in zip(convs, offsets) {
            _ = UnsafeMutableBufferPointer(rebasing: store[o.weights...]).initialize(from: c.weights)
            _ = UnsafeMutableBufferPointer(rebasing: store[o.bias...]).initialize(from: c.bias)
        }
        self.offsets = offsets
        self.convs = convs.map {
            var c = $0
            (c.weights, c.bias) = ([], [])
            return c
        }
        self.threads = threads
    }

    deinit { store.deallocate() }

    /// The head's output [batch, 7, 7, channels] (NHWC), passed to `body` while the chains are locked, for
    /// images whose NHWC inputs `prepare(i, input)` writes (false: image `i` is skipped, its rows left as they
    /// are). Images run one at a time through batch-1 chains: a single image on every thread, a batch shared out
    /// to one single-threaded chain per thread of `pool`, each lane preparing the image it takes next and running
    /// it while the input is still in its cache (no synchronisation per layer or between preparing and running).
    func run<R>(
        batch: Int, pool: ComputePool, prepare: (Int, UnsafeMutablePointer<Float>) -> Bool,
        _ body: (UnsafePointer<Float>) -> R
    ) throws -> R {
        lock.lock()
        defer { lock.unlock() }
        let lanes = batch > 1 ? min(batch, pool.threadCount) : 1
        let imageSize = 3 * convs[0].shape.height * convs[0].shape.width
        if inputs.count < lanes * imageSize { inputs = [Float](repeating: 0, count: lanes * imageSize) }
        let features = convs.last!.outChannels
        let outSide = convs.last!.shape.outHeight
        let perImage = outSide * outSide * features
        if gathered.count < batch * perImage { gathered = [Float](repeating: 0, count: batch * perImage) }
        // A fixed set of chains (and activation buffers) whatever the batch sizes the server sees.
        let networks = try (0..<lanes).map { try net(threads: lanes == 1 ? threads : 1, lane: $0) }
        let failed = Atomic<Bool>(false)
        let next = Atomic<Int>(0)
        inputs.withUnsafeMutableBufferPointer { source in
            gathered.withUnsafeMutableBufferPointer { target in
                let (sources, targets) = (source.baseAddress!, target.baseAddress!)
                func work(_ lane: Int) {
                    let input = sources + lane * imageSize
                    while true {
                        let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                        if i >= batch { return }
                        guard prepare(i, input) else { continue }
                        guard let output = cmass_dnnl_run(networks[lane].pointer, input) else {
                            failed.store(true, ordering: .relaxed)
                            return
                        }
                        (targets + i * perImage).update(from: output, count: perImage)
                    }
                }
                if lanes == 1 { work(0) } else { pool.parallelFor(lanes, work) }
            }
        }
        if failed.load(ordering: .relaxed) {
            throw ModelError(.unsupported, "oneDNN failed to run the network for batch \(batch)")
        }
        return gathered.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// The batch-1 chain on `threads` OpenMP threads, one per lane (call under `lock`).
    private func net(threads: Int, lane: Int = 0) throws -> NetBox {
        let key = threads * 64 + lane
        if let existing = nets[key] { return existing }
        // Every chain has the same layers: the first one's reordered weights serve the others where the
        // primitives want the same layout (oneDNN picks per thread count), instead of a copy each (18 MB).
        let box = NetBox(try build(threads: threads, share: nets.values.first))
        nets[key] = box
        return box
    }

    /// The largest |value| of the input (first) and of every layer's output over `images` (NHWC float32 inputs,
    /// one after the other): the ranges an int8 chain is calibrated with. A float32 chain only.
    func activationRanges(_ images: [[Float]]) throws -> [Float] {
        lock.lock()
        defer { lock.unlock() }
        let box = try net(threads: threads)
        var maxima = [Float](repeating: 0, count: convs.count + 1)
        for image in images {
            guard cmass_dnnl_observe(box.pointer, image, &maxima) != 0 else {
                throw ModelError(.unsupported, "oneDNN could not run the float32 network for calibration")
            }
        }
        return maxima
    }

    /// The implementation oneDNN chose for each layer (for `mass info`-style reports and tests).
    func implementations(threads: Int? = nil) throws -> [String] {
        lock.lock()
        defer { lock.unlock() }
        let box = try net(threads: threads ?? self.threads)
        return (0..<convs.count).map { String(cString: cmass_dnnl_impl(box.pointer, Int32($0))) }
    }

    private func build(threads: Int, share: NetBox?) throws -> OpaquePointer {
        // The C side reorders the weights into its own memory (or shares another chain's) during creation.
        let base = UnsafePointer(store.baseAddress!)
        let layers = zip(convs, offsets).map { c, o -> cmass_conv in
            let s = c.shape
            let padBottom = max(0, (s.outHeight - 1) * s.stride + s.kernel - s.height - s.padTop)
            let padRight = max(0, (s.outWidth - 1) * s.stride + s.kernel - s.width - s.padLeft)
            return cmass_conv(
                depthwise: c.depthwise ? 1 : 0, in_channels: Int32(c.inChannels), out_channels: Int32(c.outChannels),
                in_height: Int32(s.height), in_width: Int32(s.width), out_height: Int32(s.outHeight),
                out_width: Int32(s.outWidth), kernel: Int32(s.kernel), stride: Int32(s.stride),
                pad_top: Int32(s.padTop), pad_left: Int32(s.padLeft), pad_bottom: Int32(padBottom),
                pad_right: Int32(padRight), relu6: c.relu6 ? 1 : 0, residual_from: Int32(c.residualFrom),
                weights: base + o.weights, bias: base + o.bias, src_type: c.srcType, dst_type: c.dstType,
                src_scale: c.srcScale, dst_scale: c.dstScale, residual_scale: c.residualScale)
        }
        var error = [CChar](repeating: 0, count: 256)
        guard
            let net = cmass_dnnl_create(
                1, layers, Int32(layers.count), Int32(threads), share?.pointer, &error, 256)
        else {
            throw ModelError(
                .unsupported, String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return net
    }
}
