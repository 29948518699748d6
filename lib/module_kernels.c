/* Building a module's kernels as its plan (plan.c) names them, for its head_dim. Each kernel is
 * built and kept only if its work-group fits the kernel's real limit (CL_KERNEL_WORK_GROUP_SIZE)
 * and its local memory fits the device; a choice that does not fit gives way to the plan's
 * fallback. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Work-items per group (along rows) of the vector (CPU) projection. */
enum { VECTOR_GROUP_ITEMS = 8 };

/* The projection kernels of source (after mma.cl where with_mma, and for half storage
 * mma_half.cl); with_rows: also project_rows (the tiled and mma kernels). */
static mhfa_kernel_build projection_build(mhfa_module *m, const char *source, int with_mma,
                                          const char *options, int with_rows, size_t group,
                                          size_t local_bytes) {
    mhfa_kernels *k = &m->kernels;
    mhfa_kernel_build b = {{NULL},
                           0,
                           options,
                           {"project_to_heads", "project_to_rows", "project_rows"},
                           {&k->project_to_heads, &k->project_to_rows, &k->project_rows},
                           with_rows ? 3 : 2,
                           group,
                           local_bytes};
    if (with_mma) b.sources[b.n_sources++] = "mma";
    if (with_mma && m->cfg.dtype != MHFA_FLOAT32) b.sources[b.n_sources++] = "mma_half";
    b.sources[b.n_sources++] = "project_common";
    b.sources[b.n_sources++] = source;
    return b;
}

static void set_projection_shape(mhfa_module *m, mhfa_projection_variant variant, size_t local_x,
                                 size_t local_y, size_t tile_n, size_t tile_m) {
    mhfa_kernels *k = &m->kernels;
    k->projection = variant;
    k->projection_local[0] = local_x;
    k->projection_local[1] = local_y;
    k->projection_tile[0] = tile_n;
    k->projection_tile[1] = tile_m;
}

/* The float16 kernel: no local memory, any work-group size. */
static mhfa_status build_vector_projection(mhfa_module *m, const mhfa_vector_tile *t) {
    /* Runs of four x values where a 16-bit type's conversions pay for them (project_vector.cl). */
    const int x_runs =
        m->cfg.dtype != MHFA_FLOAT32 && m->cfg.input_dim % 4 == 0 && m->head_dim % 4 == 0;
    char options[160];
    snprintf(options, sizeof options,
             "%s-D HEAD_DIM=%d -D ROWS_PER_ITEM=%d -D VECTORS=%d -D X_RUNS=%d",
             mhfa_storage_option(m->cfg.dtype), m->head_dim, t->rows_per_item, t->vectors, x_runs);
    mhfa_kernel_build b = projection_build(m, "project_vector", 0, options, 0, 1, 0);
    mhfa_status status = mhfa_build_kernels(m->ctx, b.sources, b.n_sources, options, b.names,
                                            b.kernels, b.n_kernels);
    /* The group is set, not left to the runtime: for long's `vector 16 2` PoCL chose groups of
     * 4096 work-items and overran its thread's stack (it keeps every work-item's arrays). */
    const mhfa_kernels *k = &m->kernels;
    const int fits = status == MHFA_SUCCESS &&
                     mhfa_kernel_fits(m->ctx, k->project_to_heads, VECTOR_GROUP_ITEMS) &&
                     mhfa_kernel_fits(m->ctx, k->project_to_rows, VECTOR_GROUP_ITEMS);
    set_projection_shape(m, MHFA_PROJECT_VECTOR, 1, fits ? VECTOR_GROUP_ITEMS : 1,
                         (size_t)(16 * t->vectors), (size_t)t->rows_per_item);
    return status;
}

/* Whether the projections may read and write runs of 4 floats (project_common.cl): in_features,
 * ld_w, col0 and out_width are input_dim or multiples of embed_dim = n_heads * head_dim. */
static int vector_runs(const mhfa_module *m, int tile_k, int tile_n) {
    return m->cfg.input_dim % 4 == 0 && m->head_dim % 4 == 0 && tile_k % 4 == 0 && tile_n % 4 == 0;
}

