/* Contexts: choosing the device, owning the queue, the compiled programs and the message. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Why the last create on this thread failed: there is no context to hold the message. */
static _Thread_local char create_error[4096];

const char *mhfa_last_create_error(void) {
    return create_error;
}

static mhfa_status create_failed(mhfa_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(create_error, sizeof create_error, fmt, ap);
    va_end(ap);
    return status;
}

typedef struct device_list {
    cl_platform_id platforms[16];
    cl_uint n_platforms;
    char platform_names[16][384];
} device_list;

static void append(char *text, size_t size, const char *fmt, ...) {
    size_t used = strlen(text);
    if (used + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + used, size - used, fmt, ap);
    va_end(ap);
}

/* The platform's name with its vendor, so that "pocl" finds "Portable Computing Language". */
static void platform_label(cl_platform_id platform, char *label, size_t size) {
    char name[256] = "", vendor[120] = "";
    clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof name, name, NULL);
    clGetPlatformInfo(platform, CL_PLATFORM_VENDOR, sizeof vendor, vendor, NULL);
    name[sizeof name - 1] = vendor[sizeof vendor - 1] = '\0';
    snprintf(label, size, "%s (%s)", name, vendor);
}

static cl_uint platform_devices(cl_platform_id platform, cl_device_type type, cl_device_id *ids,
                                cl_uint capacity) {
    cl_uint n = 0;
    if (clGetDeviceIDs(platform, type, capacity, ids, &n) != CL_SUCCESS) return 0;
    return n < capacity ? n : capacity;
}

static void device_name(cl_device_id id, char *name, size_t size) {
    name[0] = '\0';
    clGetDeviceInfo(id, CL_DEVICE_NAME, size, name, NULL);
    name[size - 1] = '\0';
}

static void describe_devices(const device_list *list, char *text, size_t size) {
    text[0] = '\0';
    for (cl_uint p = 0; p < list->n_platforms; p++) {
        append(text, size, "  platform %u: %s\n", p, list->platform_names[p]);
        cl_device_id ids[64];
        cl_uint n = platform_devices(list->platforms[p], CL_DEVICE_TYPE_ALL, ids, 64);
        for (cl_uint d = 0; d < n; d++) {
            char name[256];
            device_name(ids[d], name, sizeof name);
            append(text, size, "    device %u: %s\n", d, name);
        }
    }
}

static cl_device_id find_by_spec(const device_list *list, const mhfa_spec_part *platform_part,
                                 const mhfa_spec_part *device_part) {
    for (cl_uint p = 0; p < list->n_platforms; p++) {
        if (!mhfa_spec_part_matches(platform_part, (long)p, list->platform_names[p])) continue;
        cl_device_id ids[64];
        cl_uint n = platform_devices(list->platforms[p], CL_DEVICE_TYPE_ALL, ids, 64);
        for (cl_uint d = 0; d < n; d++) {
            char name[256];
            device_name(ids[d], name, sizeof name);
            if (mhfa_spec_part_matches(device_part, (long)d, name)) return ids[d];
        }
    }
    return NULL;
}

static cl_device_id find_default(const device_list *list) {
    cl_device_id id;
    for (cl_uint p = 0; p < list->n_platforms; p++)
        if (platform_devices(list->platforms[p], CL_DEVICE_TYPE_GPU, &id, 1) == 1) return id;
    for (cl_uint p = 0; p < list->n_platforms; p++)
        if (platform_devices(list->platforms[p], CL_DEVICE_TYPE_ALL, &id, 1) == 1) return id;
    return NULL;
}

static mhfa_status choose_device(const char *spec, cl_device_id *device) {
    device_list list;
    memset(&list, 0, sizeof list);
    cl_int err = clGetPlatformIDs(16, list.platforms, &list.n_platforms);
    if (err != CL_SUCCESS || list.n_platforms == 0)
        return create_failed(MHFA_ERROR_DEVICE_NOT_FOUND,
                             "no OpenCL platform found (clGetPlatformIDs: %d)", (int)err);
    if (list.n_platforms > 16) list.n_platforms = 16;
    for (cl_uint p = 0; p < list.n_platforms; p++)
        platform_label(list.platforms[p], list.platform_names[p], sizeof list.platform_names[p]);

    const char *source = "argument";
    if (!spec || !spec[0]) {
        spec = getenv("MHFA_DEVICE");
        source = "MHFA_DEVICE";
    }
    if (spec && spec[0]) {
        mhfa_spec_part platform_part, device_part;
        if (mhfa_parse_device_spec(spec, &platform_part, &device_part) != 0)
            return create_failed(MHFA_ERROR_DEVICE_NOT_FOUND,
                                 "device spec \"%s\" (%s) is not PLATFORM[:DEVICE]", spec, source);
        *device = find_by_spec(&list, &platform_part, &device_part);
    } else {
        *device = find_default(&list);
    }
    if (*device) return MHFA_SUCCESS;
    char devices[3000];
    describe_devices(&list, devices, sizeof devices);
    return create_failed(MHFA_ERROR_DEVICE_NOT_FOUND,
                         "no OpenCL device matches \"%s\" (%s); the devices are:\n%s",
                         spec ? spec : "", spec ? source : "default", devices);
}

