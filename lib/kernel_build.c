/* Building kernels: a program of common.cl and the named sources with -D options, its kernels
 * created, and kept only where a work-group of the size the caller will launch fits the device
 * (checked before building) and each kernel's real limits (checked after). */
#include "internal.h"

int mhfa_group_fits_device(const mhfa_context *ctx, size_t group_size, size_t local_bytes) {
    return group_size <= ctx->info.max_work_group_size && local_bytes <= ctx->info.local_mem_size;
}

int mhfa_kernel_fits(const mhfa_context *ctx, cl_kernel kernel, size_t group_size) {
    size_t limit = 0;
    cl_ulong local = 0;
    if (clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof limit,
                                 &limit, NULL) != CL_SUCCESS ||
        clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof local,
                                 &local, NULL) != CL_SUCCESS)
        return 0;
    return group_size <= limit && local <= ctx->info.local_mem_size;
}

void mhfa_release_kernel(cl_kernel *kernel) {
    if (*kernel) clReleaseKernel(*kernel);
    *kernel = NULL;
}

mhfa_status mhfa_build_kernels(mhfa_context *ctx, const char *const *sources, int n_sources,
                               const char *options, const char *const *names,
                               cl_kernel *const *kernels, int n_kernels) {
    const char *all[1 + MHFA_MAX_SOURCES] = {"common"};
    for (int i = 0; i < n_sources; i++)
        all[i + 1] = sources[i];
    cl_program program;
    mhfa_status status = mhfa_get_program(ctx, all, n_sources + 1, options, &program);
    for (int i = 0; i < n_kernels && status == MHFA_SUCCESS; i++)
        status = mhfa_create_kernel(ctx, program, names[i], kernels[i]);
    return status;
}

mhfa_status mhfa_build_if_fits(mhfa_context *ctx, const mhfa_kernel_build *b, int *fits) {
    *fits = 0;
    if (!mhfa_group_fits_device(ctx, b->group, b->local_bytes)) return MHFA_SUCCESS;
    char options[512]; /* the kernel checks its arrays against LOCAL_BYTES (common.cl) */
    if (snprintf(options, sizeof options, "%s -D LOCAL_BYTES=%zu", b->options, b->local_bytes) >=
        (int)sizeof options)
        return mhfa_fail(ctx, MHFA_ERROR_BUILD_FAILED, "kernel options longer than %zu bytes",
                         sizeof options);
    mhfa_status status = mhfa_build_kernels(ctx, b->sources, b->n_sources, options, b->names,
                                            b->kernels, b->n_kernels);
    if (status != MHFA_SUCCESS) return status;
    *fits = 1;
    for (int i = 0; i < b->n_kernels; i++)
        *fits = *fits && mhfa_kernel_fits(ctx, *b->kernels[i], b->group);
    for (int i = 0; i < b->n_kernels && !*fits; i++)
        mhfa_release_kernel(b->kernels[i]);
    return MHFA_SUCCESS;
}
