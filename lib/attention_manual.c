/* The manual path: scores, softmax into weights_out (kept for last_attention), optional dropout,
 * then weights times V. */
#include "internal.h"

mhfa_status mhfa_attention_manual(mhfa_module *m, const mhfa_attention_args *a,
                                  const mhfa_mask_layout *mask, cl_mem weights_out) {
    mhfa_context *ctx = m->ctx;
    mhfa_kernels *k = &m->kernels;
    cl_int has_keep = a->keep != NULL;
    cl_mem keep = has_keep ? a->keep : m->keep.mem; /* any valid buffer when unused */
    cl_int4 stride = {{mask->strides[0], mask->strides[1], mask->strides[2], mask->strides[3]}};
    cl_int n_heads = a->n_heads, n_query = a->n_query, graph_size = a->graph_size;
    cl_float scale = a->scale, p = a->dropout_p;
    cl_ulong seed = a->dropout_seed, offset = a->dropout_offset;
    const size_t heads = (size_t)a->batch * (size_t)n_heads;
    const size_t rows = heads * (size_t)n_query;
    cl_ulong count = (cl_ulong)rows * (cl_ulong)graph_size;

    mhfa_status status =
        mhfa_set_args(ctx, k->scores, "attention_scores", 10, MHFA_ARG(a->q), MHFA_ARG(a->k),
                      MHFA_ARG(keep), MHFA_ARG(has_keep), MHFA_ARG(stride), MHFA_ARG(weights_out),
                      MHFA_ARG(n_heads), MHFA_ARG(n_query), MHFA_ARG(graph_size), MHFA_ARG(scale));
    size_t scores_grid[3] = {(size_t)graph_size, (size_t)n_query, heads};
    if (status == MHFA_SUCCESS)
        status = mhfa_enqueue(ctx, k->scores, 3, scores_grid, NULL, "attention_scores");

    if (status == MHFA_SUCCESS)
        status = mhfa_set_args(ctx, k->softmax, "attention_softmax", 2, MHFA_ARG(weights_out),
                               MHFA_ARG(graph_size));
    size_t softmax_local = k->softmax_local, softmax_grid = rows * softmax_local;
    if (status == MHFA_SUCCESS)
        status =
            mhfa_enqueue(ctx, k->softmax, 1, &softmax_grid, &softmax_local, "attention_softmax");

    cl_mem weights = weights_out;
    if (status == MHFA_SUCCESS && p > 0.0f) {
        status = mhfa_buffer_reserve(ctx, &m->dropped, (size_t)count * sizeof(float));
        if (status == MHFA_SUCCESS)
            status = mhfa_set_args(ctx, k->dropout, "attention_dropout", 6, MHFA_ARG(weights_out),
                                   MHFA_ARG(m->dropped.mem), MHFA_ARG(count), MHFA_ARG(p),
                                   MHFA_ARG(seed), MHFA_ARG(offset));
        size_t dropout_grid = (size_t)count;
        if (status == MHFA_SUCCESS)
            status = mhfa_enqueue(ctx, k->dropout, 1, &dropout_grid, NULL, "attention_dropout");
        weights = m->dropped.mem;
    }

    if (status == MHFA_SUCCESS)
        status = mhfa_set_args(ctx, k->weights_times_values, "weights_times_values", 5,
                               MHFA_ARG(weights), MHFA_ARG(a->v), MHFA_ARG(a->out),
                               MHFA_ARG(n_query), MHFA_ARG(graph_size));
    size_t values_grid[3] = {(size_t)a->head_dim, (size_t)n_query, heads};
    if (status == MHFA_SUCCESS)
        status = mhfa_enqueue(ctx, k->weights_times_values, 3, values_grid, NULL,
                              "weights_times_values");
    return status;
}
