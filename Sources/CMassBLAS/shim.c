// Run-time loader for OpenBLAS: see CMassBLAS.h for why. Only symbol lookup lives here, no numerics.
#define _GNU_SOURCE
#include "CMassBLAS.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                         float *, int);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*string_fn)(void);
typedef void (*dsyevd_fn)(const char *, const char *, const int *, double *, const int *, double *, double *,
                          const int *, int *, const int *, int *);
typedef void (*dposv_fn)(const char *, const int *, const int *, double *, const int *, double *, const int *,
                         int *);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *requested_core;
static char load_error[512];
static int load_status = -1;
static sgemm_fn p_sgemm;
static set_threads_fn p_set_threads;
static get_threads_fn p_get_threads;
static string_fn p_corename, p_config;
static dsyevd_fn p_dsyevd;
static dposv_fn p_dposv;

static void *first_library(void) {
    static const char *names[] = {"libopenblas.so.0", "libopenblas.so",
                                  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
                                  "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
    }
    return NULL;
}

static void do_load(void) {
    if (requested_core && requested_core[0] && !getenv("OPENBLAS_CORETYPE"))
        setenv("OPENBLAS_CORETYPE", requested_core, 0);
    void *h = first_library();
    if (!h) {
        snprintf(load_error, sizeof load_error,
                 "cannot load OpenBLAS (libopenblas.so.0): %s; install it with 'apt-get install libopenblas-dev'",
                 dlerror());
        return;
    }
    p_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    p_set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
    p_get_threads = (get_threads_fn)dlsym(h, "openblas_get_num_threads");
    p_corename = (string_fn)dlsym(h, "openblas_get_corename");
    p_config = (string_fn)dlsym(h, "openblas_get_config");
    p_dsyevd = (dsyevd_fn)dlsym(h, "dsyevd_");
    p_dposv = (dposv_fn)dlsym(h, "dposv_");
    if (!p_sgemm || !p_set_threads || !p_get_threads) {
        snprintf(load_error, sizeof load_error, "the loaded libopenblas.so.0 lacks cblas_sgemm or "
                                                "openblas_set_num_threads; is it OpenBLAS?");
        return;
    }
    load_status = 0;
}

int cmass_blas_load(const char *coretype, char *error, size_t error_size) {
    requested_core = coretype;
    pthread_once(&once, do_load);
    if (load_status != 0 && error && error_size) snprintf(error, error_size, "%s", load_error);
    return load_status;
}

void cmass_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc) {
    p_sgemm(RowMajor, trans_a ? Trans : NoTrans, trans_b ? Trans : NoTrans, m, n, k, alpha, a, lda, b, ldb, beta,
            c, ldc);
}

void cmass_blas_set_threads(int n) {
    if (p_set_threads) p_set_threads(n);
}
int cmass_blas_get_threads(void) { return p_get_threads ? p_get_threads() : 0; }
const char *cmass_blas_corename(void) { return p_corename ? p_corename() : ""; }
const char *cmass_blas_config(void) { return p_config ? p_config() : ""; }

#if defined(__x86_64__)
static unsigned long long xgetbv0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
int cmass_cpu_has_avx2_fma(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!(fma && osxsave && avx) || (xgetbv0() & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;
}
int cmass_cpu_has_avx512(void) {
    unsigned int a, b, c, d;
    if (!cmass_cpu_has_avx2_fma() || (xgetbv0() & 0xe6) != 0xe6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    // AVX-512 F, DQ, BW and VL: the set OpenBLAS's SkylakeX kernels use.
    return ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
}
int cmass_cpu_has_avx512_vnni(void) {
    unsigned int a, b, c, d;
    if (!cmass_cpu_has_avx512() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c >> 11) & 1;
}
#else
int cmass_cpu_has_avx2_fma(void) { return 0; }
int cmass_cpu_has_avx512(void) { return 0; }
int cmass_cpu_has_avx512_vnni(void) { return 0; }
#endif

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <unistd.h>

void cmass_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

void cmass_configure_allocator(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

long long cmass_resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long long pages_total = 0, pages_resident = 0;
    int n = fscanf(f, "%lld %lld", &pages_total, &pages_resident);
    fclose(f);
    return n == 2 ? pages_resident * (long long)sysconf(_SC_PAGESIZE) : 0;
}

#include <sched.h>

int cmass_pin_current_thread(int core) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return -1;
    int count = CPU_COUNT(&allowed);
    if (count <= 1) return -1;
    int wanted = core % count, seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        if (seen++ == wanted) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            return pthread_setaffinity_np(pthread_self(), sizeof one, &one);
        }
    }
    return -1;
}

int cmass_name_current_thread(const char *name) {
    char shortened[16];
    strncpy(shortened, name, sizeof shortened - 1);
    shortened[sizeof shortened - 1] = 0;
    return pthread_setname_np(pthread_self(), shortened);
}

int cmass_dsyevd(int n, double *a, double *w) {
    if (!p_dsyevd) return -1000;
    const char jobz = 'V', uplo = 'U';
    int lwork = -1, liwork = -1, info = 0, iwork_query = 0;
    double work_query = 0;
    p_dsyevd(&jobz, &uplo, &n, a, &n, w, &work_query, &lwork, &iwork_query, &liwork, &info);
    if (info != 0) return info;
    lwork = (int)work_query;
    liwork = iwork_query;
    double *work = malloc(sizeof(double) * (size_t)(lwork > 1 ? lwork : 1));
    int *iwork = malloc(sizeof(int) * (size_t)(liwork > 1 ? liwork : 1));
    if (!work || !iwork) {
        free(work);
        free(iwork);
        return -1001;
    }
    p_dsyevd(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info);
    free(work);
    free(iwork);
    return info;
}

int cmass_dposv(int n, int nrhs, double *a, double *b) {
    if (!p_dposv) return -1000;
    const char uplo = 'U';
    int info = 0;
    p_dposv(&uplo, &n, &nrhs, a, &n, b, &n, &info);
    return info;
}
