/* The absorbed path (kernels/attention_absorbed.cl): for few queries, the whole forward in one
 * launch after the mask, with the key and value projections folded into the query side. Built
 * where the kernel fits the device (work-group limit, local memory, private arrays); the plan
 * says which forwards take it. */
#include "internal.h"

#include <stdio.h>

/* Private floats per work-item above which the kernel is not built (its accumulators, one per
 * head and input feature it owns, must stay near the registers or the first-level cache). */
enum { PRIVATE_FLOATS_LIMIT = 4096 };

static size_t per_item(size_t n, size_t group) {
    return (n + group - 1) / group;
}

static size_t local_bytes(const mhfa_module *m, size_t keys) {
    size_t h = (size_t)m->cfg.n_heads, din = (size_t)m->cfg.input_dim;
    size_t e = (size_t)m->cfg.embed_dim;
    return sizeof(float) * (e + din * h + keys * (din + 1) + 2 * keys * h + 5 * h);
}

/* Builds the kernel for one work-group size; *fits says whether it may be used. */
static mhfa_status try_group(mhfa_module *m, size_t group, size_t keys, int *fits) {
    size_t h = (size_t)m->cfg.n_heads, din = (size_t)m->cfg.input_dim;
    size_t e = (size_t)m->cfg.embed_dim;
    *fits = 0;
    size_t private_floats = h * per_item(din, group) + h + 2 * per_item(e, group);
    if (private_floats > PRIVATE_FLOATS_LIMIT) return MHFA_SUCCESS;
    char options[176];
    snprintf(options, sizeof options,
             "%s-D N_HEADS=%d -D HEAD_DIM=%d -D IN_DIM=%d -D GROUP=%zu -D KEYS=%zu",
             mhfa_storage_option(m->cfg.dtype), m->cfg.n_heads, m->head_dim, m->cfg.input_dim,
             group, keys);
    mhfa_kernel_build b = {{"attention_absorbed"}, 1, options, {"absorbed_attention"},
                           {&m->kernels.absorbed}, 1, group,   local_bytes(m, keys)};
    mhfa_status status = mhfa_build_if_fits(m->ctx, &b, fits);
    if (*fits) m->kernels.absorbed_group = group;
    return status;
}

mhfa_status mhfa_build_absorbed(mhfa_module *m) {
    const mhfa_plan *plan = &m->plan;
    if (plan->absorbed_mode == MHFA_ABSORBED_OFF) return MHFA_SUCCESS;
    size_t keys = (size_t)plan->absorbed_keys;
    int fits = 0;
    mhfa_status status = MHFA_SUCCESS;
    for (size_t group = (size_t)plan->absorbed_group; !fits && status == MHFA_SUCCESS && group >= 1;
         group /= 2)
        status = try_group(m, group, keys, &fits);
    /* Not fitting is no failure: the usual path stays. Nor is a failed build unless a tuning file
     * asked for the kernel (the build log stays in the context's message). */
    if (status == MHFA_ERROR_BUILD_FAILED && plan->absorbed_source != MHFA_FROM_TUNING_FILE) {
        m->kernels.absorbed = NULL;
        status = MHFA_SUCCESS;
    }
    return status;
}

mhfa_status mhfa_absorbed_forward(mhfa_module *m, const mhfa_attention_args *a,
                                  const mhfa_mask_layout *mask, cl_mem query_in, cl_mem key_in,
                                  cl_mem out) {
    cl_kernel kernel = m->kernels.absorbed;
    cl_int has_bias = m->cfg.bias != 0;
    cl_mem in_bias = has_bias ? m->in_bias : m->in_t; /* any valid buffer when unused */
    cl_mem out_bias = has_bias ? m->out_bias : m->out_t;
    mhfa_keep_args k = mhfa_keep_args_of(m, a, mask);
    cl_int n_query = a->n_query, graph_size = a->graph_size;
    cl_float scale = a->scale, p = a->dropout_p;
    cl_ulong seed = a->dropout_seed, offset = a->dropout_offset;
    mhfa_status status = mhfa_set_args(
        m->ctx, kernel, "absorbed_attention", 18, MHFA_ARG(query_in), MHFA_ARG(key_in),
        MHFA_ARG(m->in_t), MHFA_ARG(in_bias), MHFA_ARG(m->key_rows), MHFA_ARG(m->out_t),
        MHFA_ARG(out_bias), MHFA_ARG(has_bias), MHFA_ARG(k.keep), MHFA_ARG(k.mask_kind),
        MHFA_ARG(k.stride), MHFA_ARG(out), MHFA_ARG(n_query), MHFA_ARG(graph_size), MHFA_ARG(scale),
        MHFA_ARG(p), MHFA_ARG(seed), MHFA_ARG(offset));
    if (status != MHFA_SUCCESS) return status;
    size_t group = m->kernels.absorbed_group;
    size_t global[2] = {(size_t)a->n_query * group, (size_t)a->batch}, local[2] = {group, 1};
    return mhfa_enqueue(m->ctx, kernel, 2, global, local, "absorbed_attention");
}