/* Builds one tile size; *fits says whether it may be used. */
static mhfa_status try_tiled_projection(mhfa_module *m, const mhfa_tiled_tile *t, int *fits) {
    size_t local_x = (size_t)(t->tile_n / t->wpt_n), local_y = (size_t)(t->tile_m / t->wpt_m);
    /* two slices of x and w_t, the rows' offsets */
    size_t local = 2 * (size_t)t->tile_k * (size_t)(t->tile_m + t->tile_n + 8) * sizeof(float) +
                   (size_t)t->tile_m * sizeof(cl_long);
    char options[256];
    snprintf(options, sizeof options,
             "%s-D HEAD_DIM=%d -D TILE_M=%d -D TILE_N=%d -D TILE_K=%d -D WPT_M=%d -D WPT_N=%d "
             "-D VECTOR_RUNS=%d",
             mhfa_storage_option(m->cfg.dtype), m->head_dim, t->tile_m, t->tile_n, t->tile_k,
             t->wpt_m, t->wpt_n, vector_runs(m, t->tile_k, t->tile_n));
    mhfa_kernel_build b =
        projection_build(m, "project_tiled", 0, options, 1, local_x * local_y, local);
    mhfa_status status = mhfa_build_if_fits(m->ctx, &b, fits);
    if (*fits)
        set_projection_shape(m, MHFA_PROJECT_TILED, local_x, local_y, (size_t)t->tile_n,
                             (size_t)t->tile_m);
    return status;
}

/* mma.cl's MMA_SCRATCH: local floats for its emulation (a 16x8 and an 8x8 operand per warp), 1
 * where PTX runs the products. */
static size_t mma_scratch_floats(const mhfa_context *ctx, size_t warps) {
    return mhfa_has_ptx_mma(ctx) ? 1 : warps * (16 * 8 + 8 * 8);
}

/* Builds the tensor-core kernel for one shape (3xTF32 for float32, half operands for half
 * storage: TILE_K a multiple of 16 either way); *fits says whether it may be used. */
static mhfa_status try_mma_projection(mhfa_module *m, const mhfa_mma_tile *t, int *fits) {
    size_t warps = (size_t)t->warps_m * (size_t)t->warps_n, group = 32 * warps;
    /* no local memory but the emulation's scratch */
    size_t local = sizeof(float) * mma_scratch_floats(m->ctx, warps);
    /* Runs of 4 columns of w_t per lane need N_TILES = WN / 8 a multiple of 4 (project_mma.cl). */
    char options[256];
    snprintf(options, sizeof options,
             "%s-D HEAD_DIM=%d -D TILE_K=%d -D WARPS_M=%d -D WARPS_N=%d -D WM=%d -D WN=%d "
             "-D VECTOR_RUNS=%d",
             mhfa_storage_option(m->cfg.dtype), m->head_dim, t->tile_k, t->warps_m, t->warps_n,
             t->wm, t->wn, vector_runs(m, t->tile_k, t->wn / 8));
    mhfa_kernel_build b = projection_build(m, "project_mma", 1, options, 1, group, local);
    mhfa_status status = mhfa_build_if_fits(m->ctx, &b, fits);
    if (*fits)
        set_projection_shape(m, MHFA_PROJECT_MMA, group, 1, (size_t)(t->warps_n * t->wn),
                             (size_t)(t->warps_m * t->wm));
    return status;
}

/* CLBlast's SGEMM with the kernels that move its rows to and from the per-head layout. */
static mhfa_status build_clblast_projection(mhfa_module *m) {
    static const char *const sources[2] = {"project_common", "layout"};
    static const char *const names[3] = {"rows_to_heads", "heads_to_rows", "add_bias"};
    mhfa_kernels *k = &m->kernels;
    cl_kernel *const kernels[3] = {&k->rows_to_heads, &k->heads_to_rows, &k->add_bias};
    char options[32];
    snprintf(options, sizeof options, "-D HEAD_DIM=%d", m->head_dim);
    k->projection = MHFA_PROJECT_CLBLAST;
    return mhfa_build_kernels(m->ctx, sources, 2, options, names, kernels, 3);
}

