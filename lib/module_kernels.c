/* Building a module's kernels for its head_dim, with tile sizes that fit the device. A tuning
 * file's choice (tuning.c) is tried first; then the built-in candidates, largest first. Each is
 * built and kept only if its work-group fits the kernel's real limit (CL_KERNEL_WORK_GROUP_SIZE)
 * and its local memory fits the device. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Projection tiles for GPUs, largest first: TILE_M, TILE_N, TILE_K, WPT_M, WPT_N. */
static const int tiled_candidates[][5] = {
    {128, 128, 16, 8, 8}, {128, 128, 8, 8, 8}, {64, 64, 8, 4, 4},
    {32, 32, 8, 2, 2},    {16, 16, 8, 1, 1},   {1, 1, 1, 1, 1},
};

/* Rows per work-item of the vector (CPU) projection, and work-items per group (along rows). */
enum { VECTOR_ROWS_PER_ITEM = 8, VECTOR_GROUP_ITEMS = 8 };

int mhfa_group_fits_device(const mhfa_context *ctx, size_t group_size, size_t local_bytes) {
    return group_size <= ctx->info.max_work_group_size && local_bytes <= ctx->info.local_mem_size;
}

int mhfa_kernel_fits(const mhfa_context *ctx, cl_kernel kernel, size_t group_size) {
    size_t limit = 0;
    cl_ulong local = 0;
    if (clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof limit,
                                 &limit, NULL) != CL_SUCCESS ||
        clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof local,
                                 &local, NULL) != CL_SUCCESS)
        return 0;
    return group_size <= limit && local <= ctx->info.local_mem_size;
}

static void release(cl_kernel *kernel) {
    if (*kernel) clReleaseKernel(*kernel);
    *kernel = NULL;
}

mhfa_status mhfa_build_kernels(mhfa_context *ctx, const char *const *sources, int n_sources,
                               const char *options, const char *const *names,
                               cl_kernel *const *kernels, int n_kernels) {
    const char *all[4] = {"common"};
    for (int i = 0; i < n_sources; i++)
        all[i + 1] = sources[i];
    cl_program program;
    mhfa_status status = mhfa_get_program(ctx, all, n_sources + 1, options, &program);
    for (int i = 0; i < n_kernels && status == MHFA_SUCCESS; i++)
        status = mhfa_create_kernel(ctx, program, names[i], kernels[i]);
    return status;
}

/* The projection kernels of source (after mma.cl where with_mma); with_rows: also project_rows
 * (the tiled and mma kernels). */
static mhfa_status build_projection(mhfa_module *m, const char *source, int with_mma,
                                    const char *options, int with_rows) {
    static const char *const names[3] = {"project_to_heads", "project_to_rows", "project_rows"};
    mhfa_kernels *k = &m->kernels;
    cl_kernel *const kernels[3] = {&k->project_to_heads, &k->project_to_rows, &k->project_rows};
    const char *sources[3] = {"mma", "project_common", source};
    return mhfa_build_kernels(m->ctx, sources + !with_mma, with_mma ? 3 : 2, options, names,
                              kernels, with_rows ? 3 : 2);
}

/* Whether groups of `group` work-items fit every projection kernel just built. */
static int projection_kernels_fit(const mhfa_module *m, size_t group) {
    const mhfa_kernels *k = &m->kernels;
    return mhfa_kernel_fits(m->ctx, k->project_to_heads, group) &&
           mhfa_kernel_fits(m->ctx, k->project_to_rows, group) &&
           (!k->project_rows || mhfa_kernel_fits(m->ctx, k->project_rows, group));
}

/* The float16 kernel: no local memory, any work-group size. */
static mhfa_status build_vector_projection(mhfa_module *m, int rows_per_item, int vectors) {
    char options[128];
    snprintf(options, sizeof options, "-D HEAD_DIM=%d -D ROWS_PER_ITEM=%d -D VECTORS=%d",
             m->head_dim, rows_per_item, vectors);
    mhfa_kernels *k = &m->kernels;
    k->projection_vector = 1;
    k->projection_tile[0] = (size_t)(16 * vectors);
    k->projection_tile[1] = (size_t)rows_per_item;
    mhfa_status status = build_projection(m, "project_vector", 0, options, 0);
    /* The group is set, not left to the runtime: for long's `vector 16 2` PoCL chose groups of
     * 4096 work-items and overran its thread's stack (it keeps every work-item's arrays). */
    const int fits = status == MHFA_SUCCESS && projection_kernels_fit(m, VECTOR_GROUP_ITEMS);
    k->projection_local[0] = 1;
    k->projection_local[1] = fits ? VECTOR_GROUP_ITEMS : 1;
    return status;
}

