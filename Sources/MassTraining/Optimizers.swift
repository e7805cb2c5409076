import Foundation
public import MassAutograd

/// Updates parameters from their gradients. Parameters without a gradient are left alone (as PyTorch skips
/// parameters whose `grad` is None), weight decay included.
public protocol Optimizer {
    /// The learning rate of the next step (schedules set it before each step).
    var learningRate: Float { get set }
    /// One update of every parameter from its current gradient.
    mutating func step()
}

/// AdamW, as PyTorch's `torch.optim.AdamW`: decoupled weight decay (p ← p·(1 − lr·λ)), then Adam's update with
/// bias-corrected moments, lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
public struct AdamW: Optimizer {
    public let parameters: [Variable]
    public var learningRate: Float
    public var betas: (Float, Float)
    public var eps: Float
    public var weightDecay: Float
    /// Steps taken so far.
    public internal(set) var steps = 0
    var firstMoments: [[Float]]
    var secondMoments: [[Float]]

    public init(
        _ parameters: [Variable], learningRate: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
        weightDecay: Float = 0.01
    ) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.betas = betas
        self.eps = eps
        self.weightDecay = weightDecay
        firstMoments = parameters.map { [Float](repeating: 0, count: $0.count) }
        secondMoments = firstMoments
    }

    public mutating func step() {
        steps += 1
        let (beta1, beta2) = betas
        let correction1 = 1 - Float(pow(Double(beta1), Double(steps)))
        let correction2Root = (1 - Float(pow(Double(beta2), Double(steps)))).squareRoot()
        let stepSize = learningRate / correction1
        let decay = 1 - learningRate * weightDecay
        for (index, parameter) in parameters.enumerated() {
            guard let grad = parameter.grad else { continue }
            parameter.update { value in
                firstMoments[index].withUnsafeMutableBufferPointer { m in
                    secondMoments[index].withUnsafeMutableBufferPointer { v in
                        grad.withUnsafeBufferPointer { g in
                            value.withUnsafeMutableBufferPointer { p in
                                Self.update(
                                    p, m, v, g, count: p.count, beta1: beta1, beta2: beta2, decay: decay,
                                    stepSize: stepSize, correction2Root: correction2Root, eps: eps)
                            }
                        }
                    }
                }
            }
        }
    }
}

extension AdamW {
    /// One AdamW update of `count` elements, eight lanes at a time (the same arithmetic, in the same order, as the
    /// scalar tail).
    static func update(
        _ p: UnsafeMutableBufferPointer<Float>, _ m: UnsafeMutableBufferPointer<Float>,
        _ v: UnsafeMutableBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>, count: Int, beta1: Float,
        beta2: Float, decay: Float, stepSize: Float, correction2Root: Float, eps: Float
    ) {
        typealias V = SIMD8<Float>
        let (pr, mr, vr) = (
            UnsafeMutableRawPointer(p.baseAddress!), UnsafeMutableRawPointer(m.baseAddress!),
            UnsafeMutableRawPointer(v.baseAddress!)
        )
        let gr = UnsafeRawPointer(g.baseAddress!)
        var i = 0
        while i + 8 <= count {
            let offset = i * 4
            let gv = gr.loadUnaligned(fromByteOffset: offset, as: V.self)
            var mv = mr.loadUnaligned(fromByteOffset: offset, as: V.self)
            var vv = vr.loadUnaligned(fromByteOffset: offset, as: V.self)
            mv += (gv - mv) * (1 - beta1)
            vv = vv * beta2 + (1 - beta2) * gv * gv
            let denominator = vv.squareRoot() / correction2Root + eps
            let pv = pr.loadUnaligned(fromByteOffset: offset, as: V.self) * decay - stepSize * mv / denominator
            mr.storeBytes(of: mv, toByteOffset: offset, as: V.self)
            vr.storeBytes(of: vv, toByteOffset: offset, as: V.self)
            pr.storeBytes(of: pv, toByteOffset: offset, as: V.self)
            i += 8
        }
        while i < count {
            m[i] += (g[i] - m[i]) * (1 - beta1)
            v[i] = v[i] * beta2 + (1 - beta2) * g[i] * g[i]
            let denominator = v[i].squareRoot() / correction2Root + eps
            p[i] = p[i] * decay - stepSize * m[i] / denominator
            i += 1
        }
    }
}

/// SGD with momentum, as PyTorch's `torch.optim.SGD`: d = g + λ·p; b ← μ·b + (1 − dampening)·d (b = d on the
/// first step); p ← p − lr·(Nesterov ? d + μ·b : b).
public struct SGD: Optimizer {
    public let parameters: [Variable]
    public var learningRate: Float
    public var momentum: Float
    public var dampening: Float
    public var weightDecay: Float
    public var nesterov: Bool
    private var buffers: [[Float]?]

    public init(
        _ parameters: [Variable], learningRate: Float, momentum: Float = 0, dampening: Float = 0,
        weightDecay: Float = 0, nesterov: Bool = false
    ) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffers = Array(repeating: nil, count: parameters.count)
    }

    public mutating func step() {
        for (index, parameter) in parameters.enumerated() {
            guard let grad = parameter.grad else { continue }
            parameter.update { value in
                var d = grad
                if weightDecay != 0 { for i in 0..<d.count { d[i] += weightDecay * value[i] } }
                if momentum != 0 {
                    if var buffer = buffers[index] {
                        for i in 0..<d.count { buffer[i] = momentum * buffer[i] + (1 - dampening) * d[i] }
                        buffers[index] = buffer
                    } else {
                        buffers[index] = d
                    }
                    let buffer = buffers[index]!
                    for i in 0..<d.count { d[i] = nesterov ? d[i] + momentum * buffer[i] : buffer[i] }
                }
                for i in 0..<value.count { value[i] -= learningRate * d[i] }
            }
        }
    }
}
