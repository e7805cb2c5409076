// SVG to PNG through librsvg and cairo (Debian librsvg2-dev): Mass draws its plots once, as SVG, and the PNG is
// that same drawing rasterised, so the two files never disagree.
#include "CMassPlot.h"

#include <cairo.h>
#include <librsvg/rsvg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char *bytes;
    size_t length;
    size_t capacity;
} buffer;

static cairo_status_t append(void *closure, const unsigned char *data, unsigned int length) {
    buffer *b = closure;
    if (b->length + length > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 65536;
        while (capacity < b->length + length) capacity *= 2;
        unsigned char *grown = realloc(b->bytes, capacity);
        if (!grown) return CAIRO_STATUS_NO_MEMORY;
        b->bytes = grown;
        b->capacity = capacity;
    }
    memcpy(b->bytes + b->length, data, length);
    b->length += length;
    return CAIRO_STATUS_SUCCESS;
}

static int fail(char *error, size_t capacity, const char *what, const char *detail) {
    if (capacity) snprintf(error, capacity, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
    return -1;
}

int mass_plot_svg_to_png(const char *svg, size_t svg_length, double scale, unsigned char **png, size_t *png_length,
                         char *error, size_t error_capacity) {
    GError *problem = NULL;
    RsvgHandle *handle = rsvg_handle_new_from_data((const guint8 *)svg, svg_length, &problem);
    if (!handle) {
        int status = fail(error, error_capacity, "the SVG cannot be read", problem ? problem->message : NULL);
        if (problem) g_error_free(problem);
        return status;
    }
    gdouble width = 0, height = 0;
    if (!rsvg_handle_get_intrinsic_size_in_pixels(handle, &width, &height) || width <= 0 || height <= 0) {
        g_object_unref(handle);
        return fail(error, error_capacity, "the SVG has no width and height in pixels", NULL);
    }
    int w = (int)(width * scale + 0.5), h = (int)(height * scale + 0.5);
    cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    cairo_t *cr = cairo_create(surface);
    RsvgRectangle viewport = {0, 0, w, h};
    int status = 0;
    if (!rsvg_handle_render_document(handle, cr, &viewport, &problem)) {
        status = fail(error, error_capacity, "the SVG cannot be drawn", problem ? problem->message : NULL);
        if (problem) g_error_free(problem);
    }
    cairo_destroy(cr);
    g_object_unref(handle);
    buffer out = {0};
    if (status == 0) {
        cairo_status_t written = cairo_surface_write_to_png_stream(surface, append, &out);
        if (written != CAIRO_STATUS_SUCCESS) {
            status = fail(error, error_capacity, "the PNG cannot be written", cairo_status_to_string(written));
            free(out.bytes);
            out.bytes = NULL;
        }
    }
    cairo_surface_destroy(surface);
    *png = out.bytes;
    *png_length = out.length;
    return status;
}

void mass_plot_free(void *pointer) { free(pointer); }
