/* A program with one fault of each kind that tests/oclgrind/run.sh must count (the ctest
 * oclgrind_canary checks its summary): a never-written value stored to global memory, a read past
 * the end of a buffer, two work-items writing one element, and an OpenCL API error. */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>

static const char *source =
    "__kernel void canary(__global const float *never_written, __global float *out, int n) {\n"
    "    const int i = get_global_id(0);\n"
    "    if (i == 0) out[0] = never_written[0];\n"
    "    if (i == 1) out[1] = never_written[n];\n"
    "    if (i >= 2) out[2] = (float)i;\n"
    "}\n";

int main(void) {
    cl_platform_id platform;
    cl_device_id device;
    cl_int err = clGetPlatformIDs(1, &platform, NULL);
    if (err == CL_SUCCESS) err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL);
    if (err != CL_SUCCESS) return fprintf(stderr, "canary: no OpenCL device\n"), 1;
    cl_context ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    cl_command_queue queue = clCreateCommandQueue(ctx, device, 0, &err);
    cl_program program = clCreateProgramWithSource(ctx, 1, &source, NULL, &err);
    if (clBuildProgram(program, 1, &device, "", NULL, NULL) != CL_SUCCESS)
        return fprintf(stderr, "canary: build failed\n"), 1;
    cl_kernel kernel = clCreateKernel(program, "canary", &err);
    const int n = 4;
    cl_mem never_written = clCreateBuffer(ctx, CL_MEM_READ_ONLY, n * sizeof(float), NULL, &err);
    cl_mem out = clCreateBuffer(ctx, CL_MEM_READ_WRITE, n * sizeof(float), NULL, &err);
    clSetKernelArg(kernel, 0, sizeof never_written, &never_written);
    clSetKernelArg(kernel, 1, sizeof out, &out);
    clSetKernelArg(kernel, 2, sizeof n, &n);
    clSetKernelArg(kernel, 3, sizeof n, &n); /* no argument 3: the API error */
    size_t global = 4;
    err = clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, NULL, 0, NULL, NULL);
    if (err == CL_SUCCESS) err = clFinish(queue);
    clReleaseMemObject(out);
    clReleaseMemObject(never_written);
    clReleaseKernel(kernel);
    clReleaseProgram(program);
    clReleaseCommandQueue(queue);
    clReleaseContext(ctx);
    return err == CL_SUCCESS ? 0 : 1;
}
