/* A kernel of independent multiply-add chains, many work-items wide, timed with events: enough
 * chains per work-item to cover the FMA units' latency, and vectors so that a compiler that does
 * not vectorise across work-items still fills its SIMD lanes. */
#include "fma_peak.h"

#include <string.h>

enum { CHAINS = 8, LANES = 16, ITERATIONS = 4096, TRIES = 5 };

static const char source[] =
    "#define STEP(x) x = fma(x, (float16)(a), (float16)(b))\n"
    "__kernel void fma_peak(__global float *out, int iterations, float a, float b) {\n"
    "    float16 x0 = (float16)(get_global_id(0) % 97) * 1e-3f, x1 = x0 + 1e-3f,\n"
    "            x2 = x0 + 2e-3f, x3 = x0 + 3e-3f, x4 = x0 + 4e-3f, x5 = x0 + 5e-3f,\n"
    "            x6 = x0 + 6e-3f, x7 = x0 + 7e-3f;\n"
    "    for (int i = 0; i < iterations; i++) {\n"
    "        STEP(x0); STEP(x1); STEP(x2); STEP(x3); STEP(x4); STEP(x5); STEP(x6); STEP(x7);\n"
    "    }\n"
    "    float16 s = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));\n"
    "    float8 h = s.lo + s.hi;\n"
    "    float4 q = h.lo + h.hi;\n"
    "    out[get_global_id(0)] = (q.x + q.y) + (q.z + q.w);\n"
    "}\n";

/* Work-items: many per compute unit, so that every unit and its SIMD width are busy. */
static size_t work_items(cl_device_id device) {
    cl_uint units = 1;
    clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
    return (size_t)units * 1024;
}

double fma_peak_gflops(mhfa_context *ctx) {
    cl_context cl = mhfa_context_cl_context(ctx);
    cl_device_id device = mhfa_context_device(ctx);
    const char *text = source;
    cl_int err;
    cl_program program = clCreateProgramWithSource(cl, 1, &text, NULL, &err);
    if (err != CL_SUCCESS) return -1.0;
    double best = -1.0;
    cl_kernel kernel = NULL;
    cl_mem out = NULL;
    cl_command_queue queue = NULL;
    const size_t global = work_items(device);
    if (clBuildProgram(program, 1, &device, "", NULL, NULL) != CL_SUCCESS) goto done;
    kernel = clCreateKernel(program, "fma_peak", &err);
    if (err == CL_SUCCESS) out = clCreateBuffer(cl, CL_MEM_WRITE_ONLY, global * 4, NULL, &err);
    if (err == CL_SUCCESS)
        queue = clCreateCommandQueue(cl, device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) goto done;
    const cl_int iterations = ITERATIONS;
    const cl_float a = 0.9999f, b = 1e-4f; /* x stays near 1: no overflow, no subnormals */
    clSetKernelArg(kernel, 0, sizeof out, &out);
    clSetKernelArg(kernel, 1, sizeof iterations, &iterations);
    clSetKernelArg(kernel, 2, sizeof a, &a);
    clSetKernelArg(kernel, 3, sizeof b, &b);
    for (int t = 0; t <= TRIES; t++) { /* the first run is a warm-up */
        cl_event done_event;
        if (clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, NULL, 0, NULL, &done_event) !=
            CL_SUCCESS)
            break;
        cl_ulong start = 0, end = 0;
        clWaitForEvents(1, &done_event);
        clGetEventProfilingInfo(done_event, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL);
        clGetEventProfilingInfo(done_event, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
        clReleaseEvent(done_event);
        double flops = 2.0 * (double)global * ITERATIONS * CHAINS * LANES;
        double gflops = end > start ? flops / (double)(end - start) : -1.0; /* ns: GFLOP/s */
        if (t > 0 && gflops > best) best = gflops;
    }
done:
    if (queue) clReleaseCommandQueue(queue);
    if (out) clReleaseMemObject(out);
    if (kernel) clReleaseKernel(kernel);
    clReleaseProgram(program);
    return best;
}
