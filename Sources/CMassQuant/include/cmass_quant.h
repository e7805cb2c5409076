// int8 GEMM for quantised linear layers: y = x · Wᵀ (+ bias) with W quantised per output channel (symmetric
// int8) and x quantised per row at run time (asymmetric uint8), accumulated exactly in int32.
//
// Layout: W [n, k] is packed in panels of 16 output columns; k is padded to a multiple of 4 (`cmass_q8_depth`),
// and for every group of 4 k the panel holds 16 columns x 4 bytes (64 bytes: one zmm, two ymm). Both kernels
// read that layout: the AVX-512 VNNI kernel multiplies 4 uint8 x 4 int8 into each int32 lane with vpdpbusd;
// the AVX2 kernel widens both to int16 and uses vpmaddwd, which cannot saturate (vpmaddubsw can: 2 x 255 x 127
// overflows int16).
#ifndef CMASS_QUANT_H
#define CMASS_QUANT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// k rounded up to a multiple of 4.
static inline int cmass_q8_depth(int k) { return (k + 3) & ~3; }

/// Bytes of the packed weights of an [n, k] matrix.
size_t cmass_q8_packed_bytes(int n, int k);

/// Quantises W [n, k] (row-major, float) per output row: scale[j] = max|W[j,:]| / 127, q = round(W / scale).
/// Writes the panels (`cmass_q8_packed_bytes`), the scales [n] and the sums of each column's int8 weights [n]
/// (the zero-point correction).
void cmass_q8_pack(const float *w, int n, int k, int8_t *panels, float *scales, int32_t *sums);

/// Packs weights already quantised (q [n, k] row-major int8, |q| ≤ 127, as `cmass_q8_pack` would produce them),
/// and writes the column sums [n].
void cmass_q8_pack_int8(const int8_t *q, int n, int k, int8_t *panels, int32_t *sums);

/// Quantises rows of x [rows, k] (rows `lda` apart) to uint8 with a scale and zero point per row (the range
/// always contains 0, so 0 is exact): q [rows, cmass_q8_depth(k)], padding 0.
void cmass_q8_quantize_rows(const float *x, int rows, int k, int lda, uint8_t *q, float *scales, int32_t *zeros);

/// y[r, c] (= or +=) xs[r] * ws[c] * (sum_k q[r,k] w[c,k] - zero[r] * sums[c]) + bias[c], for rows [0, rows)
/// and columns [c0, c1), c0 a multiple of 16. q is [rows, depth] as `cmass_q8_quantize_rows` writes it; y has
/// rows `ldc` apart; bias may be NULL.
void cmass_q8_gemm_avx2(const uint8_t *q, const float *xs, const int32_t *zeros, int rows, int k,
                        const int8_t *panels, const float *ws, const int32_t *sums, const float *bias, int c0, int c1,
                        float *y, int ldc, int accumulate);
/// The same with AVX-512 VNNI; only on CPUs where `cmass_cpu_has_avx512_vnni` holds.
void cmass_q8_gemm_vnni512(const uint8_t *q, const float *xs, const int32_t *zeros, int rows, int k,
                           const int8_t *panels, const float *ws, const int32_t *sums, const float *bias, int c0,
                           int c1, float *y, int ldc, int accumulate);

#ifdef __cplusplus
}
#endif

#endif
