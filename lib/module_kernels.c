/* Building a module's kernels for its head_dim, with tile sizes that fit the device: each
 * candidate, largest first, is built and kept only if its work-group fits the kernel's real limit
 * (CL_KERNEL_WORK_GROUP_SIZE) and its local memory fits the device. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

typedef struct linear_tiles {
    int tile_m, tile_n, tile_k, wpt_m, wpt_n;
} linear_tiles;

static const linear_tiles linear_candidates[] = {
    {64, 64, 16, 4, 4}, {32, 32, 16, 2, 2}, {16, 16, 16, 2, 2}, {8, 8, 8, 1, 1}, {1, 1, 1, 1, 1},
};

static int is_cpu(const mhfa_context *ctx) {
    return (ctx->info.type & CL_DEVICE_TYPE_CPU) != 0;
}

static size_t kernel_group_limit(const mhfa_context *ctx, cl_kernel kernel) {
    size_t limit = 0;
    if (clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof limit,
                                 &limit, NULL) != CL_SUCCESS)
        return 0;
    return limit;
}

static int kernel_fits(const mhfa_context *ctx, cl_kernel kernel, size_t group_size) {
    cl_ulong local = 0;
    clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof local, &local,
                             NULL);
    return group_size <= kernel_group_limit(ctx, kernel) && local <= ctx->info.local_mem_size;
}

static mhfa_status build(mhfa_context *ctx, const char *source, const char *options,
                         cl_program *program) {
    const char *names[2] = {"common", source};
    return mhfa_get_program(ctx, names, 2, options, program);
}

/* Builds the named kernels of one source with the first candidate options that fit. */
static mhfa_status build_linear(mhfa_module *m) {
    mhfa_context *ctx = m->ctx;
    mhfa_kernels *k = &m->kernels;
    for (size_t i = 0; i < sizeof linear_candidates / sizeof linear_candidates[0]; i++) {
        const linear_tiles *t = &linear_candidates[i];
        size_t group = (size_t)(t->tile_m / t->wpt_m) * (size_t)(t->tile_n / t->wpt_n);
        size_t local = (size_t)t->tile_k * (t->tile_m + t->tile_n + 2) * sizeof(float);
        if (group > ctx->info.max_work_group_size || local > ctx->info.local_mem_size) continue;
        char options[256];
        snprintf(options, sizeof options,
                 "-D HEAD_DIM=%d -D TILE_M=%d -D TILE_N=%d -D TILE_K=%d -D WPT_M=%d -D WPT_N=%d",
                 m->head_dim, t->tile_m, t->tile_n, t->tile_k, t->wpt_m, t->wpt_n);
        cl_program program;
        mhfa_status status = build(ctx, "linear", options, &program);
        if (status == MHFA_SUCCESS)
            status = mhfa_create_kernel(ctx, program, "project_to_heads", &k->project_to_heads);
        if (status == MHFA_SUCCESS)
            status = mhfa_create_kernel(ctx, program, "project_to_rows", &k->project_to_rows);
        if (status != MHFA_SUCCESS) return status;
        if (kernel_fits(ctx, k->project_to_heads, group) &&
            kernel_fits(ctx, k->project_to_rows, group)) {
            k->linear_local[0] = (size_t)(t->tile_n / t->wpt_n);
            k->linear_local[1] = (size_t)(t->tile_m / t->wpt_m);
            k->linear_tile[0] = (size_t)t->tile_n;
            k->linear_tile[1] = (size_t)t->tile_m;
            return MHFA_SUCCESS;
        }
        clReleaseKernel(k->project_to_heads);
        clReleaseKernel(k->project_to_rows);
        k->project_to_heads = k->project_to_rows = NULL;
    }
    return mhfa_fail(ctx, MHFA_ERROR_UNSUPPORTED,
                     "no projection tile size fits the work-group limits of %s",
                     ctx->info.device_name);
}