static mhfa_status build_projections(mhfa_module *m) {
    const mhfa_projection_choice *c = &m->plan.projection;
    if (c->variant == MHFA_PROJECT_CLBLAST && mhfa_clblast_available())
        return build_clblast_projection(m);
    if (c->variant == MHFA_PROJECT_VECTOR) return build_vector_projection(m, &c->vector);
    int fits = 0;
    mhfa_status status = MHFA_SUCCESS;
    if (c->variant == MHFA_PROJECT_MMA) status = try_mma_projection(m, &c->mma, &fits);
    if (c->variant == MHFA_PROJECT_TILED) status = try_tiled_projection(m, &c->tiled, &fits);
    mhfa_tiled_tile fallback;
    for (size_t i = 0; !fits && status == MHFA_SUCCESS && mhfa_plan_tiled_fallback(i, &fallback);
         i++)
        status = try_tiled_projection(m, &fallback, &fits);
    if (status == MHFA_SUCCESS && !fits)
        status = mhfa_fail(m->ctx, MHFA_ERROR_UNSUPPORTED,
                           "no projection tile size fits the work-group limits of %s",
                           m->ctx->info.device_name);
    return status;
}

/* A kernel of one query per work-item, from row_vectors.cl and source: the flash kernel, or on
 * the manual path its twin with weights. */
static mhfa_status build_query_per_item(mhfa_module *m, const char *source, const char *flash_name,
                                        const char *weights_name, const char *options, size_t group,
                                        size_t local_bytes, mhfa_attention_kernel *out, int *fits) {
    char with_store[200];
    snprintf(with_store, sizeof with_store, "%s -D STORE_WEIGHTS=%d", options,
             m->cfg.store_attn_weights);
    mhfa_kernel_build b = {{"row_vectors", source},
                           2,
                           with_store,
                           {m->cfg.store_attn_weights ? weights_name : flash_name},
                           {&out->kernel},
                           1,
                           group,
                           local_bytes};
    return mhfa_build_if_fits(m->ctx, &b, fits);
}

/* The tiled kernel for one block size; *fits says whether it may be used. */
static mhfa_status try_tiled_attention(mhfa_module *m, int block_q, int block_k,
                                       mhfa_attention_kernel *out, int *fits) {
    *fits = 0;
    if (block_q < 1 || block_k < 1) return MHFA_SUCCESS;
    size_t local = 2 * sizeof(float) * (size_t)block_k * (size_t)m->head_dim;
    if (m->cfg.store_attn_weights) local += sizeof(float) * (size_t)block_q * (size_t)(block_k + 1);
    char options[160];
    snprintf(options, sizeof options,
             "%s-D HEAD_DIM=%d -D BLOCK_Q=%d -D BLOCK_K=%d -D ROWS_LAYOUT=%d",
             mhfa_storage_option(m->cfg.dtype), m->head_dim, block_q, block_k, out->rows_layout);
    mhfa_status status = build_query_per_item(m, "attention_tiled", "tiled_attention",
                                              "tiled_attention_with_weights", options,
                                              (size_t)block_q, local, out, fits);
    if (*fits) out->variant = MHFA_ATTEND_TILED, out->block_q = out->group = (size_t)block_q;
    return status;
}

/* The vector kernel: no local memory, no barrier, any work-group size. */
static mhfa_status build_vector_attention(mhfa_module *m, int block_k, mhfa_attention_kernel *out) {
    char options[112];
    snprintf(options, sizeof options, "%s-D HEAD_DIM=%d -D BLOCK_K=%d -D ROWS_LAYOUT=%d",
             mhfa_storage_option(m->cfg.dtype), m->head_dim, block_k, out->rows_layout);
    static const char *const sources[1] = {"attention_vector"};
    const char *names[1] = {m->cfg.store_attn_weights ? "vector_attention_with_weights"
                                                      : "vector_attention"};
    cl_kernel *const kernels[1] = {&out->kernel};
    out->variant = MHFA_ATTEND_VECTOR;
    return mhfa_build_kernels(m->ctx, sources, 1, options, names, kernels, 1);
}

