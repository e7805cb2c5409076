internal import CMassBLAS

/// Dense double-precision linear algebra from the LAPACK inside OpenBLAS: what fitting a linear map needs
/// (calibration adapters), not what inference runs. Matrices are row-major `[Double]`.
public enum LinearAlgebra {
    /// The eigenvalues (ascending) and eigenvectors of a symmetric `n x n` matrix; `vectors[i * n + j]` is
    /// component `i` of eigenvector `j` (row-major, one eigenvector per column).
    public static func symmetricEigen(_ a: [Double], n: Int) throws -> (values: [Double], vectors: [Double]) {
        precondition(a.count == n * n, "symmetricEigen: \(a.count) values for \(n) x \(n)")
        try BLAS.load()
        // Symmetric: row-major and column-major are the same matrix.
        var matrix = a
        var values = [Double](repeating: 0, count: n)
        let info = cmass_dsyevd(Int32(n), &matrix, &values)
        guard info == 0 else { throw failure("dsyevd", info) }
        // LAPACK's column-major eigenvectors, column j = vector j: transpose into row-major.
        var vectors = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            for i in 0..<n { vectors[i * n + j] = matrix[j * n + i] }
        }
        return (values, vectors)
    }

    /// Solves `A X = B` for a symmetric positive definite `A` (`n x n`) and `B` (`n x columns`); returns X
    /// (`n x columns`). Throws when A is not positive definite.
    public static func solvePositiveDefinite(_ a: [Double], n: Int, _ b: [Double], columns: Int) throws -> [Double] {
        precondition(a.count == n * n && b.count == n * columns, "solvePositiveDefinite: shapes do not match")
        try BLAS.load()
        var matrix = a
        var rhs = [Double](repeating: 0, count: n * columns)
        for i in 0..<n {
            for j in 0..<columns { rhs[j * n + i] = b[i * columns + j] }
        }
        let info = cmass_dposv(Int32(n), Int32(columns), &matrix, &rhs)
        guard info == 0 else { throw failure("dposv", info) }
        var x = [Double](repeating: 0, count: n * columns)
        for i in 0..<n {
            for j in 0..<columns { x[i * columns + j] = rhs[j * n + i] }
        }
        return x
    }

    /// `Aᵀ B` for row-major `A` (`rows x p`) and `B` (`rows x q`): a `p x q` matrix.
    public static func transposeTimes(_ a: [Double], _ b: [Double], rows: Int, p: Int, q: Int) -> [Double] {
        var out = [Double](repeating: 0, count: p * q)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { out in
                    for r in 0..<rows {
                        for i in 0..<p {
                            let x = a[r * p + i]
                            if x == 0 { continue }
                            let row = i * q
                            for j in 0..<q { out[row + j] += x * b[r * q + j] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `A B` for row-major `A` (`n x k`) and `B` (`k x m`).
    public static func times(_ a: [Double], _ b: [Double], n: Int, k: Int, m: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n * m)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { out in
                    for i in 0..<n {
                        for l in 0..<k {
                            let x = a[i * k + l]
                            if x == 0 { continue }
                            for j in 0..<m { out[i * m + j] += x * b[l * m + j] }
                        }
                    }
                }
            }
        }
        return out
    }

    private static func failure(_ routine: String, _ info: Int32) -> TensorError {
        switch info {
        case -1000: TensorError(.backendUnavailable, op: routine, "the loaded OpenBLAS has no LAPACK \(routine)")
        case ..<0: TensorError(.numerical, op: routine, "argument \(-info) is invalid")
        default:
            TensorError(
                .numerical, op: routine,
                routine == "dposv" ? "the matrix is not positive definite" : "did not converge (\(info))")
        }
    }
}
