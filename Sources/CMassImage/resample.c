// The two passes of Pillow's fixed-point resampling (libImaging/Resample.c, 8 bits per channel, 22-bit
// coefficients), for RGB rows. Swift computes the coefficients; these loops apply them. Every sum is the exact
// integer sum Pillow computes, so the bytes are Pillow's; only the order of the work differs.
#include "CMassImage.h"

#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define PRECISION_BITS 22

static inline unsigned char clip8(int v) {
    if (v >= (255 << PRECISION_BITS)) return 255;
    if (v <= 0) return 0;
    return (unsigned char)(v >> PRECISION_BITS);
}

static inline unsigned load32(const unsigned char *p) {
    unsigned v;
    memcpy(&v, p, 4);
    return v;
}

#if defined(__AVX2__)
static inline __m256i clip8x8(__m256i v) {
    v = _mm256_max_epi32(v, _mm256_setzero_si256());
    v = _mm256_min_epi32(v, _mm256_set1_epi32(255 << PRECISION_BITS));
    return _mm256_srai_epi32(v, PRECISION_BITS);
}
#endif

void cmass_resample_horizontal(const unsigned char *src, ptrdiff_t stride, int rows, int vector_rows,
                               const int *first, const int *count, const int *weights, int ksize, int out_width,
                               unsigned char *dst) {
    const int half = 1 << (PRECISION_BITS - 1);
    const ptrdiff_t out_stride = (ptrdiff_t)out_width * 3;
    int y = 0;
#if defined(__AVX2__)
    // Two rows at a time: a tap loads four bytes (RGB and the next pixel's first byte, dropped) from each row
    // into one 8-lane product. A row's last pixel may read one byte past it, so `vector_rows` excludes the
    // buffer's last row.
    for (; y + 2 <= vector_rows; y += 2) {
        const unsigned char *a = src + (ptrdiff_t)y * stride, *b = a + stride;
        unsigned char *oa = dst + (ptrdiff_t)y * out_stride, *ob = oa + out_stride;
        for (int xx = 0; xx < out_width; xx++) {
            const int *w = weights + (ptrdiff_t)xx * ksize;
            ptrdiff_t at = (ptrdiff_t)first[xx] * 3;
            __m256i acc = _mm256_set1_epi32(half);
            for (int k = 0; k < count[xx]; k++, at += 3) {
                __m128i v = _mm_unpacklo_epi32(_mm_cvtsi32_si128((int)load32(a + at)),
                                               _mm_cvtsi32_si128((int)load32(b + at)));
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(v), _mm256_set1_epi32(w[k])));
            }
            __m256i c = clip8x8(acc);  // lanes: a.rgbx, b.rgbx
            __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
            packed = _mm_packus_epi16(packed, packed);
            unsigned pa = (unsigned)_mm_cvtsi128_si32(packed), pb = (unsigned)_mm_extract_epi32(packed, 1);
            unsigned char *da = oa + xx * 3, *db = ob + xx * 3;
            if (xx + 1 < out_width) {  // the fourth byte lands where the next pixel is written next
                memcpy(da, &pa, 4);
                memcpy(db, &pb, 4);
            } else {
                memcpy(da, &pa, 3);
                memcpy(db, &pb, 3);
            }
        }
    }
#else
    (void)vector_rows;
#endif
    for (; y < rows; y++) {
        const unsigned char *row = src + (ptrdiff_t)y * stride;
        unsigned char *out = dst + (ptrdiff_t)y * out_stride;
        for (int xx = 0; xx < out_width; xx++) {
            const int *w = weights + (ptrdiff_t)xx * ksize;
            const unsigned char *p = row + (ptrdiff_t)first[xx] * 3;
            int s0 = half, s1 = half, s2 = half;
            for (int k = 0; k < count[xx]; k++, p += 3) {
                s0 += p[0] * w[k];
                s1 += p[1] * w[k];
                s2 += p[2] * w[k];
            }
            out[xx * 3] = clip8(s0);
            out[xx * 3 + 1] = clip8(s1);
            out[xx * 3 + 2] = clip8(s2);
        }
    }
}

void cmass_resample_vertical(const unsigned char *src, ptrdiff_t row_bytes, const int *first, const int *count,
                             const int *weights, int ksize, int out_rows, unsigned char *dst) {
    const int half = 1 << (PRECISION_BITS - 1);
    for (int yy = 0; yy < out_rows; yy++) {
        const int *w = weights + (ptrdiff_t)yy * ksize;
        const unsigned char *base = src + (ptrdiff_t)first[yy] * row_bytes;
        unsigned char *out = dst + (ptrdiff_t)yy * row_bytes;
        ptrdiff_t i = 0;
#if defined(__AVX2__)
        // Every byte of an output row is the same weighted sum of source rows: sixteen bytes at a time.
        for (; i + 16 <= row_bytes; i += 16) {
            __m256i lo = _mm256_set1_epi32(half), hi = lo;
            for (int k = 0; k < count[yy]; k++) {
                __m128i v = _mm_loadu_si128((const __m128i *)(base + (ptrdiff_t)k * row_bytes + i));
                __m256i wk = _mm256_set1_epi32(w[k]);
                lo = _mm256_add_epi32(lo, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(v), wk));
                hi = _mm256_add_epi32(hi, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)), wk));
            }
            __m256i words = _mm256_packus_epi32(clip8x8(lo), clip8x8(hi));  // per 128-bit lane: lo0-3 hi0-3 lo4-7 hi4-7
            words = _mm256_permute4x64_epi64(words, 0xD8);                   // lo0-7 hi0-7
            __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
            _mm_storeu_si128((__m128i *)(out + i), bytes);
        }
#endif
        for (; i < row_bytes; i++) {
            int acc = half;
            for (int k = 0; k < count[yy]; k++) acc += base[(ptrdiff_t)k * row_bytes + i] * w[k];
            out[i] = clip8(acc);
        }
    }
}
