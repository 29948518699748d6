/* The context's message: the text of its last failure. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kept when the message itself cannot be allocated. */
static char no_memory_for_message[] = "out of memory (while recording an error message)";

static void set_message(const mhfa_context *const_ctx, char *text) {
    /* The message is bookkeeping, not the context's state: even calls taking a const context
     * (accessors, readers) report their failures here. */
    mhfa_context *ctx = (mhfa_context *)const_ctx;
    if (ctx->message != no_memory_for_message) free(ctx->message);
    ctx->message = text ? text : no_memory_for_message;
}

mhfa_status mhfa_fail(const mhfa_context *ctx, mhfa_status status, const char *fmt, ...) {
    if (!ctx) return status;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (text) {
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    set_message(ctx, text);
    return status;
}

void mhfa_release_message(mhfa_context *ctx) {
    if (ctx->message != no_memory_for_message) free(ctx->message);
    ctx->message = NULL;
}

void mhfa_clear_error(const mhfa_context *ctx) {
    if (ctx && ctx->message && ctx->message[0]) set_message(ctx, calloc(1, 1));
}

const char *mhfa_context_error_message(const mhfa_context *ctx) {
    if (!ctx) return "no context (NULL)";
    return ctx->message ? ctx->message : "";
}

const char *mhfa_cl_error_name(cl_int err) {
    switch (err) {
#define NAME(code)                                                                                 \
    case code:                                                                                     \
        return #code;
        NAME(CL_SUCCESS)
        NAME(CL_DEVICE_NOT_FOUND)
        NAME(CL_DEVICE_NOT_AVAILABLE)
        NAME(CL_COMPILER_NOT_AVAILABLE)
        NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        NAME(CL_OUT_OF_RESOURCES)
        NAME(CL_OUT_OF_HOST_MEMORY)
        NAME(CL_BUILD_PROGRAM_FAILURE)
        NAME(CL_INVALID_VALUE)
        NAME(CL_INVALID_DEVICE)
        NAME(CL_INVALID_CONTEXT)
        NAME(CL_INVALID_COMMAND_QUEUE)
        NAME(CL_INVALID_MEM_OBJECT)
        NAME(CL_INVALID_BINARY)
        NAME(CL_INVALID_BUILD_OPTIONS)
        NAME(CL_INVALID_PROGRAM)
        NAME(CL_INVALID_PROGRAM_EXECUTABLE)
        NAME(CL_INVALID_KERNEL_NAME)
        NAME(CL_INVALID_KERNEL)
        NAME(CL_INVALID_ARG_INDEX)
        NAME(CL_INVALID_ARG_VALUE)
        NAME(CL_INVALID_ARG_SIZE)
        NAME(CL_INVALID_KERNEL_ARGS)
        NAME(CL_INVALID_WORK_DIMENSION)
        NAME(CL_INVALID_WORK_GROUP_SIZE)
        NAME(CL_INVALID_WORK_ITEM_SIZE)
        NAME(CL_INVALID_GLOBAL_OFFSET)
        NAME(CL_INVALID_EVENT_WAIT_LIST)
        NAME(CL_INVALID_EVENT)
        NAME(CL_INVALID_BUFFER_SIZE)
        NAME(CL_INVALID_GLOBAL_WORK_SIZE)
        NAME(CL_INVALID_OPERATION)
        NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
        NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET)
#undef NAME
    case -1001:
        return "CL_PLATFORM_NOT_FOUND_KHR";
    }
    return "unnamed OpenCL error";
}

mhfa_status mhfa_fail_cl(const mhfa_context *ctx, cl_int err, const char *what) {
    mhfa_status status = MHFA_ERROR_OPENCL;
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY ||
        err == CL_INVALID_BUFFER_SIZE)
        status = MHFA_ERROR_OUT_OF_MEMORY;
    return mhfa_fail(ctx, status, "%s failed: OpenCL error %d (%s)", what, (int)err,
                     mhfa_cl_error_name(err));
}