static mhfa_status build_flash(mhfa_module *m) {
    mhfa_context *ctx = m->ctx;
    const int d = m->head_dim;
    /* K and V tiles take 2 * BLOCK_K * d floats of local memory: use at most half of it. */
    cl_ulong budget = ctx->info.local_mem_size / 2;
    if (budget > 24576) budget = 24576;
    int block_k = (int)(budget / (2 * sizeof(float) * (size_t)d));
    if (block_k > 32) block_k = 32;
    if (block_k < 1)
        return mhfa_fail(ctx, MHFA_ERROR_UNSUPPORTED,
                         "head_dim %d needs more local memory than %s has", d,
                         ctx->info.device_name);
    for (int block_q = is_cpu(ctx) ? 16 : 64; block_q >= 1; block_q /= 2) {
        if ((size_t)block_q > ctx->info.max_work_group_size) continue;
        char options[160];
        snprintf(options, sizeof options, "-D HEAD_DIM=%d -D BLOCK_Q=%d -D BLOCK_K=%d", d, block_q,
                 block_k);
        cl_program program;
        mhfa_status status = build(ctx, "flash_attention", options, &program);
        if (status == MHFA_SUCCESS)
            status = mhfa_create_kernel(ctx, program, "flash_attention", &m->kernels.flash);
        if (status != MHFA_SUCCESS) return status;
        if (kernel_fits(ctx, m->kernels.flash, (size_t)block_q)) {
            m->kernels.flash_block_q = (size_t)block_q;
            return MHFA_SUCCESS;
        }
        clReleaseKernel(m->kernels.flash);
        m->kernels.flash = NULL;
    }
    return mhfa_fail(ctx, MHFA_ERROR_UNSUPPORTED, "the flash kernel fits no work-group on %s",
                     ctx->info.device_name);
}

static mhfa_status build_manual(mhfa_module *m) {
    mhfa_context *ctx = m->ctx;
    mhfa_kernels *k = &m->kernels;
    for (int group = 128; group >= 1; group /= 2) {
        if ((size_t)group > ctx->info.max_work_group_size) continue;
        char options[96];
        snprintf(options, sizeof options, "-D HEAD_DIM=%d -D SOFTMAX_GROUP=%d", m->head_dim, group);
        cl_program program;
        mhfa_status status = build(ctx, "manual_attention", options, &program);
        if (status == MHFA_SUCCESS)
            status = mhfa_create_kernel(ctx, program, "attention_softmax", &k->softmax);
        if (status != MHFA_SUCCESS) return status;
        if (!kernel_fits(ctx, k->softmax, (size_t)group)) {
            clReleaseKernel(k->softmax);
            k->softmax = NULL;
            continue;
        }
        k->softmax_local = (size_t)group;
        status = mhfa_create_kernel(ctx, program, "attention_scores", &k->scores);
        if (status == MHFA_SUCCESS)
            status = mhfa_create_kernel(ctx, program, "attention_dropout", &k->dropout);
        if (status == MHFA_SUCCESS)
            status =
                mhfa_create_kernel(ctx, program, "weights_times_values", &k->weights_times_values);
        return status;
    }
    return mhfa_fail(ctx, MHFA_ERROR_UNSUPPORTED, "the softmax kernel fits no work-group on %s",
                     ctx->info.device_name);
}

mhfa_status mhfa_build_module_kernels(mhfa_module *m) {
    cl_program mask_program;
    mhfa_status status = build(m->ctx, "mask", "", &mask_program);
    if (status == MHFA_SUCCESS)
        status = mhfa_create_kernel(m->ctx, mask_program, "mask_to_keep", &m->kernels.mask_to_keep);
    if (status == MHFA_SUCCESS) status = build_linear(m);
    if (status == MHFA_SUCCESS)
        status = m->cfg.store_attn_weights ? build_manual(m)
                 : m->cfg.attention_fn     ? MHFA_SUCCESS
                                           : build_flash(m);
    if (status != MHFA_SUCCESS) mhfa_release_module_kernels(&m->kernels);
    return status;
}

void mhfa_release_module_kernels(mhfa_kernels *k) {
    cl_kernel *all[] = {
        &k->project_to_heads, &k->project_to_rows, &k->mask_to_keep, &k->flash,
        &k->scores,           &k->softmax,         &k->dropout,      &k->weights_times_values};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (*all[i]) clReleaseKernel(*all[i]);
        *all[i] = NULL;
    }
}