/* Keeps the projection kernels just built if their work-group (local_x * local_y items, each
 * group covering tile_n columns and tile_m rows) fits them; else releases them. */
static int keep_projection_if_fits(mhfa_module *m, size_t local_x, size_t local_y, size_t tile_n,
                                   size_t tile_m) {
    mhfa_kernels *k = &m->kernels;
    if (!projection_kernels_fit(m, local_x * local_y)) {
        release(&k->project_to_heads);
        release(&k->project_to_rows);
        release(&k->project_rows);
        return 0;
    }
    k->projection_vector = 0;
    k->projection_local[0] = local_x;
    k->projection_local[1] = local_y;
    k->projection_tile[0] = tile_n;
    k->projection_tile[1] = tile_m;
    return 1;
}

/* Whether the projections may read and write runs of 4 floats (project_common.cl): in_features,
 * ld_w, col0 and out_width are input_dim or multiples of embed_dim = n_heads * head_dim. */
static int vector_runs(const mhfa_module *m, int tile_k, int tile_n) {
    return m->cfg.input_dim % 4 == 0 && m->head_dim % 4 == 0 && tile_k % 4 == 0 && tile_n % 4 == 0;
}

/* Builds one tile size; *fits says whether it may be used. */
static mhfa_status try_tiled_projection(mhfa_module *m, const int *t, int *fits) {
    mhfa_context *ctx = m->ctx;
    size_t group = (size_t)(t[0] / t[3]) * (size_t)(t[1] / t[4]);
    /* two slices of x and w_t, the rows' offsets */
    size_t local =
        2 * (size_t)t[2] * (t[0] + t[1] + 8) * sizeof(float) + (size_t)t[0] * sizeof(cl_long);
    *fits = 0;
    if (!mhfa_group_fits_device(ctx, group, local)) return MHFA_SUCCESS;
    char options[256];
    snprintf(options, sizeof options,
             "-D HEAD_DIM=%d -D TILE_M=%d -D TILE_N=%d -D TILE_K=%d -D WPT_M=%d -D WPT_N=%d "
             "-D VECTOR_RUNS=%d",
             m->head_dim, t[0], t[1], t[2], t[3], t[4], vector_runs(m, t[2], t[1]));
    mhfa_status status = build_projection(m, "project_tiled", 0, options, 1);
    if (status == MHFA_SUCCESS)
        *fits = keep_projection_if_fits(m, (size_t)(t[1] / t[4]), (size_t)(t[0] / t[3]),
                                        (size_t)t[1], (size_t)t[0]);
    return status;
}

/* mma.cl's MMA_SCRATCH: local floats for its emulation (a 16x8 and an 8x8 operand per warp), 1
 * where PTX runs the products. */
static size_t mma_scratch_floats(const mhfa_context *ctx, size_t warps) {
    return mhfa_has_ptx_mma(ctx) ? 1 : warps * (16 * 8 + 8 * 8);
}

/* Builds the tensor-core kernel for one shape; *fits says whether it may be used. */
static mhfa_status try_mma_projection(mhfa_module *m, const int *t, int *fits) {
    mhfa_context *ctx = m->ctx;
    size_t warps = (size_t)t[1] * t[2], group = 32 * warps;
    size_t tile_m = (size_t)t[1] * t[3], tile_n = (size_t)t[2] * t[4];
    /* no local memory but the emulation's scratch */
    size_t local = sizeof(float) * mma_scratch_floats(ctx, warps);
    *fits = 0;
    if (!mhfa_group_fits_device(ctx, group, local)) return MHFA_SUCCESS;
    /* Runs of 4 columns of w_t per lane need N_TILES = WN / 8 a multiple of 4 (project_mma.cl). */
    char options[256];
    snprintf(options, sizeof options,
             "-D HEAD_DIM=%d -D TILE_K=%d -D WARPS_M=%d -D WARPS_N=%d -D WM=%d -D WN=%d "
             "-D VECTOR_RUNS=%d",
             m->head_dim, t[0], t[1], t[2], t[3], t[4], vector_runs(m, t[0], t[4] / 8));
    mhfa_status status = build_projection(m, "project_mma", 1, options, 1);
    if (status == MHFA_SUCCESS) *fits = keep_projection_if_fits(m, group, 1, tile_n, tile_m);
    return status;
}

