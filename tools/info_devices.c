/* OpenCL's platforms and devices as mhfa-info lists them, and the specs that select them. */
#include "info_devices.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OpenCL 2.1's CL_DEVICE_MAX_NUM_SUB_GROUPS (the headers are used at version 1.2). */
#define DEVICE_MAX_NUM_SUB_GROUPS 0x105C

static void query_device_text(cl_device_id id, cl_device_info what, char *text, size_t size) {
    if (clGetDeviceInfo(id, what, size, text, NULL) != CL_SUCCESS) snprintf(text, size, "?");
    text[size - 1] = '\0';
}

/* A number; 0 where the query fails (printed as such). */
static void query_device_value(cl_device_id id, cl_device_info what, size_t size, void *value) {
    if (clGetDeviceInfo(id, what, size, value, NULL) != CL_SUCCESS) memset(value, 0, size);
}

static void query_platform_text(cl_platform_id id, cl_platform_info what, char *text, size_t size) {
    if (clGetPlatformInfo(id, what, size, text, NULL) != CL_SUCCESS) snprintf(text, size, "?");
    text[size - 1] = '\0';
}

void platform_properties_read(cl_platform_id id, platform_properties *p) {
    query_platform_text(id, CL_PLATFORM_NAME, p->name, sizeof p->name);
    query_platform_text(id, CL_PLATFORM_VENDOR, p->vendor, sizeof p->vendor);
    query_platform_text(id, CL_PLATFORM_VERSION, p->version, sizeof p->version);
}

/* The extension list, allocated ("" when it cannot be read); NULL only when out of memory. */
static char *device_extensions(cl_device_id id) {
    size_t size = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, 0, NULL, &size) != CL_SUCCESS) size = 0;
    char *text = malloc(size + 1);
    if (!text) return NULL;
    if (size == 0 || clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, size, text, NULL) != CL_SUCCESS)
        size = 0;
    text[size] = '\0';
    return text;
}

/* Whether the space-separated list holds the name as a whole word. */
static int has_extension(const char *list, const char *name) {
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len) {
        int starts = p == list || p[-1] == ' ';
        int ends = p[len] == '\0' || p[len] == ' ';
        if (starts && ends) return 1;
    }
    return 0;
}

static void describe_type(cl_device_type type, char *text, size_t size) {
    static const struct {
        cl_device_type bit;
        const char *name;
    } names[] = {{CL_DEVICE_TYPE_CPU, "CPU"},
                 {CL_DEVICE_TYPE_GPU, "GPU"},
                 {CL_DEVICE_TYPE_ACCELERATOR, "accelerator"},
                 {CL_DEVICE_TYPE_CUSTOM, "custom"}};
    text[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(type & names[i].bit)) continue;
        size_t used = strlen(text);
        snprintf(text + used, size - used, "%s%s", used ? "+" : "", names[i].name);
    }
    if (!text[0]) snprintf(text, size, "other (0x%llx)", (unsigned long long)type);
}

/* Subgroups through an extension, or in core from OpenCL 2.1 where the device has any. */
static void describe_subgroups(cl_device_id id, const char *extensions, const char *version,
                               char *text, size_t size) {
    int major = 0, minor = 0;
    cl_uint most = 0;
    text[0] = '\0';
    if (has_extension(extensions, "cl_khr_subgroups")) {
        snprintf(text, size, "cl_khr_subgroups");
    } else if (has_extension(extensions, "cl_intel_subgroups")) {
        snprintf(text, size, "cl_intel_subgroups");
    } else if (sscanf(version, "OpenCL %d.%d", &major, &minor) == 2 &&
               (major > 2 || (major == 2 && minor >= 1)) &&
               clGetDeviceInfo(id, DEVICE_MAX_NUM_SUB_GROUPS, sizeof most, &most, NULL) ==
                   CL_SUCCESS &&
               most > 0) {
        snprintf(text, size, "core, up to %u a work-group", most);
    }
}

