/* The built-in attention core: one launch of flash_attention (or attention_vector.cl's twin on
 * CPUs), the "with_weights" kernel on the manual path (which also writes the weights). */
#include "internal.h"

mhfa_status mhfa_attention(mhfa_module *m, const mhfa_attention_args *a,
                           const mhfa_mask_layout *mask, cl_mem weights) {
    mhfa_kernels *k = &m->kernels;
    cl_int has_keep = a->keep != NULL;
    cl_mem keep = has_keep ? a->keep : m->keep.mem; /* any valid buffer when unused */
    cl_int4 stride = {{mask->strides[0], mask->strides[1], mask->strides[2], mask->strides[3]}};
    cl_int n_heads = a->n_heads, n_query = a->n_query, graph_size = a->graph_size;
    cl_float scale = a->scale, p = a->dropout_p;
    cl_ulong seed = a->dropout_seed, offset = a->dropout_offset;
    const char *what = weights ? "attention_with_weights" : "flash_attention";
    mhfa_status status =
        mhfa_set_args(m->ctx, k->attention, what, 14, MHFA_ARG(a->q), MHFA_ARG(a->k),
                      MHFA_ARG(a->v), MHFA_ARG(keep), MHFA_ARG(has_keep), MHFA_ARG(stride),
                      MHFA_ARG(a->out), MHFA_ARG(n_heads), MHFA_ARG(n_query), MHFA_ARG(graph_size),
                      MHFA_ARG(scale), MHFA_ARG(p), MHFA_ARG(seed), MHFA_ARG(offset));
    if (status == MHFA_SUCCESS && weights) {
        cl_int err = clSetKernelArg(k->attention, 14, sizeof weights, &weights);
        if (err != CL_SUCCESS) status = mhfa_fail_cl(m->ctx, err, "clSetKernelArg(weights)");
    }
    if (status != MHFA_SUCCESS) return status;
    const size_t heads = (size_t)a->batch * (size_t)n_heads;
    if (k->attention_vector) {
        /* 16 queries per work-item, one work-item per group: its private arrays are large, and a
         * CPU runtime that loops over a group's work-items keeps all of theirs at once. */
        size_t global[2] = {((size_t)n_query + 15) / 16, heads}, one[2] = {1, 1};
        return mhfa_enqueue(m->ctx, k->attention, 2, global, one, what);
    }
    size_t local[2] = {k->attention_block_q, 1};
    size_t global[2] = {mhfa_round_up((size_t)n_query, local[0]), heads};
    return mhfa_enqueue(m->ctx, k->attention, 2, global, local, what);
}
