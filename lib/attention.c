/* The built-in attention core, as the forward's plan says: one launch of the module's attention
 * kernel (on the manual path its "with_weights" twin, which also writes the weights), or the
 * split-over-keys kernels of attention_decode.cl. */
#include "internal.h"

mhfa_keep_args mhfa_keep_args_of(const mhfa_module *m, const mhfa_attention_args *a,
                                 const mhfa_mask_layout *mask) {
    mhfa_keep_args k;
    k.mask_kind = a->keep ? (cl_int)mask->kind : MHFA_MASK_NONE;
    k.keep = a->keep ? a->keep : m->in_t; /* any valid buffer when unused */
    for (int i = 0; i < 4; i++)
        k.stride.s[i] = mask->strides[i];
    return k;
}

/* The arguments every attention kernel starts with (ATTENTION_ARGS in common.cl). */
static mhfa_status set_attention_args(mhfa_module *m, cl_kernel kernel, const char *what,
                                      const mhfa_attention_args *a, const mhfa_mask_layout *mask) {
    mhfa_keep_args k = mhfa_keep_args_of(m, a, mask);
    cl_int n_heads = a->n_heads, n_query = a->n_query, graph_size = a->graph_size;
    cl_float scale = a->scale, p = a->dropout_p;
    cl_ulong seed = a->dropout_seed, offset = a->dropout_offset;
    return mhfa_set_args(m->ctx, kernel, what, 14, MHFA_ARG(a->q), MHFA_ARG(a->k), MHFA_ARG(a->v),
                         MHFA_ARG(k.keep), MHFA_ARG(k.mask_kind), MHFA_ARG(k.stride),
                         MHFA_ARG(a->out), MHFA_ARG(n_heads), MHFA_ARG(n_query),
                         MHFA_ARG(graph_size), MHFA_ARG(scale), MHFA_ARG(p), MHFA_ARG(seed),
                         MHFA_ARG(offset));
}

/* Sets one argument after the common ones. */
static mhfa_status set_arg(mhfa_module *m, cl_kernel kernel, cl_uint index, size_t size,
                           const void *value, const char *what) {
    cl_int err = clSetKernelArg(kernel, index, size, value);
    return err == CL_SUCCESS ? MHFA_SUCCESS : mhfa_fail_cl(m->ctx, err, what);
}

/* Few queries against many keys: chunks of keys in parallel, then a merge. */
static mhfa_status decode(mhfa_module *m, const mhfa_attention_args *a,
                          const mhfa_mask_layout *mask) {
    mhfa_kernels *k = &m->kernels;
    const int chunk = m->plan.decode_chunk;
    cl_int chunks = (a->graph_size + chunk - 1) / chunk;
    cl_float p = a->dropout_p;
    cl_int n_heads = a->n_heads, n_query = a->n_query;
    size_t rows = (size_t)a->batch * (size_t)a->n_heads * (size_t)a->n_query;
    mhfa_status status = mhfa_buffer_reserve(
        m->ctx, &m->partials, rows * (size_t)chunks * (size_t)(a->head_dim + 2) * sizeof(float));
    if (status == MHFA_SUCCESS)
        status = set_attention_args(m, k->decode_partial, "decode_partial", a, mask);
    if (status == MHFA_SUCCESS)
        status = set_arg(m, k->decode_partial, 14, sizeof(cl_mem), &m->partials.mem,
                         "clSetKernelArg(decode_partial, partial)");
    if (status == MHFA_SUCCESS)
        status = set_arg(m, k->decode_partial, 15, sizeof chunks, &chunks,
                         "clSetKernelArg(decode_partial, chunks)");
    /* On a CPU, one work-item per group: a runtime that loops over a group's work-items keeps
     * all their private arrays (HEAD_DIM floats each) at once. */
    size_t grid[2] = {(size_t)chunks, rows}, one[2] = {1, 1};
    const size_t *local = mhfa_is_cpu(m->ctx) ? one : NULL;
    if (status == MHFA_SUCCESS)
        status = mhfa_enqueue(m->ctx, k->decode_partial, 2, grid, local, "decode_partial");
    if (status == MHFA_SUCCESS)
        status = mhfa_set_args(m->ctx, k->decode_merge, "decode_merge", 6,
                               MHFA_ARG(m->partials.mem), MHFA_ARG(chunks), MHFA_ARG(a->out),
                               MHFA_ARG(p), MHFA_ARG(n_heads), MHFA_ARG(n_query));
    if (status == MHFA_SUCCESS)
        status = mhfa_enqueue(m->ctx, k->decode_merge, 1, &rows, NULL, "decode_merge");
    return status;
}

mhfa_status mhfa_attention(mhfa_module *m, const mhfa_forward_plan *plan,
                           const mhfa_attention_args *a, const mhfa_mask_layout *mask,
                           cl_mem weights) {
    if (plan->route == MHFA_ROUTE_DECODE) return decode(m, a, mask);
    const mhfa_attention_kernel *ak = plan->kernel;
    const char *what = weights ? "attention (with weights)" : "attention";
    mhfa_status status = set_attention_args(m, ak->kernel, what, a, mask);
    if (status == MHFA_SUCCESS && weights)
        status = set_arg(m, ak->kernel, 14, sizeof weights, &weights,
                         "clSetKernelArg(attention, weights)");
    if (status != MHFA_SUCCESS) return status;
    const size_t heads = (size_t)a->batch * (size_t)a->n_heads;
    if (ak->variant == MHFA_ATTEND_VECTOR) {
        /* 16 queries per work-item, one work-item per group: its private arrays are large, and a
         * CPU runtime that loops over a group's work-items keeps all of theirs at once. */
        size_t global[2] = {((size_t)a->n_query + 15) / 16, heads}, one[2] = {1, 1};
        return mhfa_enqueue(m->ctx, ak->kernel, 2, global, one, what);
    }
    size_t local[2] = {ak->group, 1};
    size_t groups = ((size_t)a->n_query + ak->block_q - 1) / ak->block_q;
    size_t global[2] = {groups * local[0], heads};
    return mhfa_enqueue(m->ctx, ak->kernel, 2, global, local, what);
}
