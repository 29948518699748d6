/* The attention heatmap: a title, a grid of per-head panels (rows = queries, columns = keys) on
 * one colour scale, tick numbers on every panel, axis names on the outer panels, a colour bar. */
#include "heatmap.h"

#include <cairo.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FONT    "DejaVu Sans"
#define HALF_PI 1.5707963267948966

enum {
    TITLE_HEIGHT = 84,
    MARGIN_LEFT = 84,
    MARGIN_RIGHT = 24,
    MARGIN_BOTTOM = 16,
    HEAD_LABEL_HEIGHT = 26,
    GAP_X = 58,
    GAP_Y = 62,
    BAR_GAP = 36,
    BAR_WIDTH = 22,
    BAR_AREA = 120,
    TARGET_PANEL = 300, /* pixels across one panel, before rounding to whole cells */
    MAX_GRID_WIDTH = 1500
};

typedef struct layout {
    int cols, rows, cell, panel, width, height;
    double x_shift; /* centres the panels and the bar where the titles widen the image */
    double vmax;    /* the top of the colour scale */
    double largest; /* the largest weight, above vmax when the scale saturates */
} layout;

typedef struct rgb {
    double r, g, b;
} rgb;

/* Viridis, sampled at nine evenly spaced points: perceptually uniform, legible in grey. */
static const rgb viridis[9] = {{0x44, 0x01, 0x54}, {0x48, 0x28, 0x78}, {0x3e, 0x49, 0x89},
                               {0x31, 0x68, 0x8e}, {0x26, 0x82, 0x8e}, {0x1f, 0x9e, 0x89},
                               {0x35, 0xb7, 0x79}, {0x6e, 0xce, 0x58}, {0xfd, 0xe7, 0x25}};

static rgb colour_at(double t) { /* t in [0, 1], components in [0, 255] */
    t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
    double x = t * 8.0;
    int i = x >= 8.0 ? 7 : (int)x;
    double f = x - i;
    rgb a = viridis[i], b = viridis[i + 1];
    return (rgb){a.r + f * (b.r - a.r), a.g + f * (b.g - a.g), a.b + f * (b.b - a.b)};
}

static uint32_t argb_pixel(rgb c) {
    return 0xff000000u | (uint32_t)lround(c.r) << 16 | (uint32_t)lround(c.g) << 8 |
           (uint32_t)lround(c.b);
}

/* 1, 2 or 5 times a power of ten, the smallest such step that is at least raw. */
static double nice_step(double raw) {
    double power = pow(10.0, floor(log10(raw)));
    double m = raw / power;
    return (m <= 1.0 ? 1.0 : m <= 2.0 ? 2.0 : m <= 5.0 ? 5.0 : 10.0) * power;
}

static int compare_floats(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The largest finite weight, and the one at fraction q of them in ascending order. */
static int weight_quantile(const heatmap_figure *fig, double q, double *at_q, double *largest) {
    size_t n = (size_t)fig->n_heads * fig->n_query * fig->n_keys, kept = 0;
    float *sorted = malloc(n * sizeof(float));
    if (!sorted) return -1;
    for (size_t i = 0; i < n; i++)
        if (isfinite(fig->weights[i])) sorted[kept++] = fig->weights[i];
    qsort(sorted, kept, sizeof(float), compare_floats);
    *at_q = kept ? sorted[(size_t)(q * (kept - 1))] : 0.0;
    *largest = kept ? sorted[kept - 1] : 0.0;
    free(sorted);
    return 0;
}

/* A few weights (the depot's column, say) would take the whole scale and leave the rest dark:
 * the scale stops at a round number above the 99th percentile, and brighter cells saturate. */
static int colour_scale(const heatmap_figure *fig, layout *l) {
    double p99, largest;
    if (weight_quantile(fig, 0.99, &p99, &largest) != 0) return -1;
    double step = nice_step(p99 > 0.0 ? p99 / 5.0 : 0.2);
    l->vmax = ceil(p99 / step - 1e-9) * step;
    if (l->vmax <= 0.0) l->vmax = 1.0;
    l->largest = largest;
    return 0;
}

static int make_layout(const heatmap_figure *fig, layout *layout_out) {
    layout l = {0};
    l.rows = (int)floor(sqrt((double)fig->n_heads));
    l.cols = (fig->n_heads + l.rows - 1) / l.rows;
    int target = MAX_GRID_WIDTH / l.cols - GAP_X;
    target = target > TARGET_PANEL ? TARGET_PANEL : target < 96 ? 96 : target;
    int longest = fig->n_query > fig->n_keys ? fig->n_query : fig->n_keys;
    l.cell = target / longest < 1 ? 1 : target / longest;
    l.panel = l.cell * longest;
    l.width =
        MARGIN_LEFT + l.cols * l.panel + (l.cols - 1) * GAP_X + BAR_GAP + BAR_AREA + MARGIN_RIGHT;
    l.height = TITLE_HEIGHT + l.rows * (HEAD_LABEL_HEIGHT + l.panel + GAP_Y) + MARGIN_BOTTOM;
    *layout_out = l;
    return colour_scale(fig, layout_out);
}

static double panel_x(const layout *l, int head) {
    return l->x_shift + MARGIN_LEFT + (head % l->cols) * (l->panel + GAP_X);
}

static double panel_y(const layout *l, int head) {
    return TITLE_HEIGHT + HEAD_LABEL_HEIGHT +
           (head / l->cols) * (l->panel + HEAD_LABEL_HEIGHT + GAP_Y);
}

/* Text with its anchor at (x, y): ax, ay 0 = left/top, 0.5 = centre, 1 = right/bottom. */
static void draw_text(cairo_t *cr, double x, double y, double ax, double ay, const char *text) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, text, &e);
    cairo_move_to(cr, x - e.x_bearing - ax * e.width, y - e.y_bearing - ay * e.height);
    cairo_show_text(cr, text);
}

