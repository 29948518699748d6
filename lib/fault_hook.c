/* The counting wrappers of fault_hook.h; empty unless built with MHFA_FAULT_INJECTION (the tests'
 * second build of the library, tests/faults.cmake). */
#ifdef MHFA_FAULT_INJECTION
#define MHFA_FAULT_HOOK_NO_MACROS
#include "fault_hook.h"

static struct {
    mhfa_fault_kind kind; /* armed kind, or MHFA_FAULT_ANY */
    long fail_at;         /* the call to fail, from 1; 0: none */
    long calls[MHFA_FAULT_KINDS];
    int fired;
    long live_cl, live_host;
} hook;

void mhfa_fault_arm(mhfa_fault_kind kind, long n) {
    hook.kind = kind;
    hook.fail_at = n;
    hook.fired = 0;
    for (int i = 0; i < MHFA_FAULT_KINDS; i++)
        hook.calls[i] = 0;
}

void mhfa_fault_disarm(void) {
    hook.fail_at = 0;
}

long mhfa_fault_calls(mhfa_fault_kind kind) {
    if (kind != MHFA_FAULT_ANY) return hook.calls[kind];
    long total = 0;
    for (int i = 0; i < MHFA_FAULT_KINDS; i++)
        total += hook.calls[i];
    return total;
}

int mhfa_fault_fired(void) {
    return hook.fired;
}

const char *mhfa_fault_kind_name(mhfa_fault_kind kind) {
    static const char *const names[MHFA_FAULT_KINDS] = {
        "host allocation", "context/queue", "buffer", "program", "kernel", "enqueue", "transfer"};
    return kind == MHFA_FAULT_ANY ? "any" : names[kind];
}

long mhfa_fault_live_cl_objects(void) {
    return hook.live_cl;
}

long mhfa_fault_live_host_allocations(void) {
    return hook.live_host;
}

/* Counts a call of kind; whether it is the one to fail. */
static int fails(mhfa_fault_kind kind) {
    hook.calls[kind]++;
    if (!hook.fail_at || hook.fired) return 0;
    long n = hook.kind == MHFA_FAULT_ANY ? mhfa_fault_calls(MHFA_FAULT_ANY) : hook.calls[kind];
    if ((hook.kind != MHFA_FAULT_ANY && hook.kind != kind) || n != hook.fail_at) return 0;
    hook.fired = 1;
    return 1;
}

static void set_err(cl_int *err, cl_int value) {
    if (err) *err = value;
}

/* ---- host memory ---- */

void *mhfa_fault_malloc(size_t size) {
    void *p = fails(MHFA_FAULT_HOST) ? NULL : malloc(size);
    hook.live_host += p != NULL;
    return p;
}

void *mhfa_fault_calloc(size_t count, size_t size) {
    void *p = fails(MHFA_FAULT_HOST) ? NULL : calloc(count, size);
    hook.live_host += p != NULL;
    return p;
}

void *mhfa_fault_realloc(void *p, size_t size) {
    if (fails(MHFA_FAULT_HOST)) return NULL;
    void *q = realloc(p, size);
    if (!p && q) hook.live_host++;
    return q;
}

char *mhfa_fault_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = mhfa_fault_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

void mhfa_fault_free(void *p) {
    hook.live_host -= p != NULL;
    free(p);
}

/* ---- creating OpenCL objects ---- */

/* An object made (or NULL): counted when there is one. */
#define CREATED(object)                                                                            \
    do {                                                                                           \
        if (object) hook.live_cl++;                                                                \
    } while (0)

cl_context mhfa_fault_clCreateContext(const cl_context_properties *properties, cl_uint n,
                                      const cl_device_id *devices,
                                      void(CL_CALLBACK *notify)(const char *, const void *, size_t,
                                                                void *),
                                      void *user_data, cl_int *err) {
    if (fails(MHFA_FAULT_CONTEXT)) return set_err(err, CL_OUT_OF_HOST_MEMORY), NULL;
    cl_context c = clCreateContext(properties, n, devices, notify, user_data, err);
    CREATED(c);
    return c;
}

cl_command_queue mhfa_fault_clCreateCommandQueue(cl_context context, cl_device_id device,
                                                 cl_command_queue_properties properties,
                                                 cl_int *err) {
    if (fails(MHFA_FAULT_CONTEXT)) return set_err(err, CL_OUT_OF_RESOURCES), NULL;
    cl_command_queue q = clCreateCommandQueue(context, device, properties, err);
    CREATED(q);
    return q;
}

