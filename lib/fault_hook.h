/* Test-only fault injection (built by tests/faults.cmake with MHFA_FAULT_INJECTION; the shipped
 * library has none of it). The OpenCL calls that create objects or enqueue work, and the host
 * allocations, go through counting wrappers (fault_hook.c) that can make the Nth call of a kind
 * fail, and that count the objects and allocations alive, so that a test can fail every call a
 * function makes and check that nothing leaks. CLBlast's and cJSON's own calls are not seen here
 * (a test can route cJSON's allocations through mhfa_fault_malloc with cJSON_InitHooks). */
#ifndef MHFA_FAULT_HOOK_H
#define MHFA_FAULT_HOOK_H

#ifdef MHFA_FAULT_INJECTION

/* Included before the macros below, so that their declarations keep the real names. */
#include <stdlib.h>
#include <string.h>
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

typedef enum mhfa_fault_kind {
    MHFA_FAULT_HOST,     /* malloc, calloc, realloc, strdup: NULL */
    MHFA_FAULT_CONTEXT,  /* clCreateContext, clCreateCommandQueue* */
    MHFA_FAULT_BUFFER,   /* clCreateBuffer, clCreateSubBuffer */
    MHFA_FAULT_PROGRAM,  /* clCreateProgramWithSource/Binary, clBuildProgram */
    MHFA_FAULT_KERNEL,   /* clCreateKernel */
    MHFA_FAULT_ENQUEUE,  /* kernels, copies, fills, barriers, markers */
    MHFA_FAULT_TRANSFER, /* reads, writes, maps, unmaps */
    MHFA_FAULT_KINDS,
    MHFA_FAULT_ANY = -1
} mhfa_fault_kind;

/* Resets the call counts; the nth call (from 1) of kind from now on fails, once. n 0: only
 * counts. kind MHFA_FAULT_ANY counts calls of every kind together. */
void mhfa_fault_arm(mhfa_fault_kind kind, long n);
void mhfa_fault_disarm(void);
/* Calls of kind since the last arm (MHFA_FAULT_ANY: of all kinds). */
long mhfa_fault_calls(mhfa_fault_kind kind);
/* Whether the armed call has failed since the last arm. */
int mhfa_fault_fired(void);
const char *mhfa_fault_kind_name(mhfa_fault_kind kind);
/* OpenCL objects created or retained minus released (all kinds together), and host allocations
 * minus frees, through the wrappers. */
long mhfa_fault_live_cl_objects(void);
long mhfa_fault_live_host_allocations(void);

void *mhfa_fault_malloc(size_t size);
void *mhfa_fault_calloc(size_t count, size_t size);
void *mhfa_fault_realloc(void *p, size_t size);
char *mhfa_fault_strdup(const char *s);
void mhfa_fault_free(void *p);

cl_context mhfa_fault_clCreateContext(const cl_context_properties *properties, cl_uint n,
                                      const cl_device_id *devices,
                                      void(CL_CALLBACK *notify)(const char *, const void *, size_t,
                                                                void *),
                                      void *user_data, cl_int *err);
cl_command_queue mhfa_fault_clCreateCommandQueue(cl_context context, cl_device_id device,
                                                 cl_command_queue_properties properties,
                                                 cl_int *err);
cl_mem mhfa_fault_clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size, void *host,
                                 cl_int *err);
cl_mem mhfa_fault_clCreateSubBuffer(cl_mem buffer, cl_mem_flags flags, cl_buffer_create_type type,
                                    const void *info, cl_int *err);
cl_program mhfa_fault_clCreateProgramWithSource(cl_context context, cl_uint count,
                                                const char **strings, const size_t *lengths,
                                                cl_int *err);
cl_program mhfa_fault_clCreateProgramWithBinary(cl_context context, cl_uint n,
                                                const cl_device_id *devices, const size_t *lengths,
                                                const unsigned char **binaries,
                                                cl_int *binary_status, cl_int *err);
cl_int mhfa_fault_clBuildProgram(cl_program program, cl_uint n, const cl_device_id *devices,
                                 const char *options, void(CL_CALLBACK *notify)(cl_program, void *),
                                 void *user_data);
cl_kernel mhfa_fault_clCreateKernel(cl_program program, const char *name, cl_int *err);
cl_int mhfa_fault_clEnqueueNDRangeKernel(cl_command_queue queue, cl_kernel kernel, cl_uint dims,
                                         const size_t *offset, const size_t *global,
                                         const size_t *local, cl_uint n_wait, const cl_event *wait,
                                         cl_event *event);
cl_int mhfa_fault_clEnqueueCopyBuffer(cl_command_queue queue, cl_mem src, cl_mem dst,
                                      size_t src_offset, size_t dst_offset, size_t size,
                                      cl_uint n_wait, const cl_event *wait, cl_event *event);
cl_int mhfa_fault_clEnqueueFillBuffer(cl_command_queue queue, cl_mem buffer, const void *pattern,
                                      size_t pattern_size, size_t offset, size_t size,
                                      cl_uint n_wait, const cl_event *wait, cl_event *event);
cl_int mhfa_fault_clEnqueueBarrierWithWaitList(cl_command_queue queue, cl_uint n_wait,
                                               const cl_event *wait, cl_event *event);
cl_int mhfa_fault_clEnqueueMarkerWithWaitList(cl_command_queue queue, cl_uint n_wait,
                                              const cl_event *wait, cl_event *event);
