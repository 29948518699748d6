/* Programs: kernel text (embedded, or from MHFA_KERNEL_DIR), building per device with -D
 * options, and the context's list of what it built. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_text_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)size + 1))) {
            if (fread(text, 1, (size_t)size, f) == (size_t)size) {
                text[size] = '\0';
            } else {
                free(text);
                text = NULL;
            }
        }
    }
    fclose(f);
    return text;
}

/* The text of kernels/NAME.cl; *owned is set when it was read from a file. */
static mhfa_status kernel_text(const mhfa_context *ctx, const char *name, char **owned,
                               const char **text) {
    *owned = NULL;
    const char *dir = getenv("MHFA_KERNEL_DIR");
    if (dir && dir[0]) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.cl", dir, name);
        *owned = read_text_file(path);
        if (!*owned)
            return mhfa_fail(ctx, MHFA_ERROR_IO, "cannot read kernel source %s (MHFA_KERNEL_DIR)",
                             path);
        *text = *owned;
        return MHFA_SUCCESS;
    }
    *text = mhfa_embedded_kernel(name);
    if (!*text) return mhfa_fail(ctx, MHFA_ERROR_BUILD_FAILED, "no kernel source named %s", name);
    return MHFA_SUCCESS;
}

static mhfa_status build_log_failure(const mhfa_context *ctx, cl_program program, cl_int err,
                                     const char *key) {
    size_t size = 0;
    clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &size);
    char *log = malloc(size + 1);
    if (log) {
        if (clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, size, log, NULL))
            size = 0;
        log[size] = '\0';
    }
    mhfa_status status =
        mhfa_fail(ctx, MHFA_ERROR_BUILD_FAILED,
                  "building kernels [%s] failed: OpenCL error %d (%s); build log:\n%s", key,
                  (int)err, mhfa_cl_error_name(err), log ? log : "(none)");
    free(log);
    return status;
}

/* The cache key: everything that decides the binary. */
static char *binary_key(const mhfa_context *ctx, const char *const *texts, int n,
                        const char *options) {
    size_t size = strlen(ctx->info.platform_name) + strlen(ctx->info.device_name) +
                  strlen(ctx->info.driver_version) + strlen(options) + 8;
    for (int i = 0; i < n; i++)
        size += strlen(texts[i]) + 1;
    char *key = malloc(size);
    if (!key) return NULL;
    snprintf(key, size, "%s\n%s\n%s\n%s\n", ctx->info.platform_name, ctx->info.device_name,
             ctx->info.driver_version, options);
    for (int i = 0; i < n; i++)
        strcat(key, texts[i]);
    return key;
}

static mhfa_status build_program(mhfa_context *ctx, const char *const *texts, int n,
                                 const char *options, const char *name_key, cl_program *out) {
    char *cache_key = binary_key(ctx, texts, n, options);
    if (!cache_key) return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    *out = mhfa_binary_cache_load(ctx, cache_key);
    if (*out) {
        free(cache_key);
        return MHFA_SUCCESS;
    }
    if (!ctx->info.compiler_available) {
        free(cache_key);
        return mhfa_fail(ctx, MHFA_ERROR_UNSUPPORTED,
                         "device %s has no compiler and no cached binary for [%s] was found "
                         "(MHFA_CACHE_DIR)",
                         ctx->info.device_name, name_key);
    }
    cl_int err;
    cl_program program =
        clCreateProgramWithSource(ctx->cl_ctx, (cl_uint)n, (const char **)texts, NULL, &err);
    if (err != CL_SUCCESS) {
        free(cache_key);
        return mhfa_fail_cl(ctx, err, "clCreateProgramWithSource");
    }
    err = clBuildProgram(program, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        mhfa_status status = build_log_failure(ctx, program, err, name_key);
        clReleaseProgram(program);
        free(cache_key);
        return status;
    }
    mhfa_binary_cache_store(ctx, cache_key, program);
    free(cache_key);
    *out = program;
    return MHFA_SUCCESS;
}

mhfa_status mhfa_get_program(mhfa_context *ctx, const char *const *names, int n_names,
                             const char *kernel_options, cl_program *program) {
    /* Options every program gets: whether fma() is a single instruction here (a CPU runtime may
     * not say so through FP_FAST_FMAF although the device reports fused multiply-add), whether
     * NVIDIA's tensor-core instructions may be written as inline PTX, and whether native_exp is
     * accurate enough for the softmax (common.cl). */
    char options[512];
    snprintf(options, sizeof options, "%s%s%s%s",
             ctx->info.hardware_fma ? "-D MHFA_HARDWARE_FMA " : "",
             mhfa_has_ptx_mma(ctx) ? "-D MHFA_PTX_MMA " : "",
             mhfa_has_native_exp(ctx) ? "-D MHFA_NATIVE_EXP " : "", kernel_options);
    char key[1024] = "";
    for (int i = 0; i < n_names; i++) {
        strncat(key, names[i], sizeof key - strlen(key) - 1);
        strncat(key, ".cl ", sizeof key - strlen(key) - 1);
    }
    strncat(key, options, sizeof key - strlen(key) - 1);
    for (mhfa_program_entry *e = ctx->programs; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            *program = e->program;
            return MHFA_SUCCESS;
        }
    }
    enum { MAX_SOURCES = 8 };
    const char *texts[MAX_SOURCES];
    char *owned[MAX_SOURCES] = {0};
    mhfa_status status = n_names <= MAX_SOURCES ? MHFA_SUCCESS : MHFA_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < n_names && status == MHFA_SUCCESS; i++)
        status = kernel_text(ctx, names[i], &owned[i], &texts[i]);
    cl_program built = NULL;
    if (status == MHFA_SUCCESS) status = build_program(ctx, texts, n_names, options, key, &built);
    for (int i = 0; i < MAX_SOURCES; i++)
        free(owned[i]);
    if (status != MHFA_SUCCESS) return status;

    mhfa_program_entry *entry = calloc(1, sizeof *entry);
    if (entry) entry->key = malloc(strlen(key) + 1);
    if (!entry || !entry->key) {
        free(entry);
        clReleaseProgram(built);
        return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    strcpy(entry->key, key);
    entry->program = built;
    entry->next = ctx->programs;
    ctx->programs = entry;
    *program = built;
    return MHFA_SUCCESS;
}

mhfa_status mhfa_create_kernel(mhfa_context *ctx, cl_program program, const char *name,
                               cl_kernel *kernel) {
    cl_int err;
    *kernel = clCreateKernel(program, name, &err);
    if (err != CL_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "clCreateKernel(%s)", name);
        return mhfa_fail_cl(ctx, err, what);
    }
    return MHFA_SUCCESS;
}
