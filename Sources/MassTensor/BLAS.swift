internal import CMassBLAS

/// The process's BLAS (OpenBLAS), loaded once on first use.
///
/// Debian's OpenBLAS 0.3.21 runs its SSE3 fallback kernels on CPUs released after it (5x slower), so unless
/// `OPENBLAS_CORETYPE` is set, Mass picks the kernel family from the CPU's features before loading it:
/// AVX-512 → SkylakeX, AVX2 + FMA → Haswell.
///
/// Threading: Mass runs OpenBLAS single-threaded and parallelises itself (`ComputePool`), so that one
/// owner decides how the cores are used; `BLAS.load()` sets OpenBLAS's thread count to 1.
public enum BLAS {
    private static let loadResult: Result<Void, TensorError> = {
        let core: String? =
            if cmass_cpu_has_avx512() != 0 { "SkylakeX" } else if cmass_cpu_has_avx2_fma() != 0 { "Haswell" } else {
                nil
            }
        var buffer = [CChar](repeating: 0, count: 512)
        let status =
            core.map { name in name.withCString { cmass_blas_load($0, &buffer, 512) } }
            ?? cmass_blas_load(nil, &buffer, 512)
        guard status == 0 else {
            let message = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            return .failure(TensorError(.backendUnavailable, op: "BLAS.load", message))
        }
        cmass_blas_set_threads(1)
        return .success(())
    }()

    /// Loads OpenBLAS (once). Throws when it is not installed.
    public static func load() throws {
        try loadResult.get()
    }

    /// Sets OpenBLAS's own thread count: for a process whose compute is large products made one at a time
    /// (a training job), never for serving, where `ComputePool` owns the cores.
    public static func setThreads(_ count: Int) throws {
        try load()
        cmass_blas_set_threads(Int32(max(1, count)))
    }

    /// OpenBLAS's thread count (1 when it is not loaded).
    public static var threads: Int {
        guard (try? load()) != nil else { return 1 }
        return max(1, Int(cmass_blas_get_threads()))
    }

    /// The kernel family OpenBLAS runs, e.g. "SkylakeX".
    public static var coreName: String {
        guard (try? load()) != nil else { return "unavailable" }
        return String(cString: cmass_blas_corename())
    }

    /// OpenBLAS's build description.
    public static var configuration: String {
        guard (try? load()) != nil else { return "unavailable" }
        return String(cString: cmass_blas_config())
    }

    /// Row-major SGEMM: `c = alpha * op(a) * op(b) + beta * c`, with op = transpose when `transA`/`transB`.
    /// `a` is m×k after op, `b` is k×n after op, `c` is m×n with leading dimension `ldc`.
    /// The caller must have called `load()` (kernels that use this do so when the model is built).
    @inline(__always)
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        cmass_sgemm(
            transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta,
            c, Int32(ldc))
    }
}

/// Facts about the CPU that decide which kernels run.
public enum CPUFeatures {
    public static var hasAVX2FMA: Bool { cmass_cpu_has_avx2_fma() != 0 }
    public static var hasAVX512: Bool { cmass_cpu_has_avx512() != 0 }
    public static var hasAVX512VNNI: Bool { cmass_cpu_has_avx512_vnni() != 0 }
}