static mhfa_status build_tiled_projection(mhfa_module *m, const mhfa_tuning *tuning) {
    int fits = 0;
    mhfa_status status = MHFA_SUCCESS;
    /* The tensor-core kernel only where a tuning line asks (the built-in table does for the H200
     * and H100, where it measured faster): on GPUs whose TF32 rate is not well above their
     * float32 rate, its three products per multiply-add would lose to the tiled kernel. */
    if (tuning->projection_kind == MHFA_PROJECTION_MMA)
        status = try_mma_projection(m, tuning->mma, &fits);
    if (tuning->projection_kind == MHFA_PROJECTION_TILED)
        status = try_tiled_projection(m, tuning->tiled, &fits);
    for (size_t i = 0; !fits && status == MHFA_SUCCESS &&
                       i < sizeof tiled_candidates / sizeof tiled_candidates[0];
         i++)
        status = try_tiled_projection(m, tiled_candidates[i], &fits);
    if (status == MHFA_SUCCESS && !fits)
        status = mhfa_fail(m->ctx, MHFA_ERROR_UNSUPPORTED,
                           "no projection tile size fits the work-group limits of %s",
                           m->ctx->info.device_name);
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
    k->projection_clblast = 1;
    return mhfa_build_kernels(m->ctx, sources, 2, options, names, kernels, 3);
}

static mhfa_status build_projections(mhfa_module *m, const mhfa_tuning *tuning) {
    if (tuning->projection_kind == MHFA_PROJECTION_CLBLAST && mhfa_clblast_available())
        return build_clblast_projection(m);
    if (tuning->projection_kind == MHFA_PROJECTION_VECTOR)
        return build_vector_projection(m, tuning->rows_per_item, tuning->vectors);
    if (tuning->projection_kind == 0 && mhfa_is_cpu(m->ctx))
        return build_vector_projection(m, VECTOR_ROWS_PER_ITEM, 1);
    return build_tiled_projection(m, tuning);
}

/* Builds attention kernel `name` from sources into out->kernel; *fits says whether a group of
 * group_size work-items fits it, else it is released. */
static mhfa_status build_attention_kernel(mhfa_module *m, const char *const *sources, int n_sources,
                                          const char *options, const char *name, size_t group_size,
                                          mhfa_attention_kernel *out, int *fits) {
    const char *names[1] = {name};
    cl_kernel *const kernels[1] = {&out->kernel};
    *fits = 0;
    mhfa_status status = mhfa_build_kernels(m->ctx, sources, n_sources, options, names, kernels, 1);
    if (status != MHFA_SUCCESS) return status;
    *fits = mhfa_kernel_fits(m->ctx, out->kernel, group_size);
    if (!*fits) release(&out->kernel);
    return MHFA_SUCCESS;
}

/* Builds an attention kernel of one query per work-item, block_q to a group, from
 * row_vectors.cl and source (the kernel with weights on the manual path); *fits as above. */
static mhfa_status build_query_per_item(mhfa_module *m, const char *source, const char *flash_name,
                                        const char *weights_name, const char *options, int block_q,
                                        mhfa_attention_kernel *out, int *fits) {
    const char *sources[2] = {"row_vectors", source};
    mhfa_status status = build_attention_kernel(
        m, sources, 2, options, m->cfg.store_attn_weights ? weights_name : flash_name,
        (size_t)block_q, out, fits);
    if (*fits) out->block_q = (size_t)block_q;
    return status;
}