cl_int mhfa_fault_clEnqueueReadBuffer(cl_command_queue queue, cl_mem buffer, cl_bool blocking,
                                      size_t offset, size_t size, void *ptr, cl_uint n_wait,
                                      const cl_event *wait, cl_event *event);
cl_int mhfa_fault_clEnqueueWriteBuffer(cl_command_queue queue, cl_mem buffer, cl_bool blocking,
                                       size_t offset, size_t size, const void *ptr, cl_uint n_wait,
                                       const cl_event *wait, cl_event *event);
cl_int mhfa_fault_clEnqueueWriteBufferRect(cl_command_queue queue, cl_mem buffer, cl_bool blocking,
                                           const size_t *buffer_origin, const size_t *host_origin,
                                           const size_t *region, size_t buffer_row_pitch,
                                           size_t buffer_slice_pitch, size_t host_row_pitch,
                                           size_t host_slice_pitch, const void *ptr, cl_uint n_wait,
                                           const cl_event *wait, cl_event *event);
void *mhfa_fault_clEnqueueMapBuffer(cl_command_queue queue, cl_mem buffer, cl_bool blocking,
                                    cl_map_flags flags, size_t offset, size_t size, cl_uint n_wait,
                                    const cl_event *wait, cl_event *event, cl_int *err);
cl_int mhfa_fault_clEnqueueUnmapMemObject(cl_command_queue queue, cl_mem buffer, void *mapped,
                                          cl_uint n_wait, const cl_event *wait, cl_event *event);
cl_int mhfa_fault_clRetainContext(cl_context x);
cl_int mhfa_fault_clReleaseContext(cl_context x);
cl_int mhfa_fault_clRetainCommandQueue(cl_command_queue x);
cl_int mhfa_fault_clReleaseCommandQueue(cl_command_queue x);
cl_int mhfa_fault_clRetainMemObject(cl_mem x);
cl_int mhfa_fault_clReleaseMemObject(cl_mem x);
cl_int mhfa_fault_clRetainProgram(cl_program x);
cl_int mhfa_fault_clReleaseProgram(cl_program x);
cl_int mhfa_fault_clRetainKernel(cl_kernel x);
cl_int mhfa_fault_clReleaseKernel(cl_kernel x);
cl_int mhfa_fault_clRetainEvent(cl_event x);
cl_int mhfa_fault_clReleaseEvent(cl_event x);

/* The library's own sources call the wrappers; fault_hook.c and tests that only want the API
 * above define MHFA_FAULT_HOOK_NO_MACROS. */
#ifndef MHFA_FAULT_HOOK_NO_MACROS
#undef malloc
#undef calloc
#undef realloc
#undef strdup
#undef free
#define malloc(size)                 mhfa_fault_malloc(size)
#define calloc(count, size)          mhfa_fault_calloc(count, size)
#define realloc(p, size)             mhfa_fault_realloc(p, size)
#define strdup(s)                    mhfa_fault_strdup(s)
#define free(p)                      mhfa_fault_free(p)
#define clCreateContext              mhfa_fault_clCreateContext
#define clCreateCommandQueue         mhfa_fault_clCreateCommandQueue
#define clCreateBuffer               mhfa_fault_clCreateBuffer
#define clCreateSubBuffer            mhfa_fault_clCreateSubBuffer
#define clCreateProgramWithSource    mhfa_fault_clCreateProgramWithSource
#define clCreateProgramWithBinary    mhfa_fault_clCreateProgramWithBinary
#define clBuildProgram               mhfa_fault_clBuildProgram
#define clCreateKernel               mhfa_fault_clCreateKernel
#define clEnqueueNDRangeKernel       mhfa_fault_clEnqueueNDRangeKernel
#define clEnqueueCopyBuffer          mhfa_fault_clEnqueueCopyBuffer
#define clEnqueueFillBuffer          mhfa_fault_clEnqueueFillBuffer
#define clEnqueueBarrierWithWaitList mhfa_fault_clEnqueueBarrierWithWaitList
#define clEnqueueMarkerWithWaitList  mhfa_fault_clEnqueueMarkerWithWaitList
#define clEnqueueReadBuffer          mhfa_fault_clEnqueueReadBuffer
#define clEnqueueWriteBuffer         mhfa_fault_clEnqueueWriteBuffer
#define clEnqueueWriteBufferRect     mhfa_fault_clEnqueueWriteBufferRect
#define clEnqueueMapBuffer           mhfa_fault_clEnqueueMapBuffer
#define clEnqueueUnmapMemObject      mhfa_fault_clEnqueueUnmapMemObject
#define clRetainContext              mhfa_fault_clRetainContext
#define clReleaseContext             mhfa_fault_clReleaseContext
#define clRetainCommandQueue         mhfa_fault_clRetainCommandQueue
#define clReleaseCommandQueue        mhfa_fault_clReleaseCommandQueue
#define clRetainMemObject            mhfa_fault_clRetainMemObject
#define clReleaseMemObject           mhfa_fault_clReleaseMemObject
#define clRetainProgram              mhfa_fault_clRetainProgram
#define clReleaseProgram             mhfa_fault_clReleaseProgram
#define clRetainKernel               mhfa_fault_clRetainKernel
#define clReleaseKernel              mhfa_fault_clReleaseKernel
#define clRetainEvent                mhfa_fault_clRetainEvent
#define clReleaseEvent               mhfa_fault_clReleaseEvent
#endif

#endif /* MHFA_FAULT_INJECTION */
#endif
