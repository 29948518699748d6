/* Whether NVIDIA's OpenCL compiler takes Hopper's warp-group products (wgmma) through inline
 * PTX: builds three one-line kernels, mma.sync m16n8k16 (which the half kernels use), wgmma.fence
 * and wgmma.mma_async, on every NVIDIA device, and prints each build's status, the start of its
 * log, and the PTX version and target of what it produced. wgmma needs PTX's sm_90a target, which
 * nvcc emits only when asked for it (-arch=sm_90a); the question is what the OpenCL compiler
 * emits. Run by scripts/device-run.sh probe. */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char mma_sync[] =
    "__kernel void k(__global float *o, __global const uint *a) {\n"
    "    float c0 = 0, c1 = 0, c2 = 0, c3 = 0;\n"
    "    asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, \"\n"
    "                 \"{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\"\n"
    "                 : \"+f\"(c0), \"+f\"(c1), \"+f\"(c2), \"+f\"(c3)\n"
    "                 : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(a[4]), "
    "\"r\"(a[5]));\n"
    "    o[get_global_id(0)] = c0 + c1 + c2 + c3;\n"
    "}\n";
static const char wgmma_fence[] = "__kernel void k(__global float *o) {\n"
                                  "    asm volatile(\"wgmma.fence.sync.aligned;\");\n"
                                  "    o[0] = 1;\n"
                                  "}\n";
static const char wgmma_mma[] =
    "__kernel void k(__global float *o, ulong a, ulong b) {\n"
    "    float d0 = 0, d1 = 0, d2 = 0, d3 = 0;\n"
    "    asm volatile(\"wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 {%0, %1, %2, %3}, %4, "
    "\"\n"
    "                 \"%5, 1, 1, 1, 0, 0;\"\n"
    "                 : \"+f\"(d0), \"+f\"(d1), \"+f\"(d2), \"+f\"(d3) : \"l\"(a), \"l\"(b));\n"
    "    o[get_global_id(0)] = d0 + d1 + d2 + d3;\n"
    "}\n";

/* The PTX lines that tell the version and target, and any line naming the product. */
static void print_ptx_header(cl_program program) {
    size_t size = 0;
    if (clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS)
        return;
    unsigned char *binary = malloc(size + 1);
    if (!binary) return;
    unsigned char *binaries[1] = {binary};
    if (clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof binaries, binaries, NULL) ==
        CL_SUCCESS) {
        binary[size] = '\0';
        for (char *line = strtok((char *)binary, "\n"); line; line = strtok(NULL, "\n"))
            if (strstr(line, ".version") || strstr(line, ".target") || strstr(line, "mma"))
                printf("    %s\n", line);
    }
    free(binary);
}

static void try_build(cl_context context, cl_device_id device, const char *what,
                      const char *source) {
    cl_int status;
    cl_program program = clCreateProgramWithSource(context, 1, &source, NULL, &status);
    if (status != CL_SUCCESS) {
        printf("%s: clCreateProgramWithSource %d\n", what, status);
        return;
    }
    status = clBuildProgram(program, 1, &device, "", NULL, NULL);
    char log[2048] = "";
    clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    printf("%s: build %s (%d)\n  log: %.600s\n", what, status == CL_SUCCESS ? "ok" : "failed",
           status, log);
    if (status == CL_SUCCESS) print_ptx_header(program);
    clReleaseProgram(program);
}

int main(void) {
    cl_platform_id platforms[8];
    cl_uint n_platforms = 0;
    if (clGetPlatformIDs(8, platforms, &n_platforms) != CL_SUCCESS) return 1;
    for (cl_uint i = 0; i < n_platforms && i < 8; i++) {
        char name[256] = "";
        clGetPlatformInfo(platforms[i], CL_PLATFORM_NAME, sizeof name, name, NULL);
        cl_device_id device;
        if (!strstr(name, "NVIDIA") ||
            clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_GPU, 1, &device, NULL) != CL_SUCCESS)
            continue;
        char device_name[256] = "";
        clGetDeviceInfo(device, CL_DEVICE_NAME, sizeof device_name, device_name, NULL);
        printf("== %s\n", device_name);
        cl_context context = clCreateContext(NULL, 1, &device, NULL, NULL, NULL);
        if (!context) continue;
        try_build(context, device, "mma.sync m16n8k16", mma_sync);
        try_build(context, device, "wgmma.fence", wgmma_fence);
        try_build(context, device, "wgmma.mma_async", wgmma_mma);
        clReleaseContext(context);
    }
    return 0;
}