cl_mem mhfa_fault_clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size, void *host,
                                 cl_int *err) {
    if (fails(MHFA_FAULT_BUFFER)) return set_err(err, CL_MEM_OBJECT_ALLOCATION_FAILURE), NULL;
    cl_mem m = clCreateBuffer(context, flags, size, host, err);
    CREATED(m);
    return m;
}

cl_mem mhfa_fault_clCreateSubBuffer(cl_mem buffer, cl_mem_flags flags, cl_buffer_create_type type,
                                    const void *info, cl_int *err) {
    if (fails(MHFA_FAULT_BUFFER)) return set_err(err, CL_OUT_OF_RESOURCES), NULL;
    cl_mem m = clCreateSubBuffer(buffer, flags, type, info, err);
    CREATED(m);
    return m;
}

cl_program mhfa_fault_clCreateProgramWithSource(cl_context context, cl_uint count,
                                                const char **strings, const size_t *lengths,
                                                cl_int *err) {
    if (fails(MHFA_FAULT_PROGRAM)) return set_err(err, CL_OUT_OF_HOST_MEMORY), NULL;
    cl_program p = clCreateProgramWithSource(context, count, strings, lengths, err);
    CREATED(p);
    return p;
}

cl_program mhfa_fault_clCreateProgramWithBinary(cl_context context, cl_uint n,
                                                const cl_device_id *devices, const size_t *lengths,
                                                const unsigned char **binaries,
                                                cl_int *binary_status, cl_int *err) {
    if (fails(MHFA_FAULT_PROGRAM)) {
        if (binary_status) *binary_status = CL_INVALID_BINARY;
        return set_err(err, CL_INVALID_BINARY), NULL;
    }
    cl_program p =
        clCreateProgramWithBinary(context, n, devices, lengths, binaries, binary_status, err);
    CREATED(p);
    return p;
}

cl_int mhfa_fault_clBuildProgram(cl_program program, cl_uint n, const cl_device_id *devices,
                                 const char *options, void(CL_CALLBACK *notify)(cl_program, void *),
                                 void *user_data) {
    if (fails(MHFA_FAULT_PROGRAM)) return CL_BUILD_PROGRAM_FAILURE;
    return clBuildProgram(program, n, devices, options, notify, user_data);
}

cl_kernel mhfa_fault_clCreateKernel(cl_program program, const char *name, cl_int *err) {
    if (fails(MHFA_FAULT_KERNEL)) return set_err(err, CL_OUT_OF_RESOURCES), NULL;
    cl_kernel k = clCreateKernel(program, name, err);
    CREATED(k);
    return k;
}

/* ---- enqueueing; an event handed out is an object too ---- */

static cl_int enqueued(cl_int err, cl_event *event) {
    if (err == CL_SUCCESS && event && *event) hook.live_cl++;
    return err;
}

cl_int mhfa_fault_clEnqueueNDRangeKernel(cl_command_queue queue, cl_kernel kernel, cl_uint dims,
                                         const size_t *offset, const size_t *global,
                                         const size_t *local, cl_uint n_wait, const cl_event *wait,
                                         cl_event *event) {
    if (fails(MHFA_FAULT_ENQUEUE)) return CL_OUT_OF_RESOURCES;
    return enqueued(
        clEnqueueNDRangeKernel(queue, kernel, dims, offset, global, local, n_wait, wait, event),
        event);
}

cl_int mhfa_fault_clEnqueueCopyBuffer(cl_command_queue queue, cl_mem src, cl_mem dst,
                                      size_t src_offset, size_t dst_offset, size_t size,
                                      cl_uint n_wait, const cl_event *wait, cl_event *event) {
    if (fails(MHFA_FAULT_ENQUEUE)) return CL_OUT_OF_RESOURCES;
    return enqueued(
        clEnqueueCopyBuffer(queue, src, dst, src_offset, dst_offset, size, n_wait, wait, event),
        event);
}

cl_int mhfa_fault_clEnqueueFillBuffer(cl_command_queue queue, cl_mem buffer, const void *pattern,
                                      size_t pattern_size, size_t offset, size_t size,
                                      cl_uint n_wait, const cl_event *wait, cl_event *event) {
    if (fails(MHFA_FAULT_ENQUEUE)) return CL_OUT_OF_RESOURCES;
    return enqueued(clEnqueueFillBuffer(queue, buffer, pattern, pattern_size, offset, size, n_wait,
                                        wait, event),
                    event);
}

cl_int mhfa_fault_clEnqueueBarrierWithWaitList(cl_command_queue queue, cl_uint n_wait,
                                               const cl_event *wait, cl_event *event) {
    if (fails(MHFA_FAULT_ENQUEUE)) return CL_OUT_OF_RESOURCES;
    return enqueued(clEnqueueBarrierWithWaitList(queue, n_wait, wait, event), event);
}