/* The kernel for few keys (attention_wide.cl), either path; *fits as above. */
static mhfa_status try_wide_attention(mhfa_module *m, int block_q, int tile_keys,
                                      mhfa_attention_kernel *out, int *fits) {
    size_t d = (size_t)m->head_dim, padded = d + (d % 4 == 0 ? 4 : 1);
    /* K (rows padded) and V tiles, the keep bits */
    size_t local =
        sizeof(float) * ((size_t)tile_keys * (padded + d) + (size_t)block_q * tile_keys / 32);
    /* the queries (read together where rows-major), with weights also m and 1 / l */
    if (m->cfg.store_attn_weights || out->rows_layout) local += sizeof(float) * block_q * padded;
    if (m->cfg.store_attn_weights) local += sizeof(float) * block_q * 2;
    char options[160];
    snprintf(options, sizeof options,
             "%s-D HEAD_DIM=%d -D BLOCK_Q=%d -D TILE_KEYS=%d -D ROWS_LAYOUT=%d",
             mhfa_storage_option(m->cfg.dtype), m->head_dim, block_q, tile_keys, out->rows_layout);
    mhfa_status status =
        build_query_per_item(m, "attention_wide", "wide_attention", "wide_attention_with_weights",
                             options, (size_t)block_q, local, out, fits);
    if (*fits) out->variant = MHFA_ATTEND_WIDE, out->block_q = out->group = (size_t)block_q;
    return status;
}

/* The tensor-core flash kernel, flash path only: 3xTF32 for float32 (HEAD_DIM a multiple of 8),
 * half operands for half storage (HEAD_DIM and BLOCK_K multiples of 16); *fits as above. */
static mhfa_status try_mma_attention(mhfa_module *m, const mhfa_attention_choice *c,
                                     mhfa_attention_kernel *out, int *fits) {
    const int half = m->cfg.dtype != MHFA_FLOAT32, warps = c->warps, block_k = c->block_k;
    const int q_tiles = half ? c->q_tiles : 1; /* the float32 kernel has one tile a warp */
    size_t group = 32 * (size_t)warps, d = (size_t)m->head_dim, bk = (size_t)block_k;
    size_t scratch = mma_scratch_floats(m->ctx, (size_t)warps);
    /* Two tiles of K and V: float32 as two planes each (TF32 big and small parts), rows padded
     * by 4 words; half as packed pairs, K by rows and V by dimensions, padded alike. */
    size_t tile_words = half ? bk * (d / 2 + 4) + d * (bk / 2 + 4) : 2 * bk * (2 * d + 12);
    size_t local = sizeof(float) * (2 * tile_words + scratch);
    *fits = 0;
    if (m->cfg.store_attn_weights || d % (half ? 16 : 8) || (half && block_k % 16))
        return MHFA_SUCCESS;
    char options[200];
    int n = snprintf(
        options, sizeof options, "%s-D HEAD_DIM=%d -D WARPS=%d -D BLOCK_K=%d -D ROWS_LAYOUT=%d",
        mhfa_storage_option(m->cfg.dtype), m->head_dim, warps, block_k, out->rows_layout);
    mhfa_kernel_build b = {{"mma", "attention_mma"}, 2, options, {"mma_attention"},
                           {&out->kernel},           1, group,   local};
    if (half) {
        /* The weights' parts in P V (attention_mma_half.cl): float32's precision unless reduced. */
        const int parts = m->cfg.allow_reduced_math ? 1 : m->cfg.dtype == MHFA_FLOAT16 ? 2 : 3;
        snprintf(options + n, sizeof options - (size_t)n, " -D Q_TILES=%d -D P_PARTS=%d", q_tiles,
                 parts);
        b.sources[1] = "mma_half", b.sources[2] = "attention_mma_half";
        b.n_sources = 3;
    }
    mhfa_status status = mhfa_build_if_fits(m->ctx, &b, fits);
    if (*fits) {
        out->variant = MHFA_ATTEND_MMA;
        out->block_q = 16 * (size_t)(warps * q_tiles);
        out->group = group;
    }
    return status;
}

