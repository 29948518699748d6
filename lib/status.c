/* Version and status texts. */
#include "internal.h"

const char *mhfa_version_string(void) {
    return MHFA_VERSION_STRING;
}

const char *mhfa_status_string(mhfa_status status) {
    switch (status) {
    case MHFA_SUCCESS:
        return "success";
    case MHFA_ERROR_INVALID_ARGUMENT:
        return "invalid argument";
    case MHFA_ERROR_INVALID_SHAPE:
        return "invalid shape";
    case MHFA_ERROR_DEVICE_NOT_FOUND:
        return "device not found";
    case MHFA_ERROR_BUILD_FAILED:
        return "kernel build failed";
    case MHFA_ERROR_OPENCL:
        return "OpenCL error";
    case MHFA_ERROR_OUT_OF_MEMORY:
        return "out of memory";
    case MHFA_ERROR_IO:
        return "input/output error";
    case MHFA_ERROR_FORMAT:
        return "malformed or mismatched weights file";
    case MHFA_ERROR_UNSUPPORTED:
        return "unsupported by the device";
    case MHFA_ERROR_NOT_AVAILABLE:
        return "not available";
    }
    return "unknown status";
}
