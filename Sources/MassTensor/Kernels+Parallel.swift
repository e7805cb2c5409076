extension ComputePool {
    /// `y = x · wᵀ + bias` (PyTorch Linear) with the output columns split across the pool's threads, each
    /// running single-threaded BLAS on its slice of `w` (rows of w are contiguous, so slices need no copy).
    /// With `accumulate`, y += x · wᵀ (+ bias). x is [rows, k], w is [n, k], y is [rows, n].
    public func linear(
        _ x: UnsafePointer<Float>, rows: Int, k: Int, weight: UnsafePointer<Float>, n: Int,
        bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, accumulate: Bool = false
    ) {
        // Small products are not worth waking a thread for (~20 µs); split in multiples of 16 columns.
        let parts = rows * n * k < 1 << 18 ? 1 : min(threadCount, max(1, n / 64))
        parallelFor(parts) { part in
            let n0 = (part * n / parts) & ~15
            let n1 = part == parts - 1 ? n : ((part + 1) * n / parts) & ~15
            BLAS.sgemm(
                transA: false, transB: true, m: rows, n: n1 - n0, k: k, alpha: 1, a: x, lda: k,
                b: weight + n0 * k, ldb: k, beta: accumulate ? 1 : 0, c: y + n0, ldc: n)
            if let bias {
                for r in 0..<rows {
                    Kernels.add(bias + n0, to: y + r * n + n0, count: n1 - n0)
                }
            }
        }
    }

    /// Runs `body(start, end)` over `rows` split into one contiguous range per thread.
    public func forRowRanges(_ rows: Int, minimumRowsPerThread: Int = 8, _ body: (Int, Int) -> Void) {
        let parts = max(1, min(threadCount, rows / max(1, minimumRowsPerThread)))
        parallelFor(parts) { part in body(part * rows / parts, (part + 1) * rows / parts) }
    }
}
