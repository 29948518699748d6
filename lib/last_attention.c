/* Reading back what the last manual-path forward kept: its weights and its mask. */
#include "internal.h"

#include <string.h>

static mhfa_status read_stored(const mhfa_module *m, const mhfa_buffer *buf, void *data,
                               size_t bytes, const char *what) {
    cl_int err =
        clEnqueueReadBuffer(m->ctx->queue, buf->mem, CL_TRUE, 0, bytes, data, 0, NULL, NULL);
    return err == CL_SUCCESS ? MHFA_SUCCESS : mhfa_fail_cl(m->ctx, err, what);
}

mhfa_status mhfa_module_last_attention(const mhfa_module *m, int dims[4], float *weights,
                                       size_t capacity) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    if (!dims) return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT, "dims is NULL");
    if (!m->stored_valid)
        return mhfa_fail(
            m->ctx, MHFA_ERROR_NOT_AVAILABLE,
            m->cfg.store_attn_weights
                ? "no forward has run yet on this module"
                : "the module does not store attention weights (store_attn_weights 0)");
    size_t count = 1;
    for (int i = 0; i < 4; i++)
        count *= (size_t)m->stored_dims[i];
    if (weights && capacity < count)
        return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT,
                         "capacity %zu is less than the %zu weights", capacity, count);
    if (weights) {
        mhfa_status status =
            read_stored(m, &m->stored_weights, weights, count * sizeof(float), "reading weights");
        if (status != MHFA_SUCCESS) return status;
    }
    memcpy(dims, m->stored_dims, sizeof m->stored_dims);
    return MHFA_SUCCESS;
}

mhfa_status mhfa_module_last_mask(const mhfa_module *m, int *ndim, int dims[4], unsigned char *data,
                                  size_t capacity) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    if (!ndim || !dims)
        return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT, "%s is NULL", ndim ? "dims" : "ndim");
    if (!m->stored_valid)
        return mhfa_fail(m->ctx, MHFA_ERROR_NOT_AVAILABLE, "no manual-path forward has run");
    size_t count = m->stored_mask_ndim ? 1 : 0;
    for (int i = 0; i < m->stored_mask_ndim; i++)
        count *= (size_t)m->stored_mask_dims[i];
    if (data && capacity < count)
        return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT,
                         "capacity %zu is less than the mask's %zu elements", capacity, count);
    if (data && count > 0) {
        /* Kept as the keep mask (1 = may attend): turned back into the mask as given. */
        mhfa_status status = read_stored(m, &m->stored_keep, data, count, "reading the mask");
        if (status != MHFA_SUCCESS) return status;
        for (size_t i = 0; i < count; i++)
            data[i] = data[i] ? 0 : 1;
    }
    *ndim = m->stored_mask_ndim;
    memset(dims, 0, 4 * sizeof(int));
    memcpy(dims, m->stored_mask_dims, (size_t)m->stored_mask_ndim * sizeof(int));
    return MHFA_SUCCESS;
}
