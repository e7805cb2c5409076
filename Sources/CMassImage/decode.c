// PNG (libpng) and JPEG (libjpeg-turbo) decoding to 8-bit RGB. Both libraries report errors by longjmp, so
// they are driven from C; Swift sees only the functions of CMassImage.h.
#include "CMassImage.h"

#include <stdio.h>  // before jpeglib.h, which uses FILE

#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

void cmass_image_free(cmass_image *image) {
    free(image->pixels);
    image->pixels = NULL;
}

static int too_large(cmass_image *out, long long w, long long h, long long max_pixels) {
    if (w <= 0 || h <= 0) {
        snprintf(out->error, sizeof out->error, "the image has no pixels (%lldx%lld)", w, h);
        return 1;
    }
    if (w * h > max_pixels) {
        snprintf(out->error, sizeof out->error,
                 "the image is %lldx%lld = %lld pixels, over the limit of %lld", w, h, w * h, max_pixels);
        return 1;
    }
    return 0;
}

// MARK: PNG

typedef struct {
    const unsigned char *data;
    size_t size, position;
} png_source;

static void png_read_memory(png_structp png, png_bytep target, png_size_t length) {
    png_source *source = (png_source *)png_get_io_ptr(png);
    if (length > source->size - source->position) png_error(png, "the file is truncated");
    memcpy(target, source->data + source->position, length);
    source->position += length;
}

static void png_fail(png_structp png, png_const_charp message) {
    cmass_image *out = (cmass_image *)png_get_error_ptr(png);
    snprintf(out->error, sizeof out->error, "PNG: %s", message);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp message) { (void)png, (void)message; }

int cmass_decode_png(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out) {
    if (cmass_decode_png_direct(data, size, max_pixels, out)) return 0;
    return cmass_decode_png_libpng(data, size, max_pixels, out);
}

int cmass_decode_png_libpng(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out) {
    memset(out, 0, sizeof *out);
    out->orientation = 1;
    png_source source = {data, size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, out, png_fail, png_warn);
    if (!png) {
        snprintf(out->error, sizeof out->error, "PNG: out of memory");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    png_bytep *rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        free(rows);
        cmass_image_free(out);
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        if (!out->error[0]) snprintf(out->error, sizeof out->error, "PNG: cannot decode");
        return -1;
    }
    png_set_read_fn(png, &source, png_read_memory);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if (too_large(out, width, height, max_pixels)) png_longjmp(png, 1);
    int color = png_get_color_type(png, info);
    if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)width * 3) png_error(png, "unexpected row layout after conversion");
    out->pixels = malloc((size_t)width * height * 3);
    rows = malloc(sizeof(png_bytep) * height);
    if (!out->pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = out->pixels + (size_t)y * width * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = out->full_width = (int)width;
    out->height = out->full_height = (int)height;
    return 0;
}

// MARK: JPEG

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    cmass_image *out;
    int warned;
} jpeg_failure;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    char message[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, message);
    snprintf(failure->out->error, sizeof failure->out->error, "JPEG: %s", message);
    longjmp(failure->jump, 1);
}

/// libjpeg reports corrupt or truncated data as warnings and goes on with grey; Mass refuses such files, so
/// the first warning is kept and turned into an error once decoding stops.
static void jpeg_warning(j_common_ptr cinfo, int level) {
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    if (level >= 0 || failure->warned) return;
    char message[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, message);
    snprintf(failure->out->error, sizeof failure->out->error, "JPEG: corrupt or truncated data (%s)", message);
    failure->warned = 1;
}

/// The orientation tag (0x0112) of an APP1 "Exif" segment; 1 when absent or unreadable.
static int exif_orientation(const unsigned char *p, unsigned length) {
    if (length < 14 || memcmp(p, "Exif\0\0", 6) != 0) return 1;
    const unsigned char *tiff = p + 6;
    unsigned size = length - 6;
    int little = tiff[0] == 'I' && tiff[1] == 'I';
    if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
#define U16(q) (little ? (unsigned)((q)[0] | (q)[1] << 8) : (unsigned)((q)[0] << 8 | (q)[1]))
#define U32(q) (little ? ((unsigned)(q)[0] | (unsigned)(q)[1] << 8 | (unsigned)(q)[2] << 16 | (unsigned)(q)[3] << 24) \
                       : ((unsigned)(q)[0] << 24 | (unsigned)(q)[1] << 16 | (unsigned)(q)[2] << 8 | (unsigned)(q)[3]))
    unsigned ifd = U32(tiff + 4);
    if (ifd > size - 2) return 1;
    unsigned entries = U16(tiff + ifd);
    for (unsigned i = 0; i < entries; i++) {
        unsigned at = ifd + 2 + i * 12;
        if (at + 12 > size) return 1;
        if (U16(tiff + at) == 0x0112) {
            unsigned value = U16(tiff + at + 8);
            return value >= 1 && value <= 8 ? (int)value : 1;
        }
    }
