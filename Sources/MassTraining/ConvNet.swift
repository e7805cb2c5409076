public import Foundation
public import MassAutograd
import MassWeights

/// A small convolutional classifier trained from scratch: two 3×3 convolutions (32 and 64 channels, padding 1)
/// each with ReLU and 2×2 max pooling, then a hidden layer of 128 with ReLU and dropout, then the classes
/// (the "two-layer CNN" of Fashion-MNIST's benchmarks). Images are NHWC floats. Weights are PyTorch's layout and
/// initialisation (uniform in ±1/√fan_in).
public final class ConvNet {
    public let side: Int
    public let channels: Int
    public let classes: Int
    /// (name, parameter), named as a PyTorch module would be.
    public let named: [(name: String, variable: Variable)]
    public var dropout: Float

    public var parameters: [Variable] { named.map(\.variable) }

    public init(side: Int, channels: Int, classes: Int, seed: UInt64, dropout: Float = 0.25) {
        precondition(side % 4 == 0, "ConvNet: the image side must be a multiple of 4")
        (self.side, self.channels, self.classes, self.dropout) = (side, channels, classes, dropout)
        var generator = SeededGenerator(seed: seed)
        func uniform(_ shape: [Int], fanIn: Int) -> Variable {
            let bound = 1 / Float(fanIn).squareRoot()
            let values = (0..<shape.reduce(1, *)).map { _ in Float.random(in: -bound...bound, using: &generator) }
            return Variable(values, shape: shape, requiresGrad: true)
        }
        let flat = (side / 4) * (side / 4) * 64
        named = [
            ("conv1.weight", uniform([32, channels, 3, 3], fanIn: channels * 9)),
            ("conv1.bias", uniform([32], fanIn: channels * 9)),
            ("conv2.weight", uniform([64, 32, 3, 3], fanIn: 32 * 9)), ("conv2.bias", uniform([64], fanIn: 32 * 9)),
            ("fc1.weight", uniform([128, flat], fanIn: flat)), ("fc1.bias", uniform([128], fanIn: flat)),
            ("fc2.weight", uniform([classes, 128], fanIn: 128)), ("fc2.bias", uniform([classes], fanIn: 128)),
        ]
    }

    /// The logits [n, classes] of images [n, side, side, channels] (dropout active when `training`).
    public func logits(_ pixels: [Float], count n: Int, training: Bool, generator: inout SeededGenerator)
        -> Variable
    {
        let p = named.map(\.variable)
        let x = Variable(pixels, shape: [n, side, side, channels])
        let same = Variable.Convolution(stride: 1, padding: 1)
        let first = x.conv2d(p[0], p[1], same).relu().maxPooled(size: 2, stride: 2)
        let second = first.conv2d(p[2], p[3], same).relu().maxPooled(size: 2, stride: 2)
        let hidden = second.reshaped([n, (side / 4) * (side / 4) * 64]).linear(p[4], p[5]).relu()
        return hidden.dropout(training ? dropout : 0, generator: &generator).linear(p[6], p[7])
    }

    /// The weights as safetensors, with `metadata` (labels, settings, lineage).
    public func save(to url: URL, metadata: [String: String]) throws {
        try Checkpoint.writeAtomically(
            SafeTensorsWriter.encode(
                named.map { ($0.name, $0.variable.shape, $0.variable.value) },
                metadata: metadata.merging(["mass.architecture": "convnet", "mass.side": String(side)]) { $1 }),
            to: url)
    }
}
