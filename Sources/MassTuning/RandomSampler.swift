import Foundation
import MassAutograd

/// What proposes the next trial's parameters from the study's space and the trials so far.
public protocol Sampler: Sendable {
    /// Parameters for trial `number`, one per active parameter of `space`. The same inputs give the same draw.
    func sample(_ space: SearchSpace, directions: [Direction], trials: [TrialRecord], number: Int)
        -> [String: TuningValue]
}

/// Independent uniform draws (log-uniform for log parameters), seeded per trial.
public struct RandomSampler: Sampler {
    public var seed: UInt64

    public init(seed: UInt64 = 0) { self.seed = seed }

    public func sample(_ space: SearchSpace, directions: [Direction], trials: [TrialRecord], number: Int)
        -> [String: TuningValue]
    {
        var generator = Self.generator(seed: seed, number: number)
        var drawn: [String: TuningValue] = [:]
        for name in space.order where space.isActive(name, given: drawn) {
            drawn[name] = Self.draw(space.parameters[name]!, using: &generator)
        }
        return drawn
    }

    /// One uniform draw of `parameter`.
    static func draw(_ parameter: SearchSpace.Parameter, using generator: inout SeededGenerator) -> TuningValue {
        if parameter.type == .categorical {
            let choices = parameter.choices!
            return choices[Int(generator.next() % UInt64(choices.count))]
        }
        let (low, high) = parameter.internalBounds
        return parameter.value(internal: Double.random(in: low...high, using: &generator))
    }

    /// The trial's own stream: the study's seed and the trial's number mixed, so that trials drawn on different
    /// workers in any order get the same values.
    static func generator(seed: UInt64, number: Int) -> SeededGenerator {
        var mixer = SeededGenerator(seed: seed ^ (UInt64(number) &* 0xD1B5_4A32_D192_ED03))
        return SeededGenerator(seed: mixer.next())
    }
}