/* Builds the attention kernel for one block size into *out; *fits says whether it may be used. */
static mhfa_status try_attention(mhfa_module *m, int block_q, int block_k,
                                 mhfa_attention_kernel *out, int *fits) {
    *fits = 0;
    size_t local = 2 * sizeof(float) * (size_t)block_k * (size_t)m->head_dim;
    if (m->cfg.store_attn_weights) local += sizeof(float) * (size_t)block_q * (size_t)(block_k + 1);
    if (!mhfa_group_fits_device(m->ctx, (size_t)block_q, local)) return MHFA_SUCCESS;
    char options[160];
    snprintf(options, sizeof options,
             "-D HEAD_DIM=%d -D BLOCK_Q=%d -D BLOCK_K=%d -D ROWS_LAYOUT=%d", m->head_dim, block_q,
             block_k, out->rows_layout);
    return build_query_per_item(m, "attention_tiled", "tiled_attention",
                                "tiled_attention_with_weights", options, block_q, out, fits);
}

/* The vector kernel: no local memory, no barrier, any work-group size. */
static mhfa_status build_vector_attention(mhfa_module *m, int block_k, mhfa_attention_kernel *out) {
    char options[96];
    snprintf(options, sizeof options, "-D HEAD_DIM=%d -D BLOCK_K=%d -D ROWS_LAYOUT=%d", m->head_dim,
             block_k, out->rows_layout);
    static const char *const sources[1] = {"attention_vector"};
    const char *names[1] = {m->cfg.store_attn_weights ? "vector_attention_with_weights"
                                                      : "vector_attention"};
    cl_kernel *const kernels[1] = {&out->kernel};
    out->vector = 1;
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
    if (m->cfg.store_attn_weights || out->rows_layout)
        local += sizeof(float) * (size_t)block_q * (padded + 2);
    *fits = 0;
    if (!mhfa_group_fits_device(m->ctx, (size_t)block_q, local)) return MHFA_SUCCESS;
    char options[160];
    snprintf(options, sizeof options,
             "-D HEAD_DIM=%d -D BLOCK_Q=%d -D TILE_KEYS=%d -D ROWS_LAYOUT=%d", m->head_dim, block_q,
             tile_keys, out->rows_layout);
    return build_query_per_item(m, "attention_wide", "wide_attention",
                                "wide_attention_with_weights", options, block_q, out, fits);
}

/* The tensor-core flash kernel (flash path, HEAD_DIM a multiple of 8); *fits as above. */
static mhfa_status try_mma_attention(mhfa_module *m, int warps, int block_k,
                                     mhfa_attention_kernel *out, int *fits) {
    mhfa_context *ctx = m->ctx;
    size_t group = 32 * (size_t)warps, d = (size_t)m->head_dim;
    size_t scratch = mma_scratch_floats(ctx, (size_t)warps);
    /* two tiles of K and V, two planes each (TF32 big and small parts) */
    size_t local = sizeof(float) * (4 * (size_t)block_k * (2 * d + 12) + scratch);
    *fits = 0;
    if (m->cfg.store_attn_weights || d % 8 || !mhfa_group_fits_device(ctx, group, local))
        return MHFA_SUCCESS;
    char options[160];
    snprintf(options, sizeof options, "-D HEAD_DIM=%d -D WARPS=%d -D BLOCK_K=%d -D ROWS_LAYOUT=%d",
             m->head_dim, warps, block_k, out->rows_layout);
    static const char *const sources[2] = {"mma", "attention_mma"};
    mhfa_status status =
        build_attention_kernel(m, sources, 2, options, "mma_attention", group, out, fits);
    if (*fits) {
        out->mma = 1;
        out->block_q = 16 * (size_t)warps;
    }
    return status;
}

