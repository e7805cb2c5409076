public import MassTensor

/// A value in a differentiable computation: a float32 array with a shape, and, once `backward()` has run on a
/// result that depends on it, the gradient of that result with respect to it.
///
/// Each op records its inputs and how to pass a gradient back to them (define by run, as PyTorch); `backward()`
/// walks the recorded graph in reverse topological order. Values that need no gradient (inputs, frozen weights)
/// record nothing, so a graph over frozen parts costs no memory. A graph belongs to one thread: a training job
/// builds, differentiates and drops it there.
public final class Variable {
    public let shape: [Int]
    public internal(set) var value: [Float]
    /// The gradient, after `backward()` (nil when no gradient reached this value).
    public var grad: [Float]?
    /// A gradient buffer `zeroGrad` set aside.
    var spareGradient: [Float]?
    /// Whether gradients flow to this value: a trainable parameter, or a result computed from one.
    public let requiresGrad: Bool
    let parents: [Variable]
    /// Given this value's gradient, adds each parent's share to the parent's gradient.
    let pullback: (([Float]) -> Void)?

    /// A leaf: an input (`requiresGrad` false) or a trainable parameter (true).
    public init(_ value: [Float], shape: [Int], requiresGrad: Bool = false) {
        precondition(
            shape.reduce(1, *) == value.count,
            "Variable: shape \(shape) needs \(shape.reduce(1, *)) values, got \(value.count)")
        self.shape = shape
        self.value = value
        self.requiresGrad = requiresGrad
        parents = []
        pullback = nil
    }

    /// A result of an op: it needs a gradient when any input does, and only then keeps its inputs.
    init(_ value: [Float], shape: [Int], parents: [Variable], pullback: @escaping ([Float]) -> Void) {
        self.shape = shape
        self.value = value
        let needed = parents.contains { $0.requiresGrad }
        requiresGrad = needed
        self.parents = needed ? parents : []
        self.pullback = needed ? pullback : nil
    }

    /// A parameter initialised from a tensor (a checkpoint's weights), trainable.
    public convenience init(parameter tensor: Tensor) throws {
        let t = try tensor.toFloat32()
        self.init(t.array, shape: t.shape, requiresGrad: true)
    }

    public var count: Int { value.count }

    /// The single element of a scalar (or one-element) value.
    public var scalar: Float {
        precondition(value.count == 1, "Variable.scalar on shape \(shape)")
        return value[0]
    }

    /// Adds `g` to this value's gradient.
    func accumulate(_ g: [Float]) {
        guard requiresGrad else { return }
        if grad == nil {
            grad = g
        } else {
            grad!.withUnsafeMutableBufferPointer { dst in
                g.withUnsafeBufferPointer { src in
                    for i in 0..<dst.count { dst[i] += src[i] }
                }
            }
        }
    }

    /// Back-propagates from this value (a scalar loss unless `seed` is given): every value it depends on that
    /// needs a gradient gets `grad` increased by d(this)/d(value), as PyTorch accumulates.
    public func backward(seed: [Float]? = nil) {
        guard requiresGrad else { return }
        precondition(seed != nil || value.count == 1, "backward() without a seed needs a scalar, got shape \(shape)")
        // Reverse topological order by an iterative depth-first search.
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Variable, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded {
                order.append(node)
                continue
            }
            guard visited.insert(ObjectIdentifier(node)).inserted else { continue }
            stack.append((node, true))
            for parent in node.parents where parent.requiresGrad && !visited.contains(ObjectIdentifier(parent)) {
                stack.append((parent, false))
            }
        }
        // Intermediate results start from nothing on each call; leaves keep accumulating.
        for node in order where node.pullback != nil { node.grad = nil }
        accumulate(seed ?? [1])
        for node in order.reversed() {
            guard let pullback = node.pullback, let g = node.grad else { continue }
            pullback(g)
        }
    }

    /// Forgets the gradient (before the next step, as `optimizer.zero_grad()`). Its buffer is kept for an op that
    /// fills a whole gradient of this value again (`takeSpareGradient`).
    public func zeroGrad() {
        spareGradient = grad
        grad = nil
    }

    /// The last step's gradient buffer, zeroed, when it can be reused: an embedding table's gradient (47 MB for
    /// BERT's vocabulary) then costs a memset instead of fresh pages each step.
    func takeSpareGradient() -> [Float] {
        guard var spare = spareGradient, spare.count == count else { return [Float](repeating: 0, count: count) }
        spareGradient = nil
        spare.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        return spare
    }
}

extension Variable {
    /// Overwrites one element (finite-difference checks, optimizers' in-place updates).
    public func set(_ index: Int, _ newValue: Float) { value[index] = newValue }

    /// Replaces every element (an optimizer's step); the shape stays.
    public func update(_ body: (inout [Float]) -> Void) {
        body(&value)
        precondition(value.count == shape.reduce(1, *), "Variable.update changed the element count")
    }
}
