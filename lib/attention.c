/* The built-in attention core: one launch of tiled_attention (or attention_vector.cl's twin on
 * CPUs, or attention_mma.cl's on tensor cores; masked forwards may have a kernel of their own), the
 * "with_weights" kernel on the manual path (which also writes the weights), or for one or two
 * queries against many keys the split-over-keys kernels of attention_decode.cl. */
#include "internal.h"

mhfa_keep_args mhfa_keep_args_of(const mhfa_module *m, const mhfa_attention_args *a,
                                 const mhfa_mask_layout *mask) {
    mhfa_keep_args k;
    k.has_keep = !a->keep ? 0 : mask->raw ? 2 : 1;
    k.keep = k.has_keep ? a->keep : m->in_t; /* any valid buffer when unused */
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
                         MHFA_ARG(k.keep), MHFA_ARG(k.has_keep), MHFA_ARG(k.stride),
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
    cl_int chunks = (a->graph_size + k->decode_chunk - 1) / k->decode_chunk;
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

const mhfa_attention_kernel *mhfa_attention_kernel_for(const mhfa_module *m, int n_query,
                                                       int graph_size, int masked, int weights) {
    const mhfa_kernels *k = &m->kernels;
    if (!weights && k->decode_partial && n_query <= 2 && graph_size >= 2 * k->decode_chunk)
        return NULL;
    /* Masked forwards take their own kernel where the tuning chose one. */
    return masked && k->attention_masked.kernel ? &k->attention_masked : &k->attention;
}

mhfa_status mhfa_attention(mhfa_module *m, const mhfa_attention_args *a,
                           const mhfa_mask_layout *mask, cl_mem weights) {
    const mhfa_attention_kernel *ak =
        mhfa_attention_kernel_for(m, a->n_query, a->graph_size, a->keep != NULL, weights != NULL);
    if (!ak) return decode(m, a, mask);
    const char *what = weights ? "attention (with weights)" : "attention";
    mhfa_status status = set_attention_args(m, ak->kernel, what, a, mask);
    if (status == MHFA_SUCCESS && weights)
        status = set_arg(m, ak->kernel, 14, sizeof weights, &weights,
                         "clSetKernelArg(attention, weights)");
    if (status != MHFA_SUCCESS) return status;
    const size_t heads = (size_t)a->batch * (size_t)a->n_heads;
    if (ak->vector) {
        /* 16 queries per work-item, one work-item per group: its private arrays are large, and a
         * CPU runtime that loops over a group's work-items keeps all of theirs at once. */
        size_t global[2] = {((size_t)a->n_query + 15) / 16, heads}, one[2] = {1, 1};
        return mhfa_enqueue(m->ctx, ak->kernel, 2, global, one, what);
    }
    /* attention_mma.cl: 16 queries per warp of 32 work-items. */
    size_t local[2] = {ak->mma ? 2 * ak->block_q : ak->block_q, 1};
    size_t groups = ((size_t)a->n_query + ak->block_q - 1) / ak->block_q;
    size_t global[2] = {groups * local[0], heads};
    return mhfa_enqueue(m->ctx, ak->kernel, 2, global, local, what);
}