/* The attention kernel that tuning t asks for, else the built-in choice, into *out. */
static mhfa_status build_attention(mhfa_module *m, const mhfa_flash_tuning *t,
                                   mhfa_attention_kernel *out) {
    mhfa_context *ctx = m->ctx;
    int fits = 0;
    mhfa_status status = MHFA_SUCCESS;
    /* Rows-major Q, K, V where the tuning asks and the projection kernels can make them (an
     * application's core is promised the per-head layout). */
    out->rows_layout = t->rows && m->kernels.project_rows && !mhfa_uses_application_core(&m->cfg);
    if (t->mma) status = try_mma_attention(m, t->block_q, t->block_k, out, &fits);
    if (t->wide) status = try_wide_attention(m, t->block_q, t->block_k, out, &fits);
    if (fits || status != MHFA_SUCCESS) return status;
    if (t->vector) return build_vector_attention(m, t->block_k, out);
    if (!t->block_q && mhfa_is_cpu(ctx)) return build_vector_attention(m, 16, out);
    if (t->block_q && !t->mma && !t->wide)
        status = try_attention(m, t->block_q, t->block_k, out, &fits);
    /* Built in: K and V tiles take at most half the local memory (and 24 KiB). */
    cl_ulong budget = ctx->info.local_mem_size / 2;
    if (budget > 24576) budget = 24576;
    int block_k = (int)(budget / (2 * sizeof(float) * (size_t)m->head_dim));
    if (block_k > 32) block_k = 32;
    for (int block_q = mhfa_is_cpu(ctx) ? 16 : 64;
         !fits && status == MHFA_SUCCESS && block_k >= 1 && block_q >= 1; block_q /= 2)
        status = try_attention(m, block_q, block_k, out, &fits);
    if (status == MHFA_SUCCESS && !fits)
        status = mhfa_fail(ctx, MHFA_ERROR_UNSUPPORTED,
                           "the attention kernel for head_dim %d fits neither the local memory "
                           "nor the work-groups of %s",
                           m->head_dim, ctx->info.device_name);
    return status;
}

/* The split-over-keys kernels for few queries against many keys (flash path only). */
static mhfa_status build_decode(mhfa_module *m, const mhfa_tuning *tuning) {
    int chunk = tuning->decode_chunk ? tuning->decode_chunk : 64;
    char options[64];
    snprintf(options, sizeof options, "-D HEAD_DIM=%d -D CHUNK=%d", m->head_dim, chunk);
    static const char *const sources[1] = {"attention_decode"};
    static const char *const names[2] = {"decode_partial", "decode_merge"};
    cl_kernel *const kernels[2] = {&m->kernels.decode_partial, &m->kernels.decode_merge};
    m->kernels.decode_chunk = chunk;
    return mhfa_build_kernels(m->ctx, sources, 1, options, names, kernels, 2);
}

mhfa_status mhfa_build_module_kernels(mhfa_module *m) {
    mhfa_tuning tuning;
    mhfa_tuning_lookup(m->ctx, m->head_dim, &tuning);
    static const char *const mask_sources[1] = {"mask"}, *const mask_names[1] = {"mask_to_keep"};
    cl_kernel *const mask_kernels[1] = {&m->kernels.mask_to_keep};
    mhfa_status status =
        mhfa_build_kernels(m->ctx, mask_sources, 1, "", mask_names, mask_kernels, 1);
    if (status == MHFA_SUCCESS) status = build_projections(m, &tuning);
    const mhfa_flash_tuning *attention_tuning =
        m->cfg.store_attn_weights && tuning.manual.block_q ? &tuning.manual : &tuning.flash;
    if (status == MHFA_SUCCESS && !mhfa_uses_application_core(&m->cfg))
        status = build_attention(m, attention_tuning, &m->kernels.attention);
    if (status == MHFA_SUCCESS && mhfa_uses_flash_core(&m->cfg) && tuning.flash_masked.block_q)
        status = build_attention(m, &tuning.flash_masked, &m->kernels.attention_masked);
    if (status == MHFA_SUCCESS && mhfa_uses_flash_core(&m->cfg)) status = build_decode(m, &tuning);
    if (status == MHFA_SUCCESS && mhfa_uses_flash_core(&m->cfg))
        status = mhfa_build_absorbed(m, &tuning);
    if (status != MHFA_SUCCESS) mhfa_release_module_kernels(&m->kernels);
    return status;
}

void mhfa_release_module_kernels(mhfa_kernels *k) {
    cl_kernel *all[] = {&k->project_rows,  &k->project_to_heads, &k->project_to_rows,
                        &k->mask_to_keep,  &k->attention.kernel, &k->rows_to_heads,
                        &k->heads_to_rows, &k->add_bias,         &k->decode_partial,
                        &k->decode_merge,  &k->absorbed,         &k->attention_masked.kernel};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        release(all[i]);
}
