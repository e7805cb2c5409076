// A direct decoder for the PNGs most files are: 8-bit RGB or RGBA, not interlaced. libdeflate inflates the
// image data in one call (two to three times zlib's speed) and the rows are unfiltered here with SSE, then the
// alpha is dropped as libpng's strip_alpha does. Anything else, and any irregularity (a CRC or zlib error, a
// missing IEND, a palette, a stream of the wrong length), is left to libpng, which decodes it or names the
// problem: a file this path takes gives libpng's bytes (tested), and a file it refuses gets libpng's error.
#include "CMassImage.h"

#include <libdeflate.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE4_1__)
#include <immintrin.h>
#endif

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/// A chunk whose CRC (over type and data) matches.
static int crc_ok(const unsigned char *chunk, uint32_t length) {
    return libdeflate_crc32(0, chunk + 4, (size_t)length + 4) == be32(chunk + 8 + length);
}

#if !defined(__SSE4_1__)
static inline int paeth(int a, int b, int c) {
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}
#endif

#if defined(__SSE4_1__)
__attribute__((always_inline)) static inline __m128i load_pixel(const unsigned char *p, int bpp) {
    uint32_t v = 0;
    memcpy(&v, p, (size_t)bpp);
    return _mm_cvtsi32_si128((int)v);
}

__attribute__((always_inline)) static inline void store_pixel(unsigned char *p, __m128i v, int bpp) {
    uint32_t x = (uint32_t)_mm_cvtsi128_si32(v);
    memcpy(p, &x, (size_t)bpp);
}
#endif

/// Undoes one row's filter in place; `prior` is the previous row's unfiltered bytes (zeros for the first).
/// Returns 0 for an unknown filter type. Inlined with a constant `bpp`, so that pixel loads and stores are
/// single moves rather than calls to memcpy.
__attribute__((always_inline)) static inline int unfilter(int type, unsigned char *row, const unsigned char *prior, size_t length, int bpp) {
    switch (type) {
    case 0: return 1;
    case 1:
        for (size_t i = (size_t)bpp; i < length; i++) row[i] = (unsigned char)(row[i] + row[i - bpp]);
        return 1;
    case 2:
        for (size_t i = 0; i < length; i++) row[i] = (unsigned char)(row[i] + prior[i]);
        return 1;
    case 3: {
#if defined(__SSE4_1__)
        __m128i a = _mm_setzero_si128(), zero = _mm_setzero_si128();
        for (size_t i = 0; i < length; i += (size_t)bpp) {
            __m128i b = _mm_unpacklo_epi8(load_pixel(prior + i, bpp), zero);
            __m128i x = load_pixel(row + i, bpp);
            __m128i avg = _mm_srli_epi16(_mm_add_epi16(a, b), 1);
            x = _mm_add_epi8(x, _mm_packus_epi16(avg, avg));
            store_pixel(row + i, x, bpp);
            a = _mm_unpacklo_epi8(x, zero);
        }
#else
        for (size_t i = 0; i < length; i++) {
            int left = i >= (size_t)bpp ? row[i - bpp] : 0;
            row[i] = (unsigned char)(row[i] + ((left + prior[i]) >> 1));
        }
#endif
        return 1;
    }
    case 4: {
#if defined(__SSE4_1__)
        // One pixel per step in 16-bit lanes (libpng's approach): the predictor is the neighbour closest to
        // a + b - c, ties going to a, then b.
        __m128i a = _mm_setzero_si128(), c = _mm_setzero_si128(), zero = _mm_setzero_si128();
        for (size_t i = 0; i < length; i += (size_t)bpp) {
            __m128i b = _mm_unpacklo_epi8(load_pixel(prior + i, bpp), zero);
            __m128i x = load_pixel(row + i, bpp);
            __m128i p = _mm_sub_epi16(b, c), q = _mm_sub_epi16(a, c);
            __m128i pa = _mm_abs_epi16(p), pb = _mm_abs_epi16(q), pc = _mm_abs_epi16(_mm_add_epi16(p, q));
            __m128i smallest = _mm_min_epi16(pc, _mm_min_epi16(pa, pb));
            __m128i nearest = _mm_blendv_epi8(c, b, _mm_cmpeq_epi16(pb, smallest));
            nearest = _mm_blendv_epi8(nearest, a, _mm_cmpeq_epi16(pa, smallest));
            x = _mm_add_epi8(x, _mm_packus_epi16(nearest, nearest));
            store_pixel(row + i, x, bpp);
            a = _mm_unpacklo_epi8(x, zero);
            c = b;
        }
#else
        for (size_t i = 0; i < length; i++) {
            int left = i >= (size_t)bpp ? row[i - bpp] : 0, upleft = i >= (size_t)bpp ? prior[i - bpp] : 0;
            row[i] = (unsigned char)(row[i] + paeth(left, prior[i], upleft));
        }
#endif
        return 1;
    }
    default: return 0;
    }
}