/* The attention kernel choice c names, else the plan's fallback, into *out. */
static mhfa_status build_attention(mhfa_module *m, const mhfa_attention_choice *c,
                                   mhfa_attention_kernel *out) {
    int fits = 0;
    mhfa_status status = MHFA_SUCCESS;
    /* Rows-major Q, K, V where the plan asks and the projection kernels can make them (an
     * application's core is promised the per-head layout). */
    out->rows_layout = c->rows && m->kernels.project_rows && !mhfa_uses_application_core(&m->cfg);
    switch (c->variant) {
    case MHFA_ATTEND_VECTOR:
        return build_vector_attention(m, c->block_k, out);
    case MHFA_ATTEND_MMA:
        status = try_mma_attention(m, c, out, &fits);
        break;
    case MHFA_ATTEND_WIDE:
        status = try_wide_attention(m, c->block_q, c->tile_keys, out, &fits);
        break;
    case MHFA_ATTEND_TILED:
        status = try_tiled_attention(m, c->block_q, c->block_k, out, &fits);
        break;
    case MHFA_ATTEND_NONE:
        break;
    }
    /* The fallback: the tiled kernel, halving its group until it fits. */
    const mhfa_attention_choice *f = &m->plan.fallback;
    for (int block_q = f->block_q; !fits && status == MHFA_SUCCESS && block_q >= 1; block_q /= 2)
        status = try_tiled_attention(m, block_q, f->block_k, out, &fits);
    if (status == MHFA_SUCCESS && !fits)
        status = mhfa_fail(m->ctx, MHFA_ERROR_UNSUPPORTED,
                           "the attention kernel for head_dim %d fits neither the local memory "
                           "nor the work-groups of %s",
                           m->head_dim, m->ctx->info.device_name);
    return status;
}

/* The split-over-keys kernels for few queries against many keys (flash path only). */
static mhfa_status build_decode(mhfa_module *m) {
    char options[80];
    snprintf(options, sizeof options, "%s-D HEAD_DIM=%d -D CHUNK=%d",
             mhfa_storage_option(m->cfg.dtype), m->head_dim, m->plan.decode_chunk);
    static const char *const sources[1] = {"attention_decode"};
    static const char *const names[2] = {"decode_partial", "decode_merge"};
    cl_kernel *const kernels[2] = {&m->kernels.decode_partial, &m->kernels.decode_merge};
    return mhfa_build_kernels(m->ctx, sources, 1, options, names, kernels, 2);
}

mhfa_status mhfa_build_module_kernels(mhfa_module *m) {
    mhfa_plan_lookup(m->ctx, m->head_dim, m->cfg.dtype, &m->plan);
    const mhfa_plan *plan = &m->plan;
    static const char *const mask_sources[1] = {"mask"}, *const mask_names[1] = {"mask_to_keep"};
    cl_kernel *const mask_kernels[1] = {&m->kernels.mask_to_keep};
    mhfa_status status =
        mhfa_build_kernels(m->ctx, mask_sources, 1, "", mask_names, mask_kernels, 1);
    if (status == MHFA_SUCCESS) status = build_projections(m);
    const mhfa_attention_choice *attention =
        m->cfg.store_attn_weights && plan->manual.variant ? &plan->manual : &plan->flash;
    if (status == MHFA_SUCCESS && !mhfa_uses_application_core(&m->cfg))
        status = build_attention(m, attention, &m->kernels.attention);
    const int flash = mhfa_uses_flash_core(&m->cfg);
    if (status == MHFA_SUCCESS && flash && plan->flash_masked.variant)
        status = build_attention(m, &plan->flash_masked, &m->kernels.attention_masked);
    if (status == MHFA_SUCCESS && flash) status = build_decode(m);
    if (status == MHFA_SUCCESS && flash) status = mhfa_build_absorbed(m);
    if (status != MHFA_SUCCESS) mhfa_release_module_kernels(&m->kernels);
    return status;
}

void mhfa_release_module_kernels(mhfa_kernels *k) {
    cl_kernel *all[] = {&k->project_rows,  &k->project_to_heads, &k->project_to_rows,
                        &k->mask_to_keep,  &k->attention.kernel, &k->rows_to_heads,
                        &k->heads_to_rows, &k->add_bias,         &k->decode_partial,
                        &k->decode_merge,  &k->absorbed,         &k->attention_masked.kernel};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        mhfa_release_kernel(all[i]);
}