#undef U16
#undef U32
    return 1;
}

/// Reads the header (and the EXIF orientation) of a JPEG; with `region`, decodes only the pixels from
/// (`left`, `top`) on, `width`×`height` of them (widened to the left to an iMCU boundary: `out->left` says where
/// the decoded part starts), skipping the other rows and columns. The rows below still go through the entropy
/// decoder, so a truncated or corrupt file is refused as a whole decode would refuse it.
static int decode_jpeg(const unsigned char *data, size_t size, long long max_pixels, int pixels, int left, int top,
                       int width, int height, cmass_image *out) {
    memset(out, 0, sizeof *out);
    out->orientation = 1;
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    cinfo.err = jpeg_std_error(&failure.base);
    failure.base.error_exit = jpeg_fail;
    failure.base.emit_message = jpeg_warning;
    failure.out = out;
    failure.warned = 0;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&cinfo);
        cmass_image_free(out);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    if (too_large(out, cinfo.image_width, cinfo.image_height, max_pixels)) longjmp(failure.jump, 1);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        snprintf(out->error, sizeof out->error, "JPEG: CMYK images are not supported");
        longjmp(failure.jump, 1);
    }
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1) out->orientation = exif_orientation(m->data, m->data_length);
    }
    out->full_width = (int)cinfo.image_width;
    out->full_height = (int)cinfo.image_height;
    if (!pixels) {
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        snprintf(out->error, sizeof out->error, "JPEG: %d output components", cinfo.output_components);
        longjmp(failure.jump, 1);
    }
    JDIMENSION full_w = cinfo.output_width, full_h = cinfo.output_height;
    if (width <= 0 || height <= 0 || left < 0 || top < 0 || (JDIMENSION)left + width > full_w ||
        (JDIMENSION)top + height > full_h) {
        left = top = 0;
        width = (int)full_w;
        height = (int)full_h;
    }
    if ((JDIMENSION)width < full_w) {
        JDIMENSION x = (JDIMENSION)left, w = (JDIMENSION)width;
        jpeg_crop_scanline(&cinfo, &x, &w);
        left = (int)x;
        width = (int)cinfo.output_width;
    }
    size_t stride = (size_t)width * 3;
    out->pixels = malloc(stride * height);
    if (!out->pixels) {
        snprintf(out->error, sizeof out->error, "JPEG: out of memory");
        longjmp(failure.jump, 1);
    }
    if (top > 0) jpeg_skip_scanlines(&cinfo, (JDIMENSION)top);
    while (cinfo.output_scanline < (JDIMENSION)(top + height)) {
        JSAMPROW row = out->pixels + stride * (cinfo.output_scanline - top);
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (failure.warned) longjmp(failure.jump, 1);
    }
    if (cinfo.output_scanline < full_h) jpeg_skip_scanlines(&cinfo, full_h - cinfo.output_scanline);
    out->left = left;
    out->top = top;
    out->width = width;
    out->height = height;
    jpeg_finish_decompress(&cinfo);
    if (failure.warned) longjmp(failure.jump, 1);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int cmass_decode_jpeg(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out) {
    return decode_jpeg(data, size, max_pixels, 1, 0, 0, 0, 0, out);
}

int cmass_jpeg_header(const unsigned char *data, size_t size, long long max_pixels, cmass_image *out) {
    return decode_jpeg(data, size, max_pixels, 0, 0, 0, 0, 0, out);
}

int cmass_decode_jpeg_region(const unsigned char *data, size_t size, long long max_pixels, int left, int top,
                             int width, int height, cmass_image *out) {
    return decode_jpeg(data, size, max_pixels, 1, left, top, width, height, out);
}