cl_int mhfa_fault_clEnqueueMarkerWithWaitList(cl_command_queue queue, cl_uint n_wait,
                                              const cl_event *wait, cl_event *event) {
    if (fails(MHFA_FAULT_ENQUEUE)) return CL_OUT_OF_RESOURCES;
    return enqueued(clEnqueueMarkerWithWaitList(queue, n_wait, wait, event), event);
}

cl_int mhfa_fault_clEnqueueReadBuffer(cl_command_queue queue, cl_mem buffer, cl_bool blocking,
                                      size_t offset, size_t size, void *ptr, cl_uint n_wait,
                                      const cl_event *wait, cl_event *event) {
    if (fails(MHFA_FAULT_TRANSFER)) return CL_OUT_OF_RESOURCES;
    return enqueued(
        clEnqueueReadBuffer(queue, buffer, blocking, offset, size, ptr, n_wait, wait, event),
        event);
}

cl_int mhfa_fault_clEnqueueWriteBuffer(cl_command_queue queue, cl_mem buffer, cl_bool blocking,
                                       size_t offset, size_t size, const void *ptr, cl_uint n_wait,
                                       const cl_event *wait, cl_event *event) {
    if (fails(MHFA_FAULT_TRANSFER)) return CL_OUT_OF_RESOURCES;
    return enqueued(
        clEnqueueWriteBuffer(queue, buffer, blocking, offset, size, ptr, n_wait, wait, event),
        event);
}

cl_int mhfa_fault_clEnqueueWriteBufferRect(cl_command_queue queue, cl_mem buffer, cl_bool blocking,
                                           const size_t *buffer_origin, const size_t *host_origin,
                                           const size_t *region, size_t buffer_row_pitch,
                                           size_t buffer_slice_pitch, size_t host_row_pitch,
                                           size_t host_slice_pitch, const void *ptr, cl_uint n_wait,
                                           const cl_event *wait, cl_event *event) {
    if (fails(MHFA_FAULT_TRANSFER)) return CL_OUT_OF_RESOURCES;
    return enqueued(clEnqueueWriteBufferRect(queue, buffer, blocking, buffer_origin, host_origin,
                                             region, buffer_row_pitch, buffer_slice_pitch,
                                             host_row_pitch, host_slice_pitch, ptr, n_wait, wait,
                                             event),
                    event);
}

void *mhfa_fault_clEnqueueMapBuffer(cl_command_queue queue, cl_mem buffer, cl_bool blocking,
                                    cl_map_flags flags, size_t offset, size_t size, cl_uint n_wait,
                                    const cl_event *wait, cl_event *event, cl_int *err) {
    if (fails(MHFA_FAULT_TRANSFER)) return set_err(err, CL_MAP_FAILURE), NULL;
    cl_int status;
    void *p = clEnqueueMapBuffer(queue, buffer, blocking, flags, offset, size, n_wait, wait, event,
                                 &status);
    set_err(err, enqueued(status, event));
    return p;
}

cl_int mhfa_fault_clEnqueueUnmapMemObject(cl_command_queue queue, cl_mem buffer, void *mapped,
                                          cl_uint n_wait, const cl_event *wait, cl_event *event) {
    if (fails(MHFA_FAULT_TRANSFER)) return CL_OUT_OF_RESOURCES;
    return enqueued(clEnqueueUnmapMemObject(queue, buffer, mapped, n_wait, wait, event), event);
}

/* ---- references: retain +1, release -1, where the call succeeds ---- */

#define REFERENCES(type, name)                                                                     \
    cl_int mhfa_fault_clRetain##name(type x) {                                                     \
        cl_int err = clRetain##name(x);                                                            \
        hook.live_cl += err == CL_SUCCESS;                                                         \
        return err;                                                                                \
    }                                                                                              \
    cl_int mhfa_fault_clRelease##name(type x) {                                                    \
        cl_int err = clRelease##name(x);                                                           \
        hook.live_cl -= err == CL_SUCCESS;                                                         \
        return err;                                                                                \
    }

REFERENCES(cl_context, Context)
REFERENCES(cl_command_queue, CommandQueue)
REFERENCES(cl_mem, MemObject)
REFERENCES(cl_program, Program)
REFERENCES(cl_kernel, Kernel)
REFERENCES(cl_event, Event)

#else
typedef int mhfa_fault_hook_not_built; /* ISO C wants a declaration in every file */
#endif
