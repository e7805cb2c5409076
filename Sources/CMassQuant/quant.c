#include "cmass_quant.h"

#include <math.h>
#include <string.h>

size_t cmass_q8_packed_bytes(int n, int k) { return (size_t)((n + 15) / 16) * (size_t)cmass_q8_depth(k) * 16; }

void cmass_q8_pack_int8(const int8_t *q, int n, int k, int8_t *panels, int32_t *sums) {
    const int groups = cmass_q8_depth(k) / 4;
    memset(panels, 0, cmass_q8_packed_bytes(n, k));
    for (int j = 0; j < n; j++) {
        int32_t sum = 0;
        int8_t *panel = panels + (size_t)(j / 16) * groups * 64 + (j % 16) * 4;
        for (int i = 0; i < k; i++) {
            const int8_t v = q[(size_t)j * k + i];
            panel[(size_t)(i / 4) * 64 + (i % 4)] = v;
            sum += v;
        }
        sums[j] = sum;
    }
}

void cmass_q8_pack(const float *w, int n, int k, int8_t *panels, float *scales, int32_t *sums) {
    const int groups = cmass_q8_depth(k) / 4;
    memset(panels, 0, cmass_q8_packed_bytes(n, k));
    for (int j = 0; j < n; j++) {
        const float *row = w + (size_t)j * k;
        float largest = 0;
        for (int i = 0; i < k; i++) largest = fmaxf(largest, fabsf(row[i]));
        const float scale = largest > 0 ? largest / 127.0f : 1.0f;
        int32_t sum = 0;
        int8_t *panel = panels + (size_t)(j / 16) * groups * 64 + (j % 16) * 4;
        for (int i = 0; i < k; i++) {
            long v = lrintf(row[i] / scale);
            v = v > 127 ? 127 : (v < -127 ? -127 : v);
            panel[(size_t)(i / 4) * 64 + (i % 4)] = (int8_t)v;
            sum += (int32_t)v;
        }
        scales[j] = scale;
        sums[j] = sum;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// The smallest and largest of row[0..<k] (AVX2).
static void row_range(const float *row, int k, float *lo, float *hi) {
    __m256 low = _mm256_setzero_ps(), high = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m256 v = _mm256_loadu_ps(row + i);
        low = _mm256_min_ps(low, v);
        high = _mm256_max_ps(high, v);
    }
    float l[8], h[8];
    _mm256_storeu_ps(l, low);
    _mm256_storeu_ps(h, high);
    float a = 0, b = 0;
    for (int j = 0; j < 8; j++) {
        a = fminf(a, l[j]);
        b = fmaxf(b, h[j]);
    }
    for (; i < k; i++) {
        a = fminf(a, row[i]);
        b = fmaxf(b, row[i]);
    }
    *lo = a;
    *hi = b;
}

/// q[i] = clamp(round(row[i] * inverse) + zero, 0, 255): 32 at a time, rounding to nearest even as lrintf does.
static void quantize_row(const float *row, int k, float inverse, int32_t zero, uint8_t *out) {
    const __m256 scale = _mm256_set1_ps(inverse);
    const __m256i offset = _mm256_set1_epi32(zero);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int i = 0;
    for (; i + 32 <= k; i += 32) {
        __m256i v[4];
        for (int j = 0; j < 4; j++)
            v[j] = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + i + 8 * j), scale)), offset);
        // int32 → int16 (saturating; |values| < 2^15 here) → uint8 (saturating: the clamp to 0...255).
        const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        _mm256_storeu_si256((__m256i *)(out + i), _mm256_permutevar8x32_epi32(bytes, order));
    }
    for (; i < k; i++) {
        long q = lrintf(row[i] * inverse) + zero;
        out[i] = (uint8_t)(q > 255 ? 255 : (q < 0 ? 0 : q));
    }
}
#else
static void row_range(const float *row, int k, float *lo, float *hi) {
    float a = 0, b = 0;
    for (int i = 0; i < k; i++) {
        a = fminf(a, row[i]);
        b = fmaxf(b, row[i]);
    }
    *lo = a;
    *hi = b;
}

static void quantize_row(const float *row, int k, float inverse, int32_t zero, uint8_t *out) {
    for (int i = 0; i < k; i++) {
        long q = lrintf(row[i] * inverse) + zero;
        out[i] = (uint8_t)(q > 255 ? 255 : (q < 0 ? 0 : q));
    }
}
#endif