static mhfa_status finish_context(mhfa_context *ctx, mhfa_context **out) {
    cl_command_queue_properties props = 0;
    clGetCommandQueueInfo(ctx->queue, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL);
    ctx->out_of_order = (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) != 0;
    if (mhfa_query_device_info(ctx->device, &ctx->info) != MHFA_SUCCESS) {
        mhfa_context_destroy(ctx);
        return create_failed(MHFA_ERROR_OPENCL, "could not query the device's properties");
    }
    ctx->message = calloc(1, 1);
    if (!ctx->message) {
        mhfa_context_destroy(ctx);
        return create_failed(MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    create_error[0] = '\0';
    *out = ctx;
    return MHFA_SUCCESS;
}

mhfa_status mhfa_context_create(const char *device_spec, mhfa_context **out) {
    if (!out) return create_failed(MHFA_ERROR_INVALID_ARGUMENT, "ctx (output) is NULL");
    *out = NULL;
    cl_device_id device;
    mhfa_status status = choose_device(device_spec, &device);
    if (status != MHFA_SUCCESS) return status;
    mhfa_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return create_failed(MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    ctx->device = device;
    cl_int err;
    ctx->cl_ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    if (err == CL_SUCCESS) ctx->queue = clCreateCommandQueue(ctx->cl_ctx, device, 0, &err);
    if (err != CL_SUCCESS) {
        mhfa_context_destroy(ctx);
        return create_failed(err == CL_OUT_OF_HOST_MEMORY ? MHFA_ERROR_OUT_OF_MEMORY
                                                          : MHFA_ERROR_OPENCL,
                             "creating the OpenCL context or queue failed: %d (%s)", (int)err,
                             mhfa_cl_error_name(err));
    }
    return finish_context(ctx, out);
}

mhfa_status mhfa_context_create_from_queue(cl_command_queue queue, mhfa_context **out) {
    if (!out) return create_failed(MHFA_ERROR_INVALID_ARGUMENT, "ctx (output) is NULL");
    *out = NULL;
    if (!queue) return create_failed(MHFA_ERROR_INVALID_ARGUMENT, "queue is NULL");
    cl_context cl_ctx;
    cl_device_id device;
    cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof cl_ctx, &cl_ctx, NULL);
    if (err == CL_SUCCESS)
        err = clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof device, &device, NULL);
    if (err != CL_SUCCESS)
        return create_failed(MHFA_ERROR_INVALID_ARGUMENT, "queue is not a valid queue: %d (%s)",
                             (int)err, mhfa_cl_error_name(err));
    mhfa_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return create_failed(MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    clRetainCommandQueue(queue);
    clRetainContext(cl_ctx);
    ctx->queue = queue;
    ctx->cl_ctx = cl_ctx;
    ctx->device = device;
    return finish_context(ctx, out);
}

void mhfa_context_destroy(mhfa_context *ctx) {
    if (!ctx) return;
    for (mhfa_program_entry *e = ctx->programs, *next; e; e = next) {
        next = e->next;
        clReleaseProgram(e->program);
        free(e->key);
        free(e);
    }
    if (ctx->queue) clReleaseCommandQueue(ctx->queue);
    if (ctx->cl_ctx) clReleaseContext(ctx->cl_ctx);
    mhfa_release_message(ctx);
    free(ctx);
}

const char *mhfa_context_device_name(const mhfa_context *ctx) {
    return ctx ? ctx->info.device_name : "";
}

cl_command_queue mhfa_context_queue(const mhfa_context *ctx) {
    return ctx ? ctx->queue : NULL;
}

cl_context mhfa_context_cl_context(const mhfa_context *ctx) {
    return ctx ? ctx->cl_ctx : NULL;
}

cl_device_id mhfa_context_device(const mhfa_context *ctx) {
    return ctx ? ctx->device : NULL;
}
