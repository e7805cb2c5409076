import MassTensor

/// Matrix products through OpenBLAS (forward and both gradients are SGEMMs), and embedding lookup.
extension Variable {
    /// The rows of a value seen as a matrix: every dimension but the last.
    var rows: Int { shape.count <= 1 ? 1 : count / shape.last! }
    var columns: Int { shape.last ?? 1 }

    /// x · Wᵀ + b, PyTorch's `nn.Linear`: x [..., in], weight [out, in], bias [out] → [..., out].
    public func linear(_ weight: Variable, _ bias: Variable? = nil) -> Variable {
        precondition(
            weight.shape.count == 2 && weight.shape[1] == columns,
            "linear: input \(shape) does not fit weight \(weight.shape)")
        let (m, k, n) = (rows, columns, weight.shape[0])
        var out = Self.unfilled(m * n)
        if let bias {
            precondition(bias.shape == [n], "linear: bias \(bias.shape) does not fit \(n) outputs")
            let b = bias.value
            out.withUnsafeMutableBufferPointer { o in
                b.withUnsafeBufferPointer {
                    for r in 0..<m { (o.baseAddress! + r * n).update(from: $0.baseAddress!, count: n) }
                }
            }
        }
        Self.gemm(false, true, m, n, k, value, k, weight.value, k, bias == nil ? 0 : 1, &out, n)
        let outShape = Array(shape.dropLast()) + [n]
        return Variable(out, shape: outShape, parents: [self, weight] + (bias.map { [$0] } ?? [])) { [self] g in
            if requiresGrad {
                var dx = Self.unfilled(m * k)
                Self.gemm(false, false, m, k, n, g, n, weight.value, k, 0, &dx, k)  // dX = dY · W
                accumulate(dx)
            }
            if weight.requiresGrad {
                var dw = Self.unfilled(n * k)
                Self.gemm(true, false, n, k, m, g, n, value, k, 0, &dw, k)  // dW = dYᵀ · X
                weight.accumulate(dw)
            }
            if let bias, bias.requiresGrad { bias.accumulate(Self.columnSums(g, rows: m, columns: n)) }
        }
    }

    /// a · b (or with either transposed) for matrices: a [m, k], b [k, n] → [m, n].
    public func matmul(_ b: Variable, transposeA: Bool = false, transposeB: Bool = false) -> Variable {
        precondition(shape.count == 2 && b.shape.count == 2, "matmul: needs matrices, got \(shape) and \(b.shape)")
        let (m, k) = transposeA ? (shape[1], shape[0]) : (shape[0], shape[1])
        let (kb, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        precondition(k == kb, "matmul: \(shape) and \(b.shape) do not fit")
        var out = [Float](repeating: 0, count: m * n)
        Self.gemm(transposeA, transposeB, m, n, k, value, shape[1], b.value, b.shape[1], 0, &out, n)
        return Variable(out, shape: [m, n], parents: [self, b]) { [self] g in
            if requiresGrad {
                // dA = dC · op(B)ᵀ, laid out as A is stored.
                var da = [Float](repeating: 0, count: count)
                if transposeA {
                    Self.gemm(transposeB, true, k, m, n, b.value, b.shape[1], g, n, 0, &da, m)
                } else {
                    Self.gemm(false, !transposeB, m, k, n, g, n, b.value, b.shape[1], 0, &da, k)
                }
                accumulate(da)
            }
            if b.requiresGrad {
                // dB = op(A)ᵀ · dC, laid out as B is stored.
                var db = [Float](repeating: 0, count: b.count)
                if transposeB {
                    Self.gemm(true, transposeA, n, k, m, g, n, value, shape[1], 0, &db, k)
                } else {
                    Self.gemm(!transposeA, false, k, n, m, value, shape[1], g, n, 0, &db, n)
                }
                b.accumulate(db)
            }
        }
    }

    /// Rows of `table` [vocabulary, width] picked by `ids`: [ids.count, width]. The gradient of each row is the
    /// sum of its picks'; the row `paddingIndex` gets none (PyTorch's `padding_idx`).
    public static func embedding(_ ids: [Int32], _ table: Variable, paddingIndex: Int32? = nil) -> Variable {
        precondition(table.shape.count == 2, "embedding: the table must be a matrix, got \(table.shape)")
        let (vocabulary, width) = (table.shape[0], table.shape[1])
        var out = [Float](repeating: 0, count: ids.count * width)
        for (i, id) in ids.enumerated() {
            precondition(id >= 0 && Int(id) < vocabulary, "embedding: id \(id) outside 0..<\(vocabulary)")
            for c in 0..<width { out[i * width + c] = table.value[Int(id) * width + c] }
        }
        return Variable(out, shape: [ids.count, width], parents: [table]) { g in
            var d = table.takeSpareGradient()
            for (i, id) in ids.enumerated() where id != paddingIndex {
                for c in 0..<width { d[Int(id) * width + c] += g[i * width + c] }
            }
            table.accumulate(d)
        }
    }

    /// An array of `count` floats left as the allocator gives them, for a product with beta 0 to overwrite
    /// (OpenBLAS stores zeros for beta 0 rather than scaling what is there): no memset first.
    static func unfilled(_ count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// The sum of each column of a row-major [rows, columns] matrix, eight lanes at a time.
    static func columnSums(_ g: [Float], rows: Int, columns: Int) -> [Float] {
        var sums = [Float](repeating: 0, count: columns)
        sums.withUnsafeMutableBufferPointer { s in
            g.withUnsafeBufferPointer { rowsOf in
                for r in 0..<rows {
                    Kernels.add(rowsOf.baseAddress! + r * columns, to: s.baseAddress!, count: columns)
                }
            }
        }
        return sums
    }

    /// Row-major SGEMM on arrays: c = op(a) · op(b) + beta · c.
    static func gemm(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: [Float], _ lda: Int, _ b: [Float],
        _ ldb: Int, _ beta: Float, _ c: inout [Float], _ ldc: Int
    ) {
        strided(transA, transB, m, n, k, 1, (a, 0, lda), (b, 0, ldb), &c, 0, ldc, beta: beta)
    }

    /// c[cOffset...] = alpha · op(a) · op(b) + beta · c over sub-matrices of arrays: each operand is (array,
    /// offset of its first element, leading dimension). The one way MassAutograd calls OpenBLAS.
    static func strided(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float, _ a: ([Float], Int, Int),
        _ b: ([Float], Int, Int), _ c: inout [Float], _ cOffset: Int, _ ldc: Int, beta: Float = 0
    ) {
        Autograd.loadBLAS()
        a.0.withUnsafeBufferPointer { pa in
            b.0.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    BLAS.sgemm(
                        transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: pa.baseAddress! + a.1,
                        lda: a.2, b: pb.baseAddress! + b.1, ldb: b.2, beta: beta, c: pc.baseAddress! + cOffset,
                        ldc: ldc)
                }
            }
        }
    }
}

enum Autograd {
    /// OpenBLAS is loaded at run time; ops load it before their first product (loading twice is a no-op).
    static func loadBLAS() {
        do { try BLAS.load() } catch { preconditionFailure("MassAutograd needs OpenBLAS: \(error)") }
    }
}
