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
    /// EXIF orientation (1-8) found in a JPEG's APP1 segment; 1 when absent.
    int orientation;
    /// Why decoding failed (empty on success).
    char error[256];
} cmass_image;

/// Each returns 0 on success, -1 with `out->error` set otherwise. Images with more than `max_pixels` pixels
/// are refused from their header, before any pixel is decoded.
int cmass_decode_png(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out);
int cmass_decode_jpeg(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out);
void cmass_image_free(cmass_image *image);

#ifdef __cplusplus
}
#endif
#endif
