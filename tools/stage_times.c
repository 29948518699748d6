/* The recorder of stage_times.h. It defines clEnqueueNDRangeKernel itself, so that calls from
 * libmhfa and CLBlast come here first (the executable's symbol wins); the OpenCL loader's is
 * found with dlsym(RTLD_NEXT). Stages by kernel name: the mask conversion, attention kernels
 * (names with "attention" or "decode"; the absorbed kernel does a whole forward), and the other
 * kernels as input projections before the first attention launch and as the output projection
 * after it. */
#define _GNU_SOURCE
#include "stage_times.h"

#include "mhfa.h"

#include <dlfcn.h>
#include <string.h>

const char *const stage_names[N_STAGES] = {"mask", "project", "attend", "output"};

enum { MAX_LAUNCHES = 64 };
typedef cl_int (*enqueue_fn)(cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *,
                             const size_t *, cl_uint, const cl_event *, cl_event *);

static int recording, failed, launches, attention_seen;
static struct {
    cl_event event;
    int stage;
} recorded[MAX_LAUNCHES];

static int stage_of(cl_kernel kernel) {
    char name[128] = "";
    clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, sizeof name - 1, name, NULL);
    if (strstr(name, "attention") || strstr(name, "decode")) {
        attention_seen = 1;
        return STAGE_ATTEND;
    }
    if (strstr(name, "mask")) return STAGE_MASK;
    return attention_seen ? STAGE_OUTPUT : STAGE_PROJECT;
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(cl_command_queue queue, cl_kernel kernel,
                                                       cl_uint dims, const size_t *offset,
                                                       const size_t *global, const size_t *local,
                                                       cl_uint num_wait, const cl_event *wait_list,
                                                       cl_event *event) {
    static enqueue_fn real;
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "clEnqueueNDRangeKernel");
    if (!real) return CL_INVALID_OPERATION;
    if (!recording)
        return real(queue, kernel, dims, offset, global, local, num_wait, wait_list, event);
    if (launches == MAX_LAUNCHES) {
        failed = 1;
        return real(queue, kernel, dims, offset, global, local, num_wait, wait_list, event);
    }
    cl_event mine = NULL;
    cl_int err = real(queue, kernel, dims, offset, global, local, num_wait, wait_list, &mine);
    if (err != CL_SUCCESS) return err;
    if (event) {
        clRetainEvent(mine);
        *event = mine;
    }
    recorded[launches].event = mine;
    recorded[launches++].stage = stage_of(kernel);
    return CL_SUCCESS;
}

void stage_times_start(void) {
    recording = 1;
    failed = launches = attention_seen = 0;
}

int stage_times_finish(double ms[N_STAGES]) {
    recording = 0;
    for (int s = 0; s < N_STAGES; s++)
        ms[s] = 0.0;
    for (int i = 0; i < launches; i++) {
        cl_ulong start = 0, end = 0;
        cl_event e = recorded[i].event;
        if (clWaitForEvents(1, &e) != CL_SUCCESS ||
            clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL) !=
                CL_SUCCESS ||
            clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL) !=
                CL_SUCCESS)
            failed = 1;
        else
            ms[recorded[i].stage] += (double)(end - start) * 1e-6;
        clReleaseEvent(e);
    }
    return failed ? -1 : launches;
}
