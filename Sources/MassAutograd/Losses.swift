import Foundation

/// Training losses, each the mean over the batch as PyTorch's defaults (`reduction="mean"`).
public enum Loss {
    /// Cross-entropy of logits [n, classes] against class indices, with PyTorch's label smoothing ε: each row's
    /// loss is (1 − ε)·(−log p_label) + ε · mean over classes of (−log p_c).
    public static func crossEntropy(_ logits: Variable, labels: [Int], labelSmoothing: Float = 0) -> Variable {
        let (n, classes) = (logits.rows, logits.columns)
        precondition(labels.count == n, "crossEntropy: \(labels.count) labels for \(n) rows")
        precondition(labelSmoothing >= 0 && labelSmoothing <= 1, "crossEntropy: label smoothing outside [0, 1]")
        var probabilities = logits.value
        var total: Double = 0
        for r in 0..<n {
            let label = labels[r]
            precondition(label >= 0 && label < classes, "crossEntropy: label \(label) outside 0..<\(classes)")
            let row = logits.value[(r * classes)..<((r + 1) * classes)]
            let top = row.max()!
            let logSum = Double(top) + log(row.reduce(0.0) { $0 + exp(Double($1 - top)) })
            var meanNegativeLog: Double = 0
            for c in 0..<classes {
                let logP = Double(logits.value[r * classes + c]) - logSum
                probabilities[r * classes + c] = Float(exp(logP))
                meanNegativeLog -= logP / Double(classes)
            }
            let nll = logSum - Double(logits.value[r * classes + label])
            total += (1 - Double(labelSmoothing)) * nll + Double(labelSmoothing) * meanNegativeLog
        }
        return Variable([Float(total / Double(n))], shape: [], parents: [logits]) { g in
            // d/dz = p − ((1 − ε)·onehot + ε / classes), over n.
            let scale = g[0] / Float(n)
            var d = probabilities
            for r in 0..<n {
                for c in 0..<classes {
                    let target = (c == labels[r] ? 1 - labelSmoothing : 0) + labelSmoothing / Float(classes)
                    d[r * classes + c] = (d[r * classes + c] - target) * scale
                }
            }
            logits.accumulate(d)
        }
    }

    /// Binary cross-entropy on logits (PyTorch's `BCEWithLogitsLoss`, the stable form
    /// max(x, 0) − x·t + log(1 + e^−|x|)) against targets in [0, 1], over every element.
    public static func binaryCrossEntropy(_ logits: Variable, targets: [Float]) -> Variable {
        precondition(targets.count == logits.count, "binaryCrossEntropy: \(targets.count) targets for \(logits.count)")
        var total: Double = 0
        for (x, t) in zip(logits.value, targets) {
            total += Double(max(x, 0) - x * t) + log1p(exp(-Double(abs(x))))
        }
        let n = Float(logits.count)
        return Variable([Float(total / Double(n))], shape: [], parents: [logits]) { g in
            logits.accumulate(zip(logits.value, targets).map { x, t in (1 / (1 + Foundation.exp(-x)) - t) * g[0] / n })
        }
    }

    /// Mean squared error over every element.
    public static func meanSquaredError(_ prediction: Variable, _ target: Variable) -> Variable {
        precondition(prediction.shape == target.shape, "meanSquaredError: \(prediction.shape) vs \(target.shape)")
        let difference = prediction - target
        return (difference * difference).mean()
    }

    /// Mean over rows of 1 − cos(a_i, b_i), for [n, d] values (distillation towards a teacher's embeddings).
    public static func cosine(_ a: Variable, _ b: Variable) -> Variable {
        precondition(a.shape == b.shape, "cosine: \(a.shape) vs \(b.shape)")
        let similarity = (a.l2Normalized(eps: 1e-8) * b.l2Normalized(eps: 1e-8)).sum().scaled(1 / Float(a.rows))
        return Variable([1 - similarity.scalar], shape: [], parents: [similarity]) { g in
            similarity.accumulate([-g[0]])
        }
    }
}
