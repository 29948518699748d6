/* mhfa-run --heatmap: one PNG with a grid of attention maps, one panel per head, drawn with
 * cairo. Only built where cairo is found (MHFA_HAVE_CAIRO). */
#ifndef MHFA_TOOLS_HEATMAP_H
#define MHFA_TOOLS_HEATMAP_H

#include <stddef.h>

typedef struct heatmap_figure {
    const float *weights; /* [n_heads][n_query][n_keys], each row a softmax */
    int n_heads, n_query, n_keys;
    const char *title, *subtitle;
    const char *x_label, *y_label; /* the key axis (columns), the query axis (rows) */
} heatmap_figure;

/* Writes the figure to path. Returns 0, or -1 with the reason in error (error_size bytes). */
int heatmap_write_png(const heatmap_figure *fig, const char *path, char *error, size_t error_size);

#endif
