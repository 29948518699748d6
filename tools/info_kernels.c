/* Reading back a module's kernels: the sizes are the -D options of the program each came from,
 * found in the context's list of built programs. */
#include "info_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The key (sources and -D options) of the program a kernel came from; "" when not found. */
static const char *kernel_build_key(const mhfa_context *ctx, cl_kernel kernel) {
    cl_program program = NULL;
    if (!kernel ||
        clGetKernelInfo(kernel, CL_KERNEL_PROGRAM, sizeof program, &program, NULL) != CL_SUCCESS)
        return "";
    for (const mhfa_program_entry *e = ctx->programs; e; e = e->next)
        if (e->program == program) return e->key;
    return "";
}

int kernel_define(const mhfa_context *ctx, cl_kernel kernel, const char *name) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "-D %s=", name);
    const char *at = strstr(kernel_build_key(ctx, kernel), pattern);
    return at ? atoi(at + strlen(pattern)) : -1;
}

void kernel_function_name(cl_kernel kernel, char *name, size_t size) {
    if (!kernel || clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, size, name, NULL) != CL_SUCCESS)
        snprintf(name, size, "?");
    name[size - 1] = '\0';
}

mhfa_projection_choice built_projection(const mhfa_module *m) {
    const mhfa_context *ctx = m->ctx;
    cl_kernel kernel = m->kernels.project_to_heads;
    mhfa_projection_choice c;
    memset(&c, 0, sizeof c);
    c.variant = m->kernels.projection;
    if (c.variant == MHFA_PROJECT_TILED)
        c.tiled = (mhfa_tiled_tile){
            kernel_define(ctx, kernel, "TILE_M"), kernel_define(ctx, kernel, "TILE_N"),
            kernel_define(ctx, kernel, "TILE_K"), kernel_define(ctx, kernel, "WPT_M"),
            kernel_define(ctx, kernel, "WPT_N")};
    else if (c.variant == MHFA_PROJECT_MMA)
        c.mma = (mhfa_mma_tile){kernel_define(ctx, kernel, "TILE_K"),
                                kernel_define(ctx, kernel, "WARPS_M"),
                                kernel_define(ctx, kernel, "WARPS_N"),
                                kernel_define(ctx, kernel, "WM"), kernel_define(ctx, kernel, "WN")};
    else if (c.variant == MHFA_PROJECT_VECTOR)
        c.vector = (mhfa_vector_tile){kernel_define(ctx, kernel, "ROWS_PER_ITEM"),
                                      kernel_define(ctx, kernel, "VECTORS")};
    return c;
}

mhfa_attention_choice built_attention(const mhfa_module *m, const mhfa_attention_kernel *a) {
    mhfa_attention_choice c;
    memset(&c, 0, sizeof c);
    c.variant = a->variant;
    c.rows = a->rows_layout;
    if (c.variant == MHFA_ATTEND_TILED || c.variant == MHFA_ATTEND_WIDE)
        c.block_q = (int)a->block_q;
    if (c.variant == MHFA_ATTEND_TILED || c.variant == MHFA_ATTEND_VECTOR ||
        c.variant == MHFA_ATTEND_MMA)
        c.block_k = kernel_define(m->ctx, a->kernel, "BLOCK_K");
    if (c.variant == MHFA_ATTEND_MMA) {
        c.warps = kernel_define(m->ctx, a->kernel, "WARPS");
        const int q_tiles = kernel_define(m->ctx, a->kernel, "Q_TILES");
        c.q_tiles = q_tiles > 0 ? q_tiles : 1; /* the float32 kernel's one */
    }
    if (c.variant == MHFA_ATTEND_WIDE) c.tile_keys = kernel_define(m->ctx, a->kernel, "TILE_KEYS");
    return c;
}

/* names[i], or "" past the end or where names holds none (0: no variant chosen). */
static const char *name_at(const char *const *names, size_t count, int i) {
    return i > 0 && (size_t)i < count && names[i] ? names[i] : "";
}

const char *projection_variant_name(mhfa_projection_variant variant) {
    static const char *const names[] = {[MHFA_PROJECT_TILED] = "tiled",
                                        [MHFA_PROJECT_VECTOR] = "vector",
                                        [MHFA_PROJECT_CLBLAST] = "clblast",
                                        [MHFA_PROJECT_MMA] = "mma"};
    return name_at(names, sizeof names / sizeof names[0], (int)variant);
}

const char *attention_variant_name(mhfa_attention_variant variant) {
    static const char *const names[] = {[MHFA_ATTEND_TILED] = "tiled",
                                        [MHFA_ATTEND_VECTOR] = "vector",
                                        [MHFA_ATTEND_MMA] = "mma",
                                        [MHFA_ATTEND_WIDE] = "wide"};
    return name_at(names, sizeof names / sizeof names[0], (int)variant);
}
