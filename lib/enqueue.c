/* Small helpers for enqueueing: argument setting, NDRanges, growing scratch buffers. */
#include "internal.h"

#include <stdio.h>

size_t mhfa_round_up(size_t n, size_t multiple) {
    return (n + multiple - 1) / multiple * multiple;
}

mhfa_status mhfa_set_args(mhfa_context *ctx, cl_kernel kernel, const char *what, int count, ...) {
    va_list ap;
    va_start(ap, count);
    cl_int err = CL_SUCCESS;
    int i = 0;
    for (; i < count && err == CL_SUCCESS; i++) {
        size_t size = va_arg(ap, size_t);
        const void *value = va_arg(ap, const void *);
        err = clSetKernelArg(kernel, (cl_uint)i, size, value);
    }
    va_end(ap);
    if (err == CL_SUCCESS) return MHFA_SUCCESS;
    char text[128];
    snprintf(text, sizeof text, "clSetKernelArg(%s, argument %d)", what, i - 1);
    return mhfa_fail_cl(ctx, err, text);
}

mhfa_status mhfa_enqueue(mhfa_context *ctx, cl_kernel kernel, cl_uint dims, const size_t *global,
                         const size_t *local, const char *what) {
    cl_int err =
        clEnqueueNDRangeKernel(ctx->queue, kernel, dims, NULL, global, local, 0, NULL, NULL);
    /* On an out-of-order queue the next command must still see this one's results. */
    if (err == CL_SUCCESS && ctx->out_of_order)
        err = clEnqueueBarrierWithWaitList(ctx->queue, 0, NULL, NULL);
    if (err == CL_SUCCESS) return MHFA_SUCCESS;
    char text[128];
    snprintf(text, sizeof text, "enqueueing %s", what);
    return mhfa_fail_cl(ctx, err, text);
}

mhfa_status mhfa_buffer_reserve(mhfa_context *ctx, mhfa_buffer *buf, size_t bytes) {
    if (bytes == 0) bytes = sizeof(float);
    if (buf->mem && buf->bytes >= bytes) return MHFA_SUCCESS;
    if (bytes > ctx->info.max_alloc_size)
        return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY,
                         "a scratch buffer of %zu bytes exceeds the device's largest allocation "
                         "(%llu bytes)",
                         bytes, (unsigned long long)ctx->info.max_alloc_size);
    cl_int err;
    cl_mem mem = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS) return mhfa_fail_cl(ctx, err, "allocating a scratch buffer");
    mhfa_buffer_release(buf);
    buf->mem = mem;
    buf->bytes = bytes;
    return MHFA_SUCCESS;
}

void mhfa_buffer_release(mhfa_buffer *buf) {
    if (buf->mem) clReleaseMemObject(buf->mem);
    buf->mem = NULL;
    buf->bytes = 0;
}