void cmass_q8_quantize_rows(const float *x, int rows, int k, int lda, uint8_t *q, float *scales, int32_t *zeros) {
    const int depth = cmass_q8_depth(k);
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * lda;
        float lo, hi;
        row_range(row, k, &lo, &hi);
        const float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
        long zero = lrintf(-lo / scale);
        zero = zero > 255 ? 255 : (zero < 0 ? 0 : zero);
        uint8_t *out = q + (size_t)r * depth;
        quantize_row(row, k, 1.0f / scale, (int32_t)zero, out);
        for (int i = k; i < depth; i++) out[i] = 0;
        scales[r] = scale;
        zeros[r] = (int32_t)zero;
    }
}

#if defined(__x86_64__)

static inline int32_t load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

// MARK: AVX-512 VNNI: tiles of up to 6 rows x 64 columns (24 accumulators, 4 weight vectors, 1 broadcast).

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

static inline __attribute__((always_inline)) VNNI void tile512(
    const uint8_t *a, int lda, int groups, const int8_t *b, const int mr, const int np, const float *xs,
    const int32_t *zeros, const float *ws, const int32_t *sums, const float *bias, float *y, int ldc, int width,
    int accumulate) {
    __m512i acc[6][4];
    for (int i = 0; i < mr; i++)
        for (int p = 0; p < np; p++) acc[i][p] = _mm512_setzero_si512();
    const size_t stride = (size_t)groups * 64;
    for (int g = 0; g < groups; g++) {
        __m512i w[4];
        for (int p = 0; p < np; p++) w[p] = _mm512_loadu_si512((const void *)(b + p * stride + (size_t)g * 64));
        for (int i = 0; i < mr; i++) {
            const __m512i av = _mm512_set1_epi32(load4(a + (size_t)i * lda + 4 * g));
            for (int p = 0; p < np; p++) acc[i][p] = _mm512_dpbusd_epi32(acc[i][p], av, w[p]);
        }
    }
    for (int p = 0; p < np; p++) {
        const int column = p * 16;
        const int count = width - column < 16 ? width - column : 16;
        if (count <= 0) break;
        const __mmask16 mask = count == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
        const __m512 wsv = _mm512_maskz_loadu_ps(mask, ws + column);
        const __m512i sumv = _mm512_maskz_loadu_epi32(mask, sums + column);
        const __m512 biasv = bias ? _mm512_maskz_loadu_ps(mask, bias + column) : _mm512_setzero_ps();
        for (int i = 0; i < mr; i++) {
            const __m512i exact = _mm512_sub_epi32(acc[i][p], _mm512_mullo_epi32(_mm512_set1_epi32(zeros[i]), sumv));
            __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(exact), _mm512_mul_ps(_mm512_set1_ps(xs[i]), wsv), biasv);
            float *out = y + (size_t)i * ldc + column;
            if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out));
            _mm512_mask_storeu_ps(out, mask, v);
        }
    }
}

#define TILE512(MR, NP)                                                                                          \
    tile512(a, lda, groups, b, MR, NP, xs, zeros, ws, sums, bias, y, ldc, width, accumulate)
#define ROWS512(MR)                                                                                              \
    switch (np) {                                                                                                \
    case 4: TILE512(MR, 4); break;                                                                               \
    case 3: TILE512(MR, 3); break;                                                                               \
    case 2: TILE512(MR, 2); break;                                                                               \
    default: TILE512(MR, 1); break;                                                                              \
    }

static VNNI void dispatch512(const uint8_t *a, int lda, int groups, const int8_t *b, int mr, int np, const float *xs,
                             const int32_t *zeros, const float *ws, const int32_t *sums, const float *bias, float *y,
                             int ldc, int width, int accumulate) {
    switch (mr) {
    case 6: ROWS512(6); break;
    case 5: ROWS512(5); break;
    case 4: ROWS512(4); break;
    case 3: ROWS512(3); break;
    case 2: ROWS512(2); break;
    default: ROWS512(1); break;
    }
}

VNNI void cmass_q8_gemm_vnni512(const uint8_t *q, const float *xs, const int32_t *zeros, int rows, int k,
                                const int8_t *panels, const float *ws, const int32_t *sums, const float *bias, int c0,
                                int c1, float *y, int ldc, int accumulate) {
    const int depth = cmass_q8_depth(k), groups = depth / 4;
    for (int c = c0; c < c1; c += 64) {
        const int width = c1 - c < 64 ? c1 - c : 64;
        const int np = (width + 15) / 16;
        const int8_t *b = panels + (size_t)(c / 16) * groups * 64;
        for (int r = 0; r < rows; r += 6) {
            const int mr = rows - r < 6 ? rows - r : 6;
            dispatch512(q + (size_t)r * depth, depth, groups, b, mr, np, xs + r, zeros + r, ws + c, sums + c,
                        bias ? bias + c : NULL, y + (size_t)r * ldc + c, ldc, width, accumulate);
        }
    }
}

