/* The projections as the kernels read them: transposed ([in_features][out_features], so a row of
 * outputs reads contiguous weights), the three input projections side by side in one
 * [input_dim][3 * embed_dim] matrix so that one launch can make Q, K and V. The absorbed path
 * also reads W_key as given ([embed_dim][input_dim]). Each is stored in the module's storage
 * type. The host mirrors in PyTorch's layout, rounded alike, stay the module's record of the
 * values. */
#include "internal.h"

#include <stdlib.h>

mhfa_status mhfa_device_weights_alloc(mhfa_module *m) {
    mhfa_context *ctx = m->ctx;
    size_t f = mhfa_dtype_bytes(m->cfg.dtype), e = (size_t)m->cfg.embed_dim;
    size_t din = (size_t)m->cfg.input_dim;
    cl_int err;
    m->in_t = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY, din * 3 * e * f, NULL, &err);
    if (err == CL_SUCCESS)
        m->out_t = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY, e * e * f, NULL, &err);
    if (err == CL_SUCCESS && m->cfg.bias)
        m->in_bias = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY, 3 * e * f, NULL, &err);
    if (err == CL_SUCCESS && mhfa_uses_flash_core(&m->cfg))
        m->key_rows = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY, e * din * f, NULL, &err);
    if (err == CL_SUCCESS && m->cfg.bias)
        m->out_bias = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY, e * f, NULL, &err);
    return err == CL_SUCCESS ? MHFA_SUCCESS : mhfa_fail_cl(ctx, err, "allocating the weights");
}

void mhfa_device_weights_release(mhfa_module *m) {
    cl_mem *all[5] = {&m->in_t, &m->out_t, &m->in_bias, &m->out_bias, &m->key_rows};
    for (int i = 0; i < 5; i++) {
        if (*all[i]) clReleaseMemObject(*all[i]);
        *all[i] = NULL;
    }
}

size_t mhfa_device_weights_bytes(const mhfa_module *m) {
    size_t e = (size_t)m->cfg.embed_dim, din = (size_t)m->cfg.input_dim;
    size_t key_rows = m->key_rows ? e * din : 0;
    return (din * 3 * e + e * e + (m->cfg.bias ? 4 * e : 0) + key_rows) *
           mhfa_dtype_bytes(m->cfg.dtype);
}

/* Blocking writes of one projection's stored values (transposed weight, bias or NULL, and for
 * W_key the weight as given where key_rows exists). */
static cl_int write_stored(mhfa_module *m, mhfa_projection which, const void *transposed,
                           const void *bias, const void *weight) {
    const size_t f = mhfa_dtype_bytes(m->cfg.dtype), e = (size_t)m->cfg.embed_dim;
    const size_t in = which == MHFA_W_OUT ? e : (size_t)m->cfg.input_dim;
    cl_command_queue queue = m->ctx->queue;
    cl_int err;
    if (which == MHFA_W_OUT) {
        err =
            clEnqueueWriteBuffer(queue, m->out_t, CL_TRUE, 0, e * e * f, transposed, 0, NULL, NULL);
        if (err == CL_SUCCESS && bias)
            err = clEnqueueWriteBuffer(queue, m->out_bias, CL_TRUE, 0, e * f, bias, 0, NULL, NULL);
        return err;
    }
    /* Columns [which * e, (which + 1) * e) of the [in][3e] matrix. */
    size_t origin[3] = {(size_t)which * e * f, 0, 0}, host_origin[3] = {0, 0, 0};
    size_t region[3] = {e * f, in, 1};
    err = clEnqueueWriteBufferRect(queue, m->in_t, CL_TRUE, origin, host_origin, region, 3 * e * f,
                                   0, e * f, 0, transposed, 0, NULL, NULL);
    if (err == CL_SUCCESS && bias)
        err = clEnqueueWriteBuffer(queue, m->in_bias, CL_TRUE, (size_t)which * e * f, e * f, bias,
                                   0, NULL, NULL);
    if (err == CL_SUCCESS && which == MHFA_W_KEY && m->key_rows)
        err =
            clEnqueueWriteBuffer(queue, m->key_rows, CL_TRUE, 0, e * in * f, weight, 0, NULL, NULL);
    return err;
}

/* Blocking write of one projection (weight [out][in] as PyTorch stores it; bias or NULL),
 * rounded to the storage type. */
mhfa_status mhfa_device_weights_write(mhfa_module *m, mhfa_projection which, const float *weight,
                                      const float *bias) {
    const size_t e = (size_t)m->cfg.embed_dim;
    const size_t in = which == MHFA_W_OUT ? e : (size_t)m->cfg.input_dim;
    float *transposed = malloc(in * e * sizeof(float));
    void *stored_weight = NULL, *stored_bias = NULL, *stored_rows = NULL;
    const void *weight_bytes = NULL, *bias_bytes = NULL, *rows_bytes = weight;
    if (transposed) {
        for (size_t o = 0; o < e; o++)
            for (size_t i = 0; i < in; i++)
                transposed[i * e + o] = weight[o * in + i];
        weight_bytes = mhfa_storage_copy(m->cfg.dtype, transposed, in * e, &stored_weight);
    }
    if (weight_bytes && bias) bias_bytes = mhfa_storage_copy(m->cfg.dtype, bias, e, &stored_bias);
    if (weight_bytes && which == MHFA_W_KEY && m->key_rows) /* W_key as given, for absorbed.c */
        rows_bytes = mhfa_storage_copy(m->cfg.dtype, weight, in * e, &stored_rows);
    mhfa_status status = MHFA_SUCCESS;
    if (!weight_bytes || (bias && !bias_bytes) || !rows_bytes) {
        status = mhfa_fail(m->ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    } else {
        /* On an out-of-order queue, forwards still in flight must read the old weights first. */
        cl_int err = m->ctx->out_of_order
                         ? clEnqueueBarrierWithWaitList(m->ctx->queue, 0, NULL, NULL)
                         : CL_SUCCESS;
        if (err != CL_SUCCESS)
            status = mhfa_fail_cl(m->ctx, err, "ordering the weight update");
        else if ((err = write_stored(m, which, weight_bytes, bias_bytes, rows_bytes)) != CL_SUCCESS)
            status = mhfa_fail_cl(m->ctx, err, "writing the weights to the device");
    }
    free(stored_rows);
    free(stored_bias);
    free(stored_weight);
    free(transposed);
    return status;
}
