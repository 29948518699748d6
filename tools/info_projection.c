/* The projection the module built, in words and numbers, set beside the one planned: a built
 * projection unlike its plan line is a fallback tile (or CLBlast missing from the build). */
#include "info_projection.h"

#include "info_kernels.h"
#include "info_words.h"

#include <stdio.h>
#include <string.h>

/* The choice as a tuning line writes it ("tiled 128 128 16 8 8"). */
static void projection_line(const mhfa_projection_choice *p, char *text, size_t size) {
    const mhfa_tiled_tile *t = &p->tiled;
    const mhfa_mma_tile *w = &p->mma;
    const char *name = projection_variant_name(p->variant);
    if (p->variant == MHFA_PROJECT_TILED)
        snprintf(text, size, "%s %d %d %d %d %d", name, t->tile_m, t->tile_n, t->tile_k, t->wpt_m,
                 t->wpt_n);
    else if (p->variant == MHFA_PROJECT_MMA)
        snprintf(text, size, "%s %d %d %d %d %d", name, w->tile_k, w->warps_m, w->warps_n, w->wm,
                 w->wn);
    else if (p->variant == MHFA_PROJECT_VECTOR)
        snprintf(text, size, "%s %d %d", name, p->vector.rows_per_item, p->vector.vectors);
    else
        snprintf(text, size, "%s", name);
}

static void describe_tiled_projection(const mhfa_module *m, const mhfa_tiled_tile *t,
                                      info_choice *c) {
    int runs = kernel_define(m->ctx, m->kernels.project_to_heads, "VECTOR_RUNS") == 1;
    choice_add_words(c,
                     "project_tiled.cl: %dx%d tiles in local memory, %d deep, %dx%d outputs per "
                     "work-item%s",
                     t->tile_m, t->tile_n, t->tile_k, t->wpt_m, t->wpt_n,
                     runs ? ", 16-byte runs" : "");
    choice_add_number(c, "tile_m", t->tile_m);
    choice_add_number(c, "tile_n", t->tile_n);
    choice_add_number(c, "tile_k", t->tile_k);
    choice_add_number(c, "wpt_m", t->wpt_m);
    choice_add_number(c, "wpt_n", t->wpt_n);
    choice_add_number(c, "vector_runs", runs);
}

static void describe_mma_projection(const mhfa_module *m, const mhfa_mma_tile *t, info_choice *c) {
    const char *products = mhfa_has_ptx_mma(m->ctx) ? "PTX mma.sync" : "emulated in local memory";
    const int half = m->cfg.dtype != MHFA_FLOAT32;
    choice_add_words(
        c,
        "project_mma.cl: %s tensor-core products (%s), %dx%d warps of %dx%d outputs, %d "
        "deep",
        half ? "half-operand" : "3xTF32", products, t->warps_m, t->warps_n, t->wm, t->wn,
        t->tile_k);
    choice_add_number(c, "tile_k", t->tile_k);
    choice_add_number(c, "warps_m", t->warps_m);
    choice_add_number(c, "warps_n", t->warps_n);
    choice_add_number(c, "wm", t->wm);
    choice_add_number(c, "wn", t->wn);
    choice_add_parameter(c, "products", products, 0);
}

static void describe_vector_projection(const mhfa_module *m, const mhfa_vector_tile *t,
                                       info_choice *c) {
    const mhfa_kernels *k = &m->kernels;
    choice_add_words(
        c,
        "project_vector.cl: float16 register blocks, %zu rows x %zu columns per work-item, "
        "%zu work-items a group",
        k->projection_tile[1], k->projection_tile[0], k->projection_local[1]);
    choice_add_number(c, "rows_per_item", t->rows_per_item);
    choice_add_number(c, "vectors", t->vectors);
    choice_add_number(c, "group_items", (long)k->projection_local[1]);
}

void describe_projection(const mhfa_module *m, const plan_origins *o, info_choice *c) {
    const mhfa_projection_choice *planned = &m->plan.projection;
    mhfa_projection_choice built = built_projection(m);
    built.source = planned->source; /* compared below by size, not by where it came from */
    snprintf(c->kind, sizeof c->kind, "%s", projection_variant_name(built.variant));
    if (built.variant == MHFA_PROJECT_CLBLAST)
        choice_add_words(c, "CLBlast's SGEMM, layout.cl moving its rows to heads");
    else if (built.variant == MHFA_PROJECT_VECTOR)
        describe_vector_projection(m, &built.vector, c);
    else if (built.variant == MHFA_PROJECT_MMA)
        describe_mma_projection(m, &built.mma, c);
    else
        describe_tiled_projection(m, &built.tiled, c);
    char line[64];
    projection_line(planned, line, sizeof line);
    /* The choices hold ints only (no padding): memcmp compares them whole. */
    if (memcmp(&built, planned, sizeof built) == 0)
        choice_set_origin(c, o->projection);
    else if (planned->variant == MHFA_PROJECT_CLBLAST && !mhfa_clblast_available())
        choice_set_fallback(c, o->projection, line, "is not in this build");
    else
        choice_set_fallback(c, o->projection, line, "did not fit");
}