// MARK: AVX2: int16 products (vpmaddwd), tiles of up to 3 rows x 16 columns.
//
// A panel's 64 bytes for one group of 4 k are 4 chunks of 4 columns x 4 k; each chunk widened to int16 and
// multiplied by the row's 4 activations (widened, repeated) gives 8 int32: per column, k0·w0 + k1·w1 and
// k2·w2 + k3·w3. The pairs are added at the end.

#define AVX2 __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) AVX2 void tile256(
    const uint8_t *a, int lda, int groups, const int8_t *b, const int mr, const float *xs, const int32_t *zeros,
    const float *ws, const int32_t *sums, const float *bias, float *y, int ldc, int width, int accumulate) {
    __m256i acc[3][4];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = _mm256_setzero_si256();
    for (int g = 0; g < groups; g++) {
        __m256i av[3];
        for (int i = 0; i < mr; i++) {
            const __m128i four = _mm_cvtsi32_si128(load4(a + (size_t)i * lda + 4 * g));
            av[i] = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(four));
        }
        for (int j = 0; j < 4; j++) {
            const __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + (size_t)g * 64 + 16 * j)));
            for (int i = 0; i < mr; i++) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(w, av[i]));
        }
    }
    // Column data padded to 16 (a panel's tail columns hold zeros).
    float wsb[16] = {0}, biasb[16] = {0};
    int32_t sumb[16] = {0};
    memcpy(wsb, ws, (size_t)width * 4);
    memcpy(sumb, sums, (size_t)width * 4);
    if (bias) memcpy(biasb, bias, (size_t)width * 4);
    for (int i = 0; i < mr; i++) {
        // Pairs added: [c0 c1 c4 c5 | c2 c3 c6 c7] → columns in order.
        const __m256i halves[2] = {
            _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[i][0], acc[i][1]), 0xD8),
            _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[i][2], acc[i][3]), 0xD8),
        };
        const __m256i zero = _mm256_set1_epi32(zeros[i]);
        const __m256 x = _mm256_set1_ps(xs[i]);
        float result[16];
        for (int h = 0; h < 2; h++) {
            const __m256i exact = _mm256_sub_epi32(
                halves[h], _mm256_mullo_epi32(zero, _mm256_loadu_si256((const __m256i *)(sumb + 8 * h))));
            _mm256_storeu_ps(result + 8 * h,
                             _mm256_fmadd_ps(_mm256_cvtepi32_ps(exact), _mm256_mul_ps(x, _mm256_loadu_ps(wsb + 8 * h)),
                                             _mm256_loadu_ps(biasb + 8 * h)));
        }
        float *out = y + (size_t)i * ldc;
        for (int c = 0; c < width; c++) out[c] = accumulate ? out[c] + result[c] : result[c];
    }
}

#define TILE256(MR)                                                                                              \
    tile256(q + (size_t)r * depth, depth, groups, b, MR, xs + r, zeros + r, ws + c, sums + c,                    \
            bias ? bias + c : NULL, y + (size_t)r * ldc + c, ldc, width, accumulate)

AVX2 void cmass_q8_gemm_avx2(const uint8_t *q, const float *xs, const int32_t *zeros, int rows, int k,
                             const int8_t *panels, const float *ws, const int32_t *sums, const float *bias, int c0,
                             int c1, float *y, int ldc, int accumulate) {
    const int depth = cmass_q8_depth(k), groups = depth / 4;
    for (int c = c0; c < c1; c += 16) {
        const int width = c1 - c < 16 ? c1 - c : 16;
        const int8_t *b = panels + (size_t)(c / 16) * groups * 64;
        for (int r = 0; r < rows; r += 3) {
            switch (rows - r < 3 ? rows - r : 3) {
            case 3: TILE256(3); break;
            case 2: TILE256(2); break;
            default: TILE256(1); break;
            }
        }
    }
}

#else

void cmass_q8_gemm_avx2(const uint8_t *q, const float *xs, const int32_t *zeros, int rows, int k,
                        const int8_t *panels, const float *ws, const int32_t *sums, const float *bias, int c0, int c1,
                        float *y, int ldc, int accumulate) {
    (void)q, (void)xs, (void)zeros, (void)rows, (void)k, (void)panels, (void)ws, (void)sums, (void)bias;
    (void)c0, (void)c1, (void)y, (void)ldc, (void)accumulate;
}
void cmass_q8_gemm_vnni512(const uint8_t *q, const float *xs, const int32_t *zeros, int rows, int k,
                           const int8_t *panels, const float *ws, const int32_t *sums, const float *bias, int c0,
                           int c1, float *y, int ldc, int accumulate) {
    cmass_q8_gemm_avx2(q, xs, zeros, rows, k, panels, ws, sums, bias, c0, c1, y, ldc, accumulate);
}

#endif
