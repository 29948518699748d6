/* Projections through CLBlast's SGEMM, chosen by the tuning file where it measures faster than
 * mhfa's own kernels. A plain GEMM writes rows, so the inputs' projections go through a row
 * buffer that rows_to_heads scatters (adding the bias) into the per-head layout, and the output
 * projection reads the context gathered by heads_to_rows and gets its bias added after. */
#include "internal.h"

#ifdef MHFA_HAVE_CLBLAST
#include <clblast_c.h>

int mhfa_clblast_available(void) {
    return 1;
}

/* c[m][n] = a[m][k] b[k][n], row-major; b starts at column b_col of a matrix ld_b wide. */
static mhfa_status sgemm(mhfa_module *m, size_t rows, size_t n, size_t k, cl_mem a, cl_mem b,
                         size_t b_col, size_t ld_b, cl_mem c, const char *what) {
    mhfa_context *ctx = m->ctx;
    cl_event event = NULL;
    CLBlastStatusCode code =
        CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, rows, n, k,
                     1.0f, a, 0, k, b, b_col, ld_b, 0.0f, c, 0, n, &ctx->queue, &event);
    if (event) clReleaseEvent(event);
    if (code != CLBlastSuccess)
        return mhfa_fail(ctx,
                         code == CLBlastOpenCLOutOfResources || code == CLBlastOpenCLOutOfHostMemory
                             ? MHFA_ERROR_OUT_OF_MEMORY
                             : MHFA_ERROR_OPENCL,
                         "CLBlastSgemm (%s) failed: status %d", what, (int)code);
    if (ctx->out_of_order && clEnqueueBarrierWithWaitList(ctx->queue, 0, NULL, NULL) != CL_SUCCESS)
        return mhfa_fail(ctx, MHFA_ERROR_OPENCL, "enqueueing a barrier after CLBlastSgemm");
    return MHFA_SUCCESS;
}

/* GEMM of x against columns [col0, col0 + width) of W^T, then scattered into y[0..2]. */
static mhfa_status project_to_heads(mhfa_module *m, cl_mem x, int rows, int seq_len, int col0,
                                    int width, cl_mem y0, cl_mem y1, cl_mem y2) {
    const size_t e = (size_t)m->cfg.embed_dim;
    mhfa_status status =
        mhfa_buffer_reserve(m->ctx, &m->gemm_rows, (size_t)rows * (size_t)width * sizeof(float));
    if (status == MHFA_SUCCESS)
        status = sgemm(m, (size_t)rows, (size_t)width, (size_t)m->cfg.input_dim, x, m->in_t,
                       (size_t)col0, 3 * e, m->gemm_rows.mem, "input projection");
    cl_int has_bias = m->cfg.bias != 0, out_width = m->cfg.embed_dim;
    cl_mem bias = has_bias ? m->in_bias : m->in_t; /* any valid buffer when unused */
    if (status == MHFA_SUCCESS)
        status = mhfa_set_args(
            m->ctx, m->kernels.rows_to_heads, "rows_to_heads", 11, MHFA_ARG(m->gemm_rows.mem),
            MHFA_ARG(width), MHFA_ARG(bias), MHFA_ARG(has_bias), MHFA_ARG(col0), MHFA_ARG(y0),
            MHFA_ARG(y1), MHFA_ARG(y2), MHFA_ARG(rows), MHFA_ARG(out_width), MHFA_ARG(seq_len));
    size_t grid[2] = {(size_t)width, (size_t)rows};
    if (status == MHFA_SUCCESS)
        status = mhfa_enqueue(m->ctx, m->kernels.rows_to_heads, 2, grid, NULL, "rows_to_heads");
    return status;
}

mhfa_status mhfa_clblast_project_inputs(mhfa_module *m, int batch, int n_query, int graph_size,
                                        cl_mem q, cl_mem h) {
    const int e = m->cfg.embed_dim;
    cl_mem qh = m->q_heads.mem, kh = m->k_heads.mem, vh = m->v_heads.mem;
    if (!h) return project_to_heads(m, q, batch * n_query, n_query, 0, 3 * e, qh, kh, vh);
    mhfa_status status = project_to_heads(m, q, batch * n_query, n_query, 0, e, qh, qh, qh);
    if (status == MHFA_SUCCESS)
        status = project_to_heads(m, h, batch * graph_size, graph_size, e, 2 * e, kh, vh, vh);
    return status;
}

mhfa_status mhfa_clblast_project_output(mhfa_module *m, int batch, int n_query, cl_mem context,
                                        cl_mem out) {
    mhfa_context *ctx = m->ctx;
    cl_int rows = batch * n_query, width = m->cfg.embed_dim, seq_len = n_query;
    size_t grid[2] = {(size_t)width, (size_t)rows};
    mhfa_status status =
        mhfa_buffer_reserve(ctx, &m->gemm_rows, (size_t)rows * (size_t)width * sizeof(float));
    if (status == MHFA_SUCCESS)
        status = mhfa_set_args(ctx, m->kernels.heads_to_rows, "heads_to_rows", 5, MHFA_ARG(context),
                               MHFA_ARG(m->gemm_rows.mem), MHFA_ARG(rows), MHFA_ARG(width),
                               MHFA_ARG(seq_len));
    if (status == MHFA_SUCCESS)
        status = mhfa_enqueue(ctx, m->kernels.heads_to_rows, 2, grid, NULL, "heads_to_rows");
    if (status == MHFA_SUCCESS)
        status = sgemm(m, (size_t)rows, (size_t)width, (size_t)width, m->gemm_rows.mem, m->out_t, 0,
                       (size_t)width, out, "output projection");
    if (status != MHFA_SUCCESS || !m->cfg.bias) return status;
    status = mhfa_set_args(ctx, m->kernels.add_bias, "add_bias", 4, MHFA_ARG(out),
                           MHFA_ARG(m->out_bias), MHFA_ARG(rows), MHFA_ARG(width));
    return status == MHFA_SUCCESS
               ? mhfa_enqueue(ctx, m->kernels.add_bias, 2, grid, NULL, "add_bias")
               : status;
}

#else /* built without CLBlast: the tuning file's "clblast" is ignored */

int mhfa_clblast_available(void) {
    return 0;
}

mhfa_status mhfa_clblast_project_inputs(mhfa_module *m, int batch, int n_query, int graph_size,
                                        cl_mem q, cl_mem h) {
    (void)batch, (void)n_query, (void)graph_size, (void)q, (void)h;
    return mhfa_fail(m->ctx, MHFA_ERROR_UNSUPPORTED, "mhfa was built without CLBlast");
}

mhfa_status mhfa_clblast_project_output(mhfa_module *m, int batch, int n_query, cl_mem context,
                                        cl_mem out) {
    (void)batch, (void)n_query, (void)context, (void)out;
    return mhfa_fail(m->ctx, MHFA_ERROR_UNSUPPORTED, "mhfa was built without CLBlast");
}
#endif
