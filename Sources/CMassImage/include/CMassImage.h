#ifndef CMASS_IMAGE_H
#define CMASS_IMAGE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A decoded image: 8-bit RGB, rows top to bottom, 3 bytes per pixel (grayscale replicated, alpha dropped,
/// palettes expanded, 16-bit samples reduced to their high byte).
typedef struct {
    unsigned char *pixels;
    int width;
    int height;
    /// Where the decoded pixels sit in the whole image (a region decode), and the whole image's size.
    int left, top, full_width, full_height;
    /// EXIF orientation (1-8) found in a JPEG's APP1 segment; 1 when absent.
    int orientation;
    /// Why decoding failed (empty on success).
    char error[256];
} cmass_image;

/// Each returns 0 on success, -1 with `out->error` set otherwise. Images with more than `max_pixels` pixels
/// are refused from their header, before any pixel is decoded.
int cmass_decode_png(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out);
/// libpng alone (`cmass_decode_png` first tries `cmass_decode_png_direct`).
int cmass_decode_png_libpng(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out);
/// 8-bit RGB/RGBA, non-interlaced PNGs through libdeflate: 1 when decoded, 0 (nothing allocated) when the file
/// is left to libpng.
int cmass_decode_png_direct(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out);
int cmass_decode_jpeg(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out);
/// The header only: `full_width`, `full_height` and `orientation`, no pixels.
int cmass_jpeg_header(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out);
/// The pixels from (`left`, `top`), `width`×`height` of them; the left edge may move left to an iMCU boundary
/// (`out->left`, `out->width` say what was decoded). An invalid region decodes the whole image.
int cmass_decode_jpeg_region(const unsigned char *data, size_t size, long long max_pixels, int left, int top,
                             int width, int height, cmass_image *out);
void cmass_image_free(cmass_image *image);

/// Pillow's horizontal resampling pass over `rows` RGB rows of `src` (`stride` bytes apart): output pixel `xx`
/// of a row is the sum of `count[xx]` pixels from pixel `first[xx]` on, weighted by `weights[xx * ksize ...]`
/// (22-bit fixed point), rounded and clamped. The first `vector_rows` rows may be read one byte past their
/// last pixel. `dst` holds `rows` rows of `out_width` pixels.
void cmass_resample_horizontal(const unsigned char *src, ptrdiff_t stride, int rows, int vector_rows,
                               const int *first, const int *count, const int *weights, int ksize, int out_width,
                               unsigned char *dst);
/// Pillow's vertical pass: output row `yy` is the weighted sum of `count[yy]` rows of `src` (`row_bytes` each)
/// from row `first[yy]` on.
void cmass_resample_vertical(const unsigned char *src, ptrdiff_t row_bytes, const int *first, const int *count,
                             const int *weights, int ksize, int out_rows, unsigned char *dst);

#ifdef __cplusplus
}
#endif
#endif