static void set_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static void set_grey(cairo_t *cr, double level) {
    cairo_set_source_rgb(cr, level, level, level);
}

/* One head's map as an image, one pixel per cell, then scaled up without smoothing. */
static cairo_status_t draw_map(cairo_t *cr, const heatmap_figure *fig, const layout *l, int head,
                               double x0, double y0) {
    cairo_surface_t *image =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, fig->n_keys, fig->n_query);
    cairo_status_t status = cairo_surface_status(image);
    if (status != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(image);
        return status;
    }
    cairo_surface_flush(image);
    unsigned char *data = cairo_image_surface_get_data(image);
    int stride = cairo_image_surface_get_stride(image);
    const float *w = fig->weights + (size_t)head * fig->n_query * fig->n_keys;
    for (int i = 0; i < fig->n_query; i++) {
        uint32_t *row = (uint32_t *)(data + (size_t)i * stride);
        for (int j = 0; j < fig->n_keys; j++)
            row[j] = argb_pixel(colour_at(w[(size_t)i * fig->n_keys + j] / l->vmax));
    }
    cairo_surface_mark_dirty(image);
    cairo_save(cr);
    cairo_translate(cr, x0, y0);
    cairo_scale(cr, l->cell, l->cell);
    cairo_set_source_surface(cr, image, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(image);
    return CAIRO_STATUS_SUCCESS;
}

static int tick_step(int n) { /* at most about 5 ticks over 0 .. n-1 */
    int step = (int)nice_step(n / 5.0 > 1.0 ? n / 5.0 : 1.0);
    return step < 1 ? 1 : step;
}

/* Tick marks and numbers at cell centres along the bottom (keys) and the left (queries). */
static void draw_ticks(cairo_t *cr, const layout *l, int n_query, int n_keys, double x0,
                       double y0) {
    char label[16];
    set_font(cr, 11, 0);
    set_grey(cr, 0.25);
    cairo_set_line_width(cr, 1.0);
    for (int j = 0; j < n_keys; j += tick_step(n_keys)) {
        double x = x0 + (j + 0.5) * l->cell;
        cairo_move_to(cr, x, y0 + l->panel), cairo_line_to(cr, x, y0 + l->panel + 5);
        snprintf(label, sizeof label, "%d", j);
        draw_text(cr, x, y0 + l->panel + 8, 0.5, 0.0, label);
    }
    for (int i = 0; i < n_query; i += tick_step(n_query)) {
        double y = y0 + (i + 0.5) * l->cell;
        cairo_move_to(cr, x0, y), cairo_line_to(cr, x0 - 5, y);
        snprintf(label, sizeof label, "%d", i);
        draw_text(cr, x0 - 8, y, 1.0, 0.5, label);
    }
    cairo_stroke(cr);
}

static void draw_rotated_label(cairo_t *cr, double x, double y, const char *text) {
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -HALF_PI);
    draw_text(cr, 0, 0, 0.5, 0.5, text);
    cairo_restore(cr);
}

static cairo_status_t draw_panel(cairo_t *cr, const heatmap_figure *fig, const layout *l,
                                 int head) {
    double x0 = panel_x(l, head), y0 = panel_y(l, head);
    cairo_status_t status = draw_map(cr, fig, l, head, x0, y0);
    if (status != CAIRO_STATUS_SUCCESS) return status;
    set_grey(cr, 0.35);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, x0 - 0.5, y0 - 0.5, l->panel + 1, l->panel + 1);
    cairo_stroke(cr);
    char name[32];
    snprintf(name, sizeof name, "head %d", head);
    set_font(cr, 14, 1);
    set_grey(cr, 0.12);
    draw_text(cr, x0 + l->panel / 2.0, y0 - 8, 0.5, 1.0, name);
    draw_ticks(cr, l, fig->n_query, fig->n_keys, x0, y0);
    set_font(cr, 13, 0);
    set_grey(cr, 0.12);
    int last_row = head / l->cols == l->rows - 1 || head + l->cols >= fig->n_heads;
    if (last_row) draw_text(cr, x0 + l->panel / 2.0, y0 + l->panel + 28, 0.5, 0.0, fig->x_label);
    if (head % l->cols == 0) draw_rotated_label(cr, x0 - 52, y0 + l->panel / 2.0, fig->y_label);
    return cairo_status(cr);
}

