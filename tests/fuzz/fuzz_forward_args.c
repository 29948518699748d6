/* Fuzz target: the argument checks of mhfa_forward and mhfa_forward_enqueue (null pointers, shape
 * numbers, mask ndim and dims, wait list, buffer sizes) on a fake module, no device, no kernel.
 * The OpenCL calls those checks make (buffer sizes, sub-buffer parents, the wait-list barrier)
 * are defined here, taking the place of the ICD loader's, and the first buffer allocation always
 * fails: a forward whose arguments pass ends there, in MHFA_ERROR_OUT_OF_MEMORY. Every status is
 * compared with a plain model of mhfa.h's rules, every failure must leave a message and the module
 * as it was, and no kernel, copy or marker may be enqueued. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the fake OpenCL objects and calls ---- */

typedef struct fake_mem {
    size_t size;
    struct fake_mem *parent; /* a sub-buffer's */
} fake_mem;

enum { Q, H, MASK, OUT, PARENT, N_MEMS };
static struct {
    fake_mem mems[N_MEMS];
    int queue, events[4]; /* their addresses stand for a queue and events */
    int barrier_fails;
    cl_ulong max_alloc;
    int allocations;
} fake;

static fake_mem *mem_of(cl_mem mem) {
    for (int i = 0; i < N_MEMS; i++)
        if ((void *)mem == (void *)&fake.mems[i]) return &fake.mems[i];
    abort(); /* a buffer the application never gave */
}

static cl_mem as_mem(fake_mem *m) {
    return (cl_mem)(void *)m;
}

CL_API_ENTRY cl_int CL_API_CALL clGetMemObjectInfo(cl_mem memobj, cl_mem_info param, size_t size,
                                                   void *value, size_t *size_ret) {
    const fake_mem *m = mem_of(memobj);
    if (param == CL_MEM_SIZE && size >= sizeof(size_t)) {
        memcpy(value, &m->size, sizeof m->size);
    } else if (param == CL_MEM_ASSOCIATED_MEMOBJECT && size >= sizeof(cl_mem)) {
        cl_mem parent = m->parent ? as_mem(m->parent) : NULL;
        memcpy(value, &parent, sizeof parent);
    } else {
        return CL_INVALID_VALUE;
    }
    if (size_ret) *size_ret = param == CL_MEM_SIZE ? sizeof(size_t) : sizeof(cl_mem);
    return CL_SUCCESS;
}