int cmass_decode_png_direct(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out) {
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    memset(out, 0, sizeof *out);
    out->orientation = 1;
    if (size < 8 + 25 || memcmp(data, signature, 8) != 0) return 0;
    const unsigned char *ihdr = data + 8;
    if (be32(ihdr) != 13 || memcmp(ihdr + 4, "IHDR", 4) != 0 || !crc_ok(ihdr, 13)) return 0;
    uint32_t width = be32(ihdr + 8), height = be32(ihdr + 12);
    int depth = ihdr[16], color = ihdr[17];
    if (depth != 8 || (color != 2 && color != 6) || ihdr[18] != 0 || ihdr[19] != 0 || ihdr[20] != 0) return 0;
    if (width == 0 || height == 0 || width > 0x7FFFFFFF || height > 0x7FFFFFFF ||
        (long long)width * height > max_pixels)
        return 0;  // libpng names the problem
    int bpp = color == 2 ? 3 : 4;
    size_t stride = (size_t)width * bpp, expected = (size_t)height * (stride + 1);
    // The chunks: consecutive IDATs, then IEND; no other critical chunk.
    size_t at = 8 + 25, idat_first = 0, idat_total = 0, idat_count = 0;
    int idat_done = 0, ended = 0;
    while (at + 12 <= size) {
        uint32_t length = be32(data + at);
        const unsigned char *type = data + at + 4;
        if (length > size - at - 12) return 0;
        if (memcmp(type, "IDAT", 4) == 0) {
            if (idat_done || !crc_ok(data + at, length)) return 0;
            if (idat_count++ == 0) idat_first = at;
            idat_total += length;
        } else {
            if (idat_count) idat_done = 1;
            if (memcmp(type, "IEND", 4) == 0) {
                ended = length == 0 && crc_ok(data + at, 0);
                break;
            }
            if (!(type[0] & 0x20)) return 0;  // a critical chunk (PLTE, ...): libpng's business
        }
        at += 12 + (size_t)length;
    }
    if (!ended || idat_count == 0) return 0;
    // The compressed stream, gathered when it spans several IDATs.
    unsigned char *joined = NULL, *raw = NULL;
    const unsigned char *stream = data + idat_first + 8;
    if (idat_count > 1) {
        joined = malloc(idat_total);
        if (!joined) return 0;
        size_t filled = 0;
        for (size_t c = idat_first; filled < idat_total; c += 12 + be32(data + c)) {
            uint32_t length = be32(data + c);
            memcpy(joined + filled, data + c + 8, length);
            filled += length;
        }
        stream = joined;
    }
    raw = malloc(expected);
    out->pixels = malloc((size_t)width * height * 3);
    struct libdeflate_decompressor *inflater = libdeflate_alloc_decompressor();
    int ok = raw && out->pixels && inflater;
    size_t used = 0, produced = 0;
    if (ok)
        ok = libdeflate_zlib_decompress_ex(inflater, stream, idat_total, raw, expected, &used, &produced) ==
                 LIBDEFLATE_SUCCESS &&
             produced == expected && used == idat_total;
    if (inflater) libdeflate_free_decompressor(inflater);
    free(joined);
    // Rows: a filter byte, then the filtered pixels.
    const unsigned char *prior = NULL;
    unsigned char *zeros = ok ? calloc(stride, 1) : NULL;
    ok = ok && zeros;
    for (uint32_t y = 0; ok && y < height; y++) {
        unsigned char *row = raw + (size_t)y * (stride + 1);
        const unsigned char *above = prior ? prior : zeros;
        ok = bpp == 3 ? unfilter(row[0], row + 1, above, stride, 3) : unfilter(row[0], row + 1, above, stride, 4);
        prior = row + 1;
        unsigned char *target = out->pixels + (size_t)y * width * 3;
        if (bpp == 3) {
            memcpy(target, row + 1, stride);
        } else {
            for (uint32_t x = 0; x < width; x++) memcpy(target + x * 3, row + 1 + x * 4, 3);
        }
    }
    free(zeros);
    free(raw);
    if (!ok) {
        cmass_image_free(out);
        return 0;
    }
    out->width = out->full_width = (int)width;
    out->height = out->full_height = (int)height;
    return 1;
}