/* The colour bar beside the grid, as tall as one panel row, with round-numbered ticks. */
static cairo_status_t draw_colour_bar(cairo_t *cr, const layout *l) {
    double x0 = l->x_shift + MARGIN_LEFT + l->cols * l->panel + (l->cols - 1) * GAP_X + BAR_GAP;
    double y0 = TITLE_HEIGHT + HEAD_LABEL_HEIGHT, height = l->panel;
    cairo_pattern_t *gradient = cairo_pattern_create_linear(0, y0 + height, 0, y0);
    for (int i = 0; i <= 32; i++) {
        rgb c = colour_at(i / 32.0);
        cairo_pattern_add_color_stop_rgb(gradient, i / 32.0, c.r / 255, c.g / 255, c.b / 255);
    }
    cairo_rectangle(cr, x0, y0, BAR_WIDTH, height);
    cairo_set_source(cr, gradient);
    cairo_fill(cr);
    cairo_pattern_destroy(gradient);
    set_grey(cr, 0.35);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, x0 - 0.5, y0 - 0.5, BAR_WIDTH + 1, height + 1);
    cairo_stroke(cr);

    double step = nice_step(l->vmax / 5.0);
    int decimals = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    int saturates = l->largest > l->vmax;
    char label[32];
    set_font(cr, 11, 0);
    set_grey(cr, 0.25);
    for (int k = 0; k * step <= l->vmax * (1 + 1e-9); k++) {
        double y = y0 + height - k * step / l->vmax * height;
        int top = (k + 1) * step > l->vmax * (1 + 1e-9);
        cairo_move_to(cr, x0 + BAR_WIDTH, y), cairo_line_to(cr, x0 + BAR_WIDTH + 5, y);
        snprintf(label, sizeof label, "%s%.*f", top && saturates ? "\xe2\x89\xa5 " : "", decimals,
                 k * step);
        draw_text(cr, x0 + BAR_WIDTH + 8, y, 0.0, 0.5, label);
    }
    if (saturates) { /* where the scale stops short of the data, the largest value is named */
        snprintf(label, sizeof label, "max %.*f", decimals + 1, l->largest);
        draw_text(cr, x0, y0 + height + 10, 0.0, 0.0, label);
    }
    cairo_stroke(cr);
    set_font(cr, 13, 0);
    set_grey(cr, 0.12);
    draw_rotated_label(cr, x0 + BAR_WIDTH + 76, y0 + height / 2, "attention weight");
    return cairo_status(cr);
}

static void use_title_font(cairo_t *cr) {
    set_grey(cr, 0.08);
    set_font(cr, 21, 1);
}

static void use_subtitle_font(cairo_t *cr) {
    set_grey(cr, 0.3);
    set_font(cr, 14, 0);
}

static void draw_titles(cairo_t *cr, const heatmap_figure *fig, const layout *l) {
    use_title_font(cr);
    draw_text(cr, l->width / 2.0, 18, 0.5, 0.0, fig->title);
    use_subtitle_font(cr);
    draw_text(cr, l->width / 2.0, 52, 0.5, 0.0, fig->subtitle);
}

/* The wider of the two title lines, measured on a scratch surface (0 if cairo fails there: the
 * real surface then reports the failure). */
static double titles_width(const heatmap_figure *fig) {
    cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *cr = cairo_create(scratch);
    cairo_text_extents_t title, subtitle;
    use_title_font(cr);
    cairo_text_extents(cr, fig->title, &title);
    use_subtitle_font(cr);
    cairo_text_extents(cr, fig->subtitle, &subtitle);
    double width =
        cairo_status(cr) == CAIRO_STATUS_SUCCESS
            ? (title.x_advance > subtitle.x_advance ? title.x_advance : subtitle.x_advance)
            : 0.0;
    cairo_destroy(cr);
    cairo_surface_destroy(scratch);
    return width;
}

static cairo_status_t draw_figure(cairo_t *cr, const heatmap_figure *fig, const layout *l) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    draw_titles(cr, fig, l);
    for (int head = 0; head < fig->n_heads; head++) {
        cairo_status_t status = draw_panel(cr, fig, l, head);
        if (status != CAIRO_STATUS_SUCCESS) return status;
    }
    return draw_colour_bar(cr, l);
}

int heatmap_write_png(const heatmap_figure *fig, const char *path, char *error, size_t error_size) {
    layout l;
    if (make_layout(fig, &l) != 0) {
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    int text_width = (int)ceil(2 * MARGIN_RIGHT + titles_width(fig));
    if (l.width < text_width) l.x_shift = (text_width - l.width) / 2.0, l.width = text_width;
    cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, l.width, l.height);
    cairo_t *cr = cairo_create(surface);
    cairo_status_t status = cairo_status(cr);
    if (status == CAIRO_STATUS_SUCCESS) status = draw_figure(cr, fig, &l);
    cairo_destroy(cr);
    if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_write_to_png(surface, path);
    cairo_surface_destroy(surface);
    if (status == CAIRO_STATUS_SUCCESS) return 0;
    snprintf(error, error_size, "%s", cairo_status_to_string(status));
    return -1;
}