/* The device has no memory to give: a forward ends at its first allocation. */
CL_API_ENTRY cl_mem CL_API_CALL clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size,
                                               void *host, cl_int *errcode) {
    (void)context, (void)flags;
    if (host || size == 0 || size > fake.max_alloc) abort(); /* not checked before */
    fake.allocations++;
    if (errcode) *errcode = CL_MEM_OBJECT_ALLOCATION_FAILURE;
    return NULL;
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueBarrierWithWaitList(cl_command_queue queue, cl_uint n,
                                                             const cl_event *list,
                                                             cl_event *event) {
    if ((void *)queue != (void *)&fake.queue || (n > 0) != (list != NULL) || event) abort();
    for (cl_uint i = 0; i < n; i++)
        if ((void *)list[i] != (void *)&fake.events[i]) abort();
    return fake.barrier_fails ? CL_OUT_OF_RESOURCES : CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clFinish(cl_command_queue queue) {
    if ((void *)queue != (void *)&fake.queue) abort();
    return CL_SUCCESS;
}

/* Nothing may be enqueued or copied: the first allocation already failed. */
CL_API_ENTRY cl_int CL_API_CALL clEnqueueMarkerWithWaitList(cl_command_queue queue, cl_uint n,
                                                            const cl_event *list, cl_event *event) {
    (void)queue, (void)n, (void)list, (void)event;
    abort();
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueWriteBuffer(cl_command_queue queue, cl_mem buffer,
                                                     cl_bool blocking, size_t offset, size_t size,
                                                     const void *ptr, cl_uint n,
                                                     const cl_event *list, cl_event *event) {
    (void)queue, (void)buffer, (void)blocking, (void)offset, (void)size, (void)ptr, (void)n;
    (void)list, (void)event;
    abort();
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueReadBuffer(cl_command_queue queue, cl_mem buffer,
                                                    cl_bool blocking, size_t offset, size_t size,
                                                    void *ptr, cl_uint n, const cl_event *list,
                                                    cl_event *event) {
    (void)queue, (void)buffer, (void)blocking, (void)offset, (void)size, (void)ptr, (void)n;
    (void)list, (void)event;
    abort();
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(cl_command_queue queue, cl_kernel kernel,
                                                       cl_uint dims, const size_t *offset,
                                                       const size_t *global, const size_t *local,
                                                       cl_uint n, const cl_event *list,
                                                       cl_event *event) {
    (void)queue, (void)kernel, (void)dims, (void)offset, (void)global, (void)local, (void)n;
    (void)list, (void)event;
    abort();
}

CL_API_ENTRY cl_int CL_API_CALL clSetKernelArg(cl_kernel kernel, cl_uint index, size_t size,
                                               const void *value) {
    (void)kernel, (void)index, (void)size, (void)value;
    abort();
}

/* The application's attention core must not be reached either. */
static mhfa_status no_attention(void *user_data, cl_command_queue queue,
                                const mhfa_attention_args *args) {
    (void)user_data, (void)queue, (void)args;
    abort();
}

/* ---- the input ---- */

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static uint8_t byte(reader *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

static uint32_t u32(reader *r) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)byte(r) << (8 * i);
    return v;
}

/* A size argument: mostly small, sometimes negative, a power of two, at INT_MAX or anything. */
static int pick_int(reader *r) {
    uint8_t k = byte(r);
    switch (k >> 5) {
    case 0:
    case 1:
    case 2:
        return k & 31;
    case 3:
        return (int)(k & 31) - 16;
    case 4:
        return (int)(1u << (k & 30));
    case 5:
        return INT_MAX - (k & 31);
    case 6:
        return (int)(u32(r) & INT_MAX) * ((k & 1) ? -1 : 1);
    default:
        return 1 + (int)(u32(r) % 100000);
    }
}

/* A buffer's size against what the forward needs: exactly, a byte short, more, or anything. */
static size_t pick_size(reader *r, size_t need) {
    uint8_t k = byte(r);
    switch (k & 3) {
    case 0:
        return need;
    case 1:
        return need ? need - 1 : 0;
    case 2:
        return need + (k >> 2);
    default:
        return (size_t)u32(r) << (k >> 6);
    }
}

/* ---- the model ---- */

typedef unsigned __int128 wide;

static int bit(unsigned flags, int i) {
    return (flags >> i) & 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r = {data, size};
    const unsigned f1 = byte(&r), f2 = byte(&r), f3 = byte(&r);
    const int enqueue = bit(f1, 0), no_module = bit(f1, 1), no_q = bit(f1, 2), no_out = bit(f1, 3);
    const int cross = bit(f1, 4), masked = bit(f1, 5), no_mask_data = bit(f1, 6);
    const int want_event = bit(f1, 7);
    /* A wait list where num_wait says there is one, unless the two are to disagree. */
    const int num_wait = (f2 >> 4) & 3, no_wait_list = (num_wait > 0) == bit(f2, 6);

    /* A module that could exist: what mhfa_module_create checks holds. */
    mhfa_config cfg = mhfa_config_default(1 + byte(&r) % 16, 1, 1);
    int head_dim = 1 + byte(&r) % 64, input_dim = pick_int(&r);
    cfg.embed_dim = cfg.n_heads * head_dim;
    if (input_dim <= 0 ||
        (wide)cfg.embed_dim * (wide)(input_dim > cfg.embed_dim ? input_dim : cfg.embed_dim) >
            INT32_MAX)
        input_dim = 16;
    cfg.input_dim = input_dim;
    cfg.store_attn_weights = bit(f2, 0);
    if (bit(f2, 1)) cfg.attention_fn = no_attention;
    cfg.attention_dropout = bit(f2, 2) ? 0.1f : 0.0f;
    cfg.bias = bit(f2, 3);
    cfg.dtype = (mhfa_dtype)(((f3 >> 5) & 3) % 3); /* float32, float16, bfloat16 */

    memset(&fake, 0, sizeof fake);
    fake.barrier_fails = bit(f2, 7);
    /* A context with no device behind it: every limit the largest but the allocation's. */
    mhfa_context ctx;
    memset(&ctx, 0, sizeof ctx);
    memset(&ctx.info, 0xff, sizeof ctx.info);
    ctx.queue = (cl_command_queue)(void *)&fake.queue;
    ctx.out_of_order = bit(f3, 7);
    fake.max_alloc = ctx.info.max_alloc_size = bit(f3, 4) ? (cl_ulong)u32(&r) : (cl_ulong)1 << 40;
    mhfa_module *m = calloc(1, sizeof *m);
    if (!m) return 0;
    m->ctx = &ctx;
    m->cfg = cfg;
    m->head_dim = head_dim;
    m->training = bit(f2, 2);
    m->dropout_offset = 7;
    const mhfa_module before = *m;

    const int batch = pick_int(&r), n_query = pick_int(&r), graph_size = pick_int(&r);
    const int ndim = (int)(byte(&r) % 8) - 1;
    /* Where each given mask dimension goes in [batch][n_heads][n_query][graph_size]. */
    static const int place[5][4] = {{0}, {0}, {0, 3}, {0, 2, 3}, {0, 1, 2, 3}};
    const int full[4] = {batch, cfg.n_heads, n_query, graph_size};
    int dims[4];
    for (int i = 0; i < 4; i++) {
        uint8_t k = byte(&r);
        int axis = ndim >= 2 && ndim <= 4 ? place[ndim][i] : i;
        dims[i] = k % 4 == 0 ? 1 : k % 4 == 1 ? full[axis] : pick_int(&r);
    }

    const wide b = (wide)(batch > 0 ? batch : 0), nq = (wide)(n_query > 0 ? n_query : 0);
    const wide gs = (wide)(graph_size > 0 ? graph_size : 0);
    const wide din = (wide)cfg.input_dim, e = (wide)cfg.embed_dim;
    const wide f = cfg.dtype == MHFA_FLOAT32 ? 4 : 2; /* bytes an element */
    const wide features = din > e ? din : e, longest = nq > gs ? nq : gs;
    wide mask_count = 1;
    for (int i = 0; i < ndim && i < 4; i++)
        mask_count *= (wide)(dims[i] > 0 ? dims[i] : 0);
    const wide need[4] = {b * nq * din * f, b * gs * din * f, mask_count, b * nq * e * f};
    for (int i = 0; i < 4; i++)
        fake.mems[i].size = pick_size(&r, need[i] > SIZE_MAX ? SIZE_MAX : (size_t)need[i]);
    const int out_is_q = bit(f3, 0); /* a forward in place: one buffer, checked for both */
    if (out_is_q) fake.mems[OUT].size = fake.mems[Q].size;
    if (bit(f3, 1)) fake.mems[OUT].parent = &fake.mems[PARENT];
    if (bit(f3, 2)) fake.mems[Q].parent = &fake.mems[PARENT];
    if (bit(f3, 3)) fake.mems[H].parent = &fake.mems[PARENT];

    /* What mhfa.h's rules say, in the order the checks are documented to come. */
    mhfa_status expected = MHFA_ERROR_OUT_OF_MEMORY; /* arguments that pass */
    int shape_ok = 0;
    if (no_module || no_q || no_out)
        expected = MHFA_ERROR_INVALID_ARGUMENT;
    else if (enqueue && (num_wait > 0) != !no_wait_list)
        expected = MHFA_ERROR_INVALID_ARGUMENT;
    else if (masked && no_mask_data)
        expected = MHFA_ERROR_INVALID_ARGUMENT;
    else if (batch <= 0 || n_query <= 0 || graph_size <= 0)
        expected = MHFA_ERROR_INVALID_ARGUMENT;
    else if (!cross && graph_size != n_query)
        expected = MHFA_ERROR_INVALID_SHAPE;
    else if (b * longest * features > INT32_MAX ||
             (cfg.store_attn_weights && b * (wide)cfg.n_heads * nq * gs > INT32_MAX))
        expected = MHFA_ERROR_INVALID_SHAPE; /* a tensor of 2^31 elements or more */
    else
        shape_ok = 1;
    if (shape_ok && masked) {
        int dims_ok = ndim >= 2 && ndim <= 4;
        for (int i = 0; dims_ok && i < ndim; i++)
            dims_ok = dims[i] == 1 || dims[i] == full[place[ndim][i]];
        if (!dims_ok || mask_count > INT32_MAX) expected = MHFA_ERROR_INVALID_SHAPE, shape_ok = 0;
    }
    if (shape_ok && enqueue)
        for (int i = 0; i < 4 && expected == MHFA_ERROR_OUT_OF_MEMORY; i++)
            if ((i != H || cross) && (i != MASK || masked) && fake.mems[i].size < need[i])
                expected = MHFA_ERROR_INVALID_ARGUMENT;

    /* The call. */
    mhfa_status status;
    if (enqueue) {
        mhfa_mask_buffer mask = {no_mask_data ? NULL : as_mem(&fake.mems[MASK]), ndim, {0}};
        memcpy(mask.dims, dims, sizeof dims);
        cl_event wait_list[3] = {(cl_event)(void *)&fake.events[0],
                                 (cl_event)(void *)&fake.events[1],
                                 (cl_event)(void *)&fake.events[2]};
        cl_event event = (cl_event)(void *)&fake.events[3];
        cl_mem out = out_is_q ? as_mem(&fake.mems[Q]) : as_mem(&fake.mems[OUT]);
        status = mhfa_forward_enqueue(
            no_module ? NULL : m, batch, n_query, graph_size, no_q ? NULL : as_mem(&fake.mems[Q]),
            cross ? as_mem(&fake.mems[H]) : NULL, masked ? &mask : NULL, no_out ? NULL : out,
            (cl_uint)num_wait, no_wait_list ? NULL : wait_list, want_event ? &event : NULL);
        if ((void *)event != (void *)&fake.events[3]) abort(); /* no event from a failure */
    } else {
        static float q[1], h[1], out[1];
        static unsigned char mask_data[1];
        mhfa_mask mask = {no_mask_data ? NULL : mask_data, ndim, {0}};
        memcpy(mask.dims, dims, sizeof dims);
        status = mhfa_forward(no_module ? NULL : m, batch, n_query, graph_size, no_q ? NULL : q,
                              cross ? h : NULL, masked ? &mask : NULL, no_out ? NULL : out);
    }

    /* Arguments that pass may still fail at the wait-list barrier (enqueue). */
    if (expected == MHFA_ERROR_OUT_OF_MEMORY && enqueue && status == MHFA_ERROR_OPENCL &&
        num_wait > 0 && fake.barrier_fails)
        expected = MHFA_ERROR_OPENCL;
    if (status != expected) abort();
    if (expected != MHFA_ERROR_OUT_OF_MEMORY && fake.allocations) abort(); /* checked first */
    if (!no_module && !mhfa_context_error_message(&ctx)[0]) abort();
    if (memcmp(&before, m, sizeof before) != 0) abort(); /* a failure changes nothing */
    mhfa_release_message(&ctx);
    free(m);
    return 0;
}
