import CMassDNNL
import MassTensor
import Synchronization

/// Which code runs `conv2d` without groups: oneDNN's direct convolutions (forward, backward data and backward
/// weights primitives, as PyTorch runs on a CPU), or Mass's im2col and OpenBLAS products (always for grouped and
/// depthwise convolutions, and where oneDNN cannot build a primitive).
public enum ConvolutionBackend: Sendable {
    case oneDNN, im2col

    private static let current = Mutex((backend: ConvolutionBackend.oneDNN, threads: 0))

    /// The backend new convolutions use (process-wide).
    public static var selected: ConvolutionBackend {
        get { current.withLock { $0.backend } }
        set { current.withLock { $0.backend = newValue } }
    }

    /// oneDNN's threads (its OpenMP pool); 0: as many as OpenBLAS has. A network whose products are small next to
    /// its convolutions (a ConvNet) runs best with OpenBLAS on one thread and these on every core: two pools that
    /// each keep their threads spinning between calls would take the cores from each other.
    public static var threads: Int {
        get { current.withLock { $0.threads } }
        set { current.withLock { $0.threads = max(0, newValue) } }
    }
}

/// oneDNN's three primitives for one convolution geometry, made once per geometry and thread count and kept for
/// the process (a training run has a handful). Calls are serialised: a primitive serves one thread at a time, and
/// it uses every thread it was made with.
final class DNNLConvolution: @unchecked Sendable {  // `handle` only under `lock`
    struct Key: Hashable {
        let n: Int, h: Int, w: Int, cin: Int, cout: Int, kh: Int, kw: Int, stride: Int
        let top: Int, left: Int, bottom: Int, right: Int, threads: Int
    }

    private let handle: OpaquePointer
    private let lock = Mutex(())
    let key: Key

    private init(handle: OpaquePointer, key: Key) {
        self.handle = handle
        self.key = key
    }

    deinit { cmass_dnnl_conv_destroy(handle) }

    private static let made = Mutex([Key: DNNLConvolution?]())

    /// The convolution for `key`, or nil when oneDNN cannot make it (remembered: the caller falls back).
    static func shared(_ key: Key) -> DNNLConvolution? {
        made.withLock { cache -> DNNLConvolution? in
            if let known = cache[key] { return known }
            var error = [CChar](repeating: 0, count: 256)
            let handle = cmass_dnnl_conv_create(
                Int32(key.n), Int32(key.cin), Int32(key.h), Int32(key.w), Int32(key.cout), Int32(key.kh),
                Int32(key.kw), Int32(key.stride), Int32(key.top), Int32(key.left), Int32(key.bottom),
                Int32(key.right), Int32(key.threads), &error, error.count)
            let made = handle.map { DNNLConvolution(handle: $0, key: key) }
            cache[key] = made
            return made
        }
    }

    /// The implementations oneDNN picked: forward, backward data, backward weights.
    var implementations: [String] { (0..<3).map { String(cString: cmass_dnnl_conv_impl(handle, Int32($0))) } }

    func forward(_ x: [Float], weight: [Float], bias: [Float]?, outputCount: Int) -> [Float]? {
        lock.withLock { _ in
            var ok = false
            let out = [Float](unsafeUninitializedCapacity: outputCount) { o, initialized in
                func run(_ b: UnsafePointer<Float>?) {
                    ok = cmass_dnnl_conv_forward(handle, x, weight, b, o.baseAddress) != 0
                }
                if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
                initialized = outputCount
            }
            return ok ? out : nil
        }
    }

    func backwardData(_ g: [Float], weight: [Float], inputCount: Int) -> [Float]? {
        lock.withLock { _ in
            var ok = false
            let dx = [Float](unsafeUninitializedCapacity: inputCount) { d, initialized in
                ok = cmass_dnnl_conv_backward_data(handle, g, weight, d.baseAddress) != 0
                initialized = inputCount
            }
            return ok ? dx : nil
        }
    }

    func backwardWeights(_ x: [Float], g: [Float], weightCount: Int, withBias: Bool) -> (
        weight: [Float], bias: [Float]
    )? {
        lock.withLock { _ in
            var dw = [Float](repeating: 0, count: weightCount)
            var db = [Float](repeating: 0, count: withBias ? key.cout : 0)
            let ok = dw.withUnsafeMutableBufferPointer { w in
                db.withUnsafeMutableBufferPointer { b in
                    cmass_dnnl_conv_backward_weights(handle, x, g, w.baseAddress, withBias ? b.baseAddress : nil)
                }
            }
            return ok != 0 ? (dw, db) : nil
        }
    }
}

extension Variable {
    /// `conv2d` without groups on oneDNN; nil when oneDNN cannot make the primitives for this geometry.
    func conv2dOneDNN(_ weight: Variable, _ bias: Variable?, _ conv: Convolution, outHeight oh: Int, outWidth ow: Int)
        -> Variable?
    {
        let (n, h, w, cin) = (shape[0], shape[1], shape[2], shape[3])
        let (cout, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        let p = conv.padding
        let key = DNNLConvolution.Key(
            n: n, h: h, w: w, cin: cin, cout: cout, kh: kh, kw: kw, stride: conv.stride, top: p.top, left: p.left,
            bottom: p.bottom, right: p.right,
            threads: ConvolutionBackend.threads > 0 ? ConvolutionBackend.threads : BLAS.threads)
        guard let primitive = DNNLConvolution.shared(key),
            let out = primitive.forward(value, weight: weight.value, bias: bias?.value, outputCount: n * oh * ow * cout)
        else { return nil }
        let parents = [self, weight] + (bias.map { [$0] } ?? [])
        return Variable(out, shape: [n, oh, ow, cout], parents: parents) { [self] g in
            if requiresGrad {
                guard let dx = primitive.backwardData(g, weight: weight.value, inputCount: count) else {
                    preconditionFailure("conv2d: oneDNN's backward data failed for \(key)")
                }
                accumulate(dx)
            }
            let biasGrad = bias?.requiresGrad ?? false
            if weight.requiresGrad || biasGrad {
                guard
                    let (dw, db) = primitive.backwardWeights(value, g: g, weightCount: weight.count, withBias: biasGrad)
                else { preconditionFailure("conv2d: oneDNN's backward weights failed for \(key)") }
                if weight.requiresGrad { weight.accumulate(dw) }
                if biasGrad { bias?.accumulate(db) }
            }
        }
    }
}
