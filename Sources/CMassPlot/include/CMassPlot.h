#ifndef CMASSPLOT_H
#define CMASSPLOT_H

#include <stddef.h>

/// Renders an SVG document to a PNG (librsvg draws it on a cairo image surface of the document's size times
/// `scale`, on its own background: the document should paint one). On success returns 0 and sets `*png` (free
/// it with `mass_plot_free`) and `*png_length`; on failure returns -1 and writes librsvg's or cairo's message to
/// `error` (at most `error_capacity` bytes, NUL-terminated).
int mass_plot_svg_to_png(const char *svg, size_t svg_length, double scale, unsigned char **png, size_t *png_length,
                         char *error, size_t error_capacity);

void mass_plot_free(void *pointer);

#endif
