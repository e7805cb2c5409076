// OpenBLAS, reached through a run-time loader.
//
// Debian's OpenBLAS 0.3.21 does not know CPUs newer than itself and falls back to its slowest (SSE3 "Prescott")
// kernels on them, 5x below what the hardware does. OpenBLAS reads OPENBLAS_CORETYPE only when the library is
// initialised, so Mass loads it itself (dlopen) after choosing the kernel family from the CPU's features.
#ifndef CMASSBLAS_H
#define CMASSBLAS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Loads OpenBLAS once. `coretype`, when not NULL and OPENBLAS_CORETYPE is unset, is exported as
/// OPENBLAS_CORETYPE before the library initialises. Returns 0 on success, otherwise -1 with a message in
/// `error` (at most `error_size` bytes). Thread-safe; later calls return the first call's result.
int cmass_blas_load(const char *coretype, char *error, size_t error_size);

/// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C. `trans_a`/`trans_b` are 0 or 1.
void cmass_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);

/// LAPACK's symmetric eigen-decomposition (dsyevd, column-major, upper triangle): on return `a` holds the
/// eigenvectors in its columns and `w` the eigenvalues, ascending. Returns LAPACK's info (0: done; -1000: the
/// loaded library has no LAPACK).
int cmass_dsyevd(int n, double *a, double *w);

/// LAPACK's dposv: solves A X = B for a symmetric positive definite A (n x n, column-major) and `nrhs`
/// right-hand sides in `b` (n x nrhs, column-major), overwritten with X. Returns LAPACK's info (> 0: A is not
/// positive definite).
int cmass_dposv(int n, int nrhs, double *a, double *b);

/// OpenBLAS's process-wide thread count.
void cmass_blas_set_threads(int n);
int cmass_blas_get_threads(void);
/// The kernel family OpenBLAS runs ("SkylakeX", "Haswell", ...), or "" before loading.
const char *cmass_blas_corename(void);
const char *cmass_blas_config(void);

/// Pins the calling thread to one CPU (`core` modulo the CPUs the process may use); returns 0 on success.
int cmass_pin_current_thread(int core);
/// Names the calling thread for ps, top and gdb (at most 15 bytes are kept). Returns 0 on success.
int cmass_name_current_thread(const char *name);

/// A spin-wait hint (x86 `pause`): lets a busy-waiting thread spin without a system call.
static inline void cmass_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/// Returns the allocator's free pages to the system (glibc `malloc_trim`; a no-op elsewhere), so that the
/// resident size drops after a model is unloaded.
void cmass_release_free_memory(void);

/// Serves allocations of 1 MiB and more with their own mappings, returned to the system when freed (glibc
/// otherwise raises that threshold after the first large free and keeps unloaded models' pages).
void cmass_configure_allocator(void);

/// The process's resident set size in bytes (from /proc/self/statm; 0 when unknown).
long long cmass_resident_bytes(void);

/// CPU features (x86: cpuid + xgetbv; 0 elsewhere).
int cmass_cpu_has_avx2_fma(void);
int cmass_cpu_has_avx512(void);
/// AVX-512 VNNI (vpdpbusd) on top of `cmass_cpu_has_avx512`.
int cmass_cpu_has_avx512_vnni(void);

#ifdef __cplusplus
}
#endif
#endif
