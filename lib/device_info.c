/* What the library reads off a device once, when a context is made. */
#include "internal.h"

#include <string.h>

/* cl_nv_device_attribute_query's CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV (cl_ext.h may lack it). */
#define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV_VALUE 0x4000

static void query_text(cl_device_id device, cl_device_info what, char *text, size_t size) {
    if (clGetDeviceInfo(device, what, size, text, NULL) != CL_SUCCESS) text[0] = '\0';
    text[size - 1] = '\0';
}

mhfa_status mhfa_query_device_info(cl_device_id device, mhfa_device_info *info) {
    memset(info, 0, sizeof *info);
    cl_platform_id platform = NULL;
    cl_int err = clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
    if (err == CL_SUCCESS && platform)
        err = clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof info->platform_name,
                                info->platform_name, NULL);
    if (err != CL_SUCCESS) return MHFA_ERROR_OPENCL;
    info->platform_name[sizeof info->platform_name - 1] = '\0';
    query_text(device, CL_DEVICE_NAME, info->device_name, sizeof info->device_name);
    query_text(device, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
    query_text(device, CL_DEVICE_VERSION, info->device_version, sizeof info->device_version);
    cl_bool compiler = CL_FALSE;
    if (clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof info->type, &info->type, NULL) ||
        clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof info->max_work_group_size,
                        &info->max_work_group_size, NULL) ||
        clGetDeviceInfo(device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof info->local_mem_size,
                        &info->local_mem_size, NULL) ||
        clGetDeviceInfo(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof info->max_alloc_size,
                        &info->max_alloc_size, NULL) ||
        clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof info->global_mem_size,
                        &info->global_mem_size, NULL) ||
        clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof info->compute_units,
                        &info->compute_units, NULL) ||
        clGetDeviceInfo(device, CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler, NULL))
        return MHFA_ERROR_OPENCL;
    info->compiler_available = compiler == CL_TRUE;
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(device, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    info->hardware_fma = (fp & CL_FP_FMA) && !(fp & CL_FP_SOFT_FLOAT);
    char extensions[4096];
    query_text(device, CL_DEVICE_EXTENSIONS, extensions, sizeof extensions);
    cl_uint major = 0;
    if (strstr(extensions, "cl_nv_device_attribute_query") &&
        clGetDeviceInfo(device, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV_VALUE, sizeof major, &major,
                        NULL) == CL_SUCCESS)
        info->nv_compute_major = (int)major;
    return MHFA_SUCCESS;
}