void device_properties_read(cl_device_id id, device_properties *p) {
    query_device_text(id, CL_DEVICE_NAME, p->name, sizeof p->name);
    query_device_text(id, CL_DEVICE_VENDOR, p->vendor, sizeof p->vendor);
    query_device_text(id, CL_DEVICE_VERSION, p->device_version, sizeof p->device_version);
    query_device_text(id, CL_DRIVER_VERSION, p->driver_version, sizeof p->driver_version);
    query_device_text(id, CL_DEVICE_OPENCL_C_VERSION, p->c_version, sizeof p->c_version);
    cl_device_type type = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof type, &type, NULL) != CL_SUCCESS) type = 0;
    describe_type(type, p->type, sizeof p->type);
    query_device_value(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof p->compute_units, &p->compute_units);
    query_device_value(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof p->global_mem, &p->global_mem);
    query_device_value(id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof p->local_mem, &p->local_mem);
    query_device_value(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof p->max_alloc, &p->max_alloc);
    query_device_value(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof p->max_work_group,
                       &p->max_work_group);
    cl_device_fp_config fp64 = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL) != CL_SUCCESS)
        fp64 = 0;
    char *extensions = device_extensions(id);
    const char *list = extensions ? extensions : "";
    p->fp16 = has_extension(list, "cl_khr_fp16");
    p->fp64 = fp64 != 0 || has_extension(list, "cl_khr_fp64");
    describe_subgroups(id, list, p->device_version, p->subgroups, sizeof p->subgroups);
    free(extensions);
}

cl_uint platform_ids(cl_platform_id **ids, char *error, size_t size) {
    cl_uint n = 0;
    *ids = NULL;
    cl_int err = clGetPlatformIDs(0, NULL, &n);
    if (err == CL_SUCCESS && n > 0 && !(*ids = malloc(n * sizeof **ids)))
        err = CL_OUT_OF_HOST_MEMORY;
    if (err == CL_SUCCESS && n > 0) err = clGetPlatformIDs(n, *ids, NULL);
    if (err == CL_SUCCESS && n > 0) return n;
    snprintf(error, size, "no OpenCL platform (clGetPlatformIDs: %d, %s)", (int)err,
             mhfa_cl_error_name(err));
    free(*ids);
    *ids = NULL;
    return 0;
}

cl_uint platform_device_ids(cl_platform_id platform, cl_device_id **ids, char *error, size_t size) {
    cl_uint n = 0;
    *ids = NULL;
    cl_int err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 0, NULL, &n);
    if (err == CL_DEVICE_NOT_FOUND || (err == CL_SUCCESS && n == 0)) {
        snprintf(error, size, "no devices");
        return 0;
    }
    if (err == CL_SUCCESS && !(*ids = malloc(n * sizeof **ids))) err = CL_OUT_OF_HOST_MEMORY;
    if (err == CL_SUCCESS) err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, n, *ids, NULL);
    if (err != CL_SUCCESS) {
        snprintf(error, size, "clGetDeviceIDs: %d (%s)", (int)err, mhfa_cl_error_name(err));
        free(*ids);
        *ids = NULL;
        return 0;
    }
    return n;
}

void trim_trailing_space(char *text) {
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
}

cl_device_id device_chosen_by(const char *spec, char *error, size_t size) {
    mhfa_context *ctx = NULL;
    mhfa_status s = mhfa_context_create(spec, &ctx);
    if (s != MHFA_SUCCESS) {
        snprintf(error, size, "%s: %s", mhfa_status_string(s), mhfa_last_create_error());
        trim_trailing_space(error); /* the list of devices ends in a newline */
        return NULL;
    }
    cl_device_id id = mhfa_context_device(ctx);
    mhfa_context_destroy(ctx);
    return id;
}

int index_spec_of(cl_device_id device, char *spec, size_t size) {
    cl_platform_id platforms[64];
    cl_uint n_platforms = 0;
    if (clGetPlatformIDs(64, platforms, &n_platforms) != CL_SUCCESS) return 0;
    for (cl_uint p = 0; p < n_platforms && p < 64; p++) {
        cl_device_id ids[256];
        cl_uint n = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 256, ids, &n) != CL_SUCCESS) continue;
        for (cl_uint d = 0; d < n && d < 256; d++) {
            if (ids[d] != device) continue;
            snprintf(spec, size, "%u:%u", p, d);
            return 1;
        }
    }
    return 0;
}
