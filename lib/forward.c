/* The forward: the keep mask where needed, the three input projections (per head or rows-major),
 * the attention core (flash, manual or the application's), the output projection. The module's
 * state (stored weights, dropout offset) changes only once the whole forward has been enqueued
 * (and, for mhfa_forward, read back). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct forward_io {
    cl_mem q, h, mask, out; /* h: NULL for self-attention; mask: NULL for none */
    mhfa_mask_layout layout;
    cl_mem v; /* where V goes: the module's scratch, or out (values_in_output) */
} forward_io;

static mhfa_status check_shape(const mhfa_module *m, int batch, int n_query, int graph_size,
                               int has_h) {
    if (batch <= 0 || n_query <= 0 || graph_size <= 0)
        return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT,
                         "batch (%d), n_query (%d) and graph_size (%d) must be positive", batch,
                         n_query, graph_size);
    if (!has_h && graph_size != n_query)
        return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_SHAPE,
                         "self-attention (h NULL) needs graph_size (%d) == n_query (%d)",
                         graph_size, n_query);
    /* The kernels index each tensor with int: every one must hold fewer than 2^31 elements. */
    size_t features =
        (size_t)(m->cfg.input_dim > m->cfg.embed_dim ? m->cfg.input_dim : m->cfg.embed_dim);
    size_t longest = (size_t)(n_query > graph_size ? n_query : graph_size);
    int too_large = (size_t)batch * longest > (size_t)INT32_MAX / features;
    if (m->cfg.store_attn_weights)
        too_large |= (size_t)batch * (size_t)m->cfg.n_heads * (size_t)n_query >
                     (size_t)INT32_MAX / (size_t)graph_size;
    if (too_large)
        return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_SHAPE,
                         "batch %d, n_query %d, graph_size %d: a tensor would have 2^31 or more "
                         "elements",
                         batch, n_query, graph_size);
    return MHFA_SUCCESS;
}

/* One projection launch: x (seq_len positions per batch element) times columns
 * [col0, col0 + out_features) of the transposed weights w_t (ld_w columns), into y[0..2], each
 * taking embed_dim of those columns. */
typedef struct projection {
    cl_kernel kernel;
    const char *what;
    cl_mem x;
    int seq_len, in_features;
    cl_mem w_t, bias; /* bias NULL without bias */
    int ld_w, col0, out_features;
    cl_mem y[3];
} projection;

static mhfa_status project(mhfa_module *m, const projection *p, int batch) {
    const mhfa_kernels *k = &m->kernels;
    cl_int rows = batch * p->seq_len, has_bias = p->bias != NULL;
    cl_int out_width = m->cfg.embed_dim;
    cl_mem bias = has_bias ? p->bias : p->w_t; /* any valid buffer when unused */
    mhfa_status status = mhfa_set_args(
        m->ctx, p->kernel, p->what, 14, MHFA_ARG(p->x), MHFA_ARG(p->w_t), MHFA_ARG(p->ld_w),
        MHFA_ARG(p->col0), MHFA_ARG(bias), MHFA_ARG(has_bias), MHFA_ARG(p->y[0]), MHFA_ARG(p->y[1]),
        MHFA_ARG(p->y[2]), MHFA_ARG(rows), MHFA_ARG(p->in_features), MHFA_ARG(p->out_features),
        MHFA_ARG(out_width), MHFA_ARG(p->seq_len));
    if (status != MHFA_SUCCESS) return status;
    size_t blocks[2] = {((size_t)p->out_features + k->projection_tile[0] - 1) /
                            k->projection_tile[0],
                        ((size_t)rows + k->projection_tile[1] - 1) / k->projection_tile[1]};
    /* The vector kernel takes a block per work-item, the others a block per group. */
    const size_t *local = k->projection_local;
    size_t global[2];
    for (int i = 0; i < 2; i++)
        global[i] = k->projection == MHFA_PROJECT_VECTOR
                        ? (blocks[i] + local[i] - 1) / local[i] * local[i]
                        : blocks[i] * local[i];
    return mhfa_enqueue(m->ctx, p->kernel, 2, global, local, p->what);
}

static size_t mem_size(cl_mem mem) {
    size_t size = 0;
    if (clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof size, &size, NULL) != CL_SUCCESS) return 0;
    return size;
}

static int is_sub_buffer(cl_mem mem) {
    cl_mem parent = NULL;
    clGetMemObjectInfo(mem, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof parent, &parent, NULL);
    return parent != NULL;
}

/* Whether the output may share memory with an input: the same buffer, or sub-buffers (which may
 * overlap). Then neither may the output hold V nor may the absorbed kernel run (its work-groups
 * read every key row while others write their output rows). */
static int output_may_alias_input(const forward_io *io) {
    return io->out == io->q || io->out == io->h || is_sub_buffer(io->out) || is_sub_buffer(io->q) ||
           (io->h && is_sub_buffer(io->h));
}

/* The output buffer is not read until the output projection, which no longer needs V: V can
 * live there (one scratch buffer less at the peak) when the output holds it and the built-in
 * core and projections are used. */
static int values_in_output(const mhfa_module *m, int batch, int graph_size, const forward_io *io,
                            int output_may_alias) {
    size_t v_bytes = (size_t)batch * (size_t)graph_size * (size_t)m->cfg.embed_dim *
                     mhfa_dtype_bytes(m->cfg.dtype);
    return !mhfa_uses_application_core(&m->cfg) && m->kernels.projection != MHFA_PROJECT_CLBLAST &&
           !output_may_alias && mem_size(io->out) >= v_bytes;
}

/* Q, K and V in the per-head layout, or rows-major: one launch for self-attention, two for
 * cross-attention. */
static mhfa_status project_inputs(mhfa_module *m, int batch, int n_query, int graph_size,
                                  const forward_io *io, int rows_layout) {
    if (m->kernels.projection == MHFA_PROJECT_CLBLAST)
        return mhfa_clblast_project_inputs(m, batch, n_query, graph_size, io->q, io->h);
    const int e = m->cfg.embed_dim;
    cl_mem q = m->q_heads.mem, k = m->k_heads.mem, v = io->v;
    cl_kernel kernel = rows_layout ? m->kernels.project_rows : m->kernels.project_to_heads;
    projection p = {kernel,
                    "query/key/value projection",
                    io->q,
                    n_query,
                    m->cfg.input_dim,
                    m->in_t,
                    m->in_bias,
                    3 * e,
                    0,
                    3 * e,
                    {q, k, v}};
    if (!io->h) return project(m, &p, batch);
    p.what = "query projection";
    p.out_features = e;
    mhfa_status status = project(m, &p, batch);
    projection kv = {kernel,
                     "key/value projection",
                     io->h,
                     graph_size,
                     m->cfg.input_dim,
                     m->in_t,
                     m->in_bias,
                     3 * e,
                     e,
                     2 * e,
                     {k, v, v}};
    return status == MHFA_SUCCESS ? project(m, &kv, batch) : status;
}

static mhfa_status reserve_scratch(mhfa_module *m, int batch, int n_query, int graph_size,
                                   size_t mask_count, int values_elsewhere) {
    mhfa_context *ctx = m->ctx;
    const mhfa_scratch_sizes s =
        mhfa_scratch_sizes_for(m, batch, n_query, graph_size, mask_count, values_elsewhere);
    mhfa_status status = mhfa_buffer_reserve(ctx, &m->q_heads, s.q_heads);
    if (status == MHFA_SUCCESS) status = mhfa_buffer_reserve(ctx, &m->k_heads, s.k_heads);
    if (status == MHFA_SUCCESS && s.v_heads)
        status = mhfa_buffer_reserve(ctx, &m->v_heads, s.v_heads);
    if (status == MHFA_SUCCESS && s.context)
        status = mhfa_buffer_reserve(ctx, &m->context, s.context);
    if (status == MHFA_SUCCESS) status = mhfa_buffer_reserve(ctx, &m->keep, s.keep);
    if (status == MHFA_SUCCESS && s.weights)
        status = mhfa_buffer_reserve(ctx, &m->weights, s.weights);
    return status;
}

static mhfa_status enqueue_mask_to_keep(mhfa_module *m, const forward_io *io) {
    cl_int count = (cl_int)io->layout.count;
    mhfa_status status = mhfa_set_args(m->ctx, m->kernels.mask_to_keep, "mask_to_keep", 3,
                                       MHFA_ARG(io->mask), MHFA_ARG(m->keep.mem), MHFA_ARG(count));
    size_t local = 64, global = mhfa_round_up(((size_t)count + 15) / 16, local); /* 16 a item */
    if (status == MHFA_SUCCESS)
        status = mhfa_enqueue(m->ctx, m->kernels.mask_to_keep, 1, &global, &local, "mask_to_keep");
    return status;
}

/* The application's attention core, fenced on an out-of-order queue. */
static mhfa_status call_attention_fn(mhfa_module *m, const mhfa_attention_args *args) {
    mhfa_context *ctx = m->ctx;
    cl_int err =
        ctx->out_of_order ? clEnqueueBarrierWithWaitList(ctx->queue, 0, NULL, NULL) : CL_SUCCESS;
    if (err != CL_SUCCESS) return mhfa_fail_cl(ctx, err, "ordering the attention_fn callback");
    mhfa_status status = m->cfg.attention_fn(m->cfg.attention_fn_data, ctx->queue, args);
    if (status != MHFA_SUCCESS)
        return mhfa_fail(ctx, status, "the attention_fn callback returned %d (%s)", (int)status,
                         mhfa_status_string(status));
    err = ctx->out_of_order ? clEnqueueBarrierWithWaitList(ctx->queue, 0, NULL, NULL) : CL_SUCCESS;
    return err == CL_SUCCESS ? MHFA_SUCCESS
                             : mhfa_fail_cl(ctx, err, "ordering after the attention_fn callback");
}

/* What the attention core gets; the q, k, v, out buffers are set by the caller. */
static mhfa_attention_args attention_args(const mhfa_module *m, int batch, int n_query,
                                          int graph_size, const forward_io *io) {
    mhfa_attention_args args;
    memset(&args, 0, sizeof args);
    args.keep = !io->mask ? NULL : io->layout.kind == MHFA_MASK_GIVEN ? io->mask : m->keep.mem;
    memcpy(args.keep_dims, io->layout.keep_dims, sizeof args.keep_dims);
    args.batch = batch;
    args.n_heads = m->cfg.n_heads;
    args.n_query = n_query;
    args.graph_size = graph_size;
    args.head_dim = m->head_dim;
    args.scale = (float)(1.0 / sqrt((double)m->head_dim));
    args.dropout_p = m->training ? m->cfg.attention_dropout : 0.0f;
    args.dropout_seed = m->dropout_seed;
    args.dropout_offset = m->dropout_offset;
    args.dtype = m->cfg.dtype;
    return args;
}

/* Few queries: the absorbed kernel does everything (it reads the mask as given). */
static mhfa_status enqueue_absorbed_forward(mhfa_module *m, int batch, int n_query, int graph_size,
                                            const forward_io *io) {
    mhfa_attention_args args = attention_args(m, batch, n_query, graph_size, io);
    return mhfa_absorbed_forward(m, &args, &io->layout, io->q, io->h ? io->h : io->q, io->out);
}

static mhfa_status enqueue_forward(mhfa_module *m, int batch, int n_query, int graph_size,
                                   forward_io *io) {
    const mhfa_config *cfg = &m->cfg;
    const int may_alias = output_may_alias_input(io);
    const mhfa_forward_plan plan =
        mhfa_plan_for_forward(m, n_query, graph_size, io->mask != NULL, may_alias);
    io->layout.kind = plan.mask_kind;
    if (plan.route == MHFA_ROUTE_ABSORBED)
        return enqueue_absorbed_forward(m, batch, n_query, graph_size, io);
    const int given = plan.mask_kind == MHFA_MASK_GIVEN;
    int values_elsewhere = values_in_output(m, batch, graph_size, io, may_alias);
    mhfa_status status = reserve_scratch(m, batch, n_query, graph_size,
                                         given ? 1 : io->layout.count, values_elsewhere);
    if (status != MHFA_SUCCESS) return status;
    io->v = values_elsewhere ? io->out : m->v_heads.mem;
    const int rows_layout = plan.rows_layout;
    if (plan.mask_kind == MHFA_MASK_KEEP) status = enqueue_mask_to_keep(m, io);
    if (status == MHFA_SUCCESS)
        status = project_inputs(m, batch, n_query, graph_size, io, rows_layout);
    if (status != MHFA_SUCCESS) return status;

    mhfa_attention_args args = attention_args(m, batch, n_query, graph_size, io);
    args.q = m->q_heads.mem;
    args.k = m->k_heads.mem;
    args.v = io->v;
    const int application = plan.route == MHFA_ROUTE_APPLICATION;
    args.out = application ? m->context.mem : m->q_heads.mem;
    if (application)
        status = call_attention_fn(m, &args);
    else
        status = mhfa_attention(m, &plan, &args, &io->layout,
                                cfg->store_attn_weights ? m->weights.mem : NULL);
    if (status == MHFA_SUCCESS && plan.clblast)
        return mhfa_clblast_project_output(m, batch, n_query, args.out, io->out);
    projection out = {rows_layout ? m->kernels.project_rows : m->kernels.project_to_rows,
                      "output projection",
                      args.out,
                      n_query,
                      cfg->embed_dim,
                      m->out_t,
                      m->out_bias,
                      cfg->embed_dim,
                      0,
                      cfg->embed_dim,
                      {io->out, io->out, io->out}};
    return status == MHFA_SUCCESS ? project(m, &out, batch) : status;
}

static void swap_buffers(mhfa_buffer *a, mhfa_buffer *b) {
    mhfa_buffer t = *a;
    *a = *b;
    *b = t;
}

/* After a forward has been wholly enqueued: advance dropout, keep what last_attention reads. */
static void commit_forward(mhfa_module *m, int batch, int n_query, int graph_size,
                           const forward_io *io) {
    if (m->training && m->cfg.attention_dropout > 0.0f) m->dropout_offset++;
    if (!m->cfg.store_attn_weights) return;
    swap_buffers(&m->weights, &m->stored_weights);
    if (io->mask) swap_buffers(&m->keep, &m->stored_keep);
    int dims[4] = {batch, m->cfg.n_heads, n_query, graph_size};
    memcpy(m->stored_dims, dims, sizeof dims);
    m->stored_mask_ndim = io->layout.ndim;
    memcpy(m->stored_mask_dims, io->layout.dims, sizeof m->stored_mask_dims);
    m->stored_valid = 1;
}

static mhfa_status check_buffer(const mhfa_module *m, cl_mem mem, size_t bytes, const char *name) {
    size_t size = mem_size(mem);
    if (size < bytes)
        return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT,
                         "buffer %s holds %zu bytes; the forward needs %zu", name, size, bytes);
    return MHFA_SUCCESS;
}

mhfa_status mhfa_forward_enqueue(mhfa_module *m, int batch, int n_query, int graph_size, cl_mem q,
                                 cl_mem h, const mhfa_mask_buffer *mask, cl_mem out,
                                 cl_uint num_wait, const cl_event *wait_list, cl_event *event) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    mhfa_context *ctx = m->ctx;
    if (!q || !out)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_ARGUMENT, "buffer %s is NULL", q ? "out" : "q");
    if ((num_wait > 0) != (wait_list != NULL))
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_ARGUMENT, "num_wait (%u) and wait_list disagree",
                         (unsigned)num_wait);
    if (mask && !mask->data)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_ARGUMENT, "mask->data is NULL");
    mhfa_status status = check_shape(m, batch, n_query, graph_size, h != NULL);
    forward_io io = {q, h, mask ? mask->data : NULL, out, {0}, NULL};
    if (status == MHFA_SUCCESS && mask)
        status = mhfa_mask_layout_make(ctx, mask->ndim, mask->dims, batch, m->cfg.n_heads, n_query,
                                       graph_size, &io.layout);
    size_t f = mhfa_dtype_bytes(m->cfg.dtype), din = (size_t)m->cfg.input_dim;
    size_t e = (size_t)m->cfg.embed_dim;
    if (status == MHFA_SUCCESS)
        status = check_buffer(m, q, (size_t)batch * (size_t)n_query * din * f, "q");
    if (status == MHFA_SUCCESS && h)
        status = check_buffer(m, h, (size_t)batch * (size_t)graph_size * din * f, "h");
    if (status == MHFA_SUCCESS && mask)
        status = check_buffer(m, mask->data, io.layout.count, "mask->data");
    if (status == MHFA_SUCCESS)
        status = check_buffer(m, out, (size_t)batch * (size_t)n_query * e * f, "out");
    if (status == MHFA_SUCCESS)
        status = mhfa_check_forward_limits(m, batch, n_query, graph_size, io.layout.count, 0);
    if (status != MHFA_SUCCESS) return status;

    cl_int err = CL_SUCCESS;
    if (num_wait > 0) err = clEnqueueBarrierWithWaitList(ctx->queue, num_wait, wait_list, NULL);
    if (err != CL_SUCCESS) return mhfa_fail_cl(ctx, err, "waiting for the wait list");
    status = enqueue_forward(m, batch, n_query, graph_size, &io);
    if (status == MHFA_SUCCESS && event) {
        err = clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, event);
        if (err != CL_SUCCESS) status = mhfa_fail_cl(ctx, err, "enqueueing the completion event");
    }
    if (status == MHFA_SUCCESS) commit_forward(m, batch, n_query, graph_size, &io);
    return status;
}

/* mhfa_forward's arrays: elements of q, h and out, and bytes per element in the storage type. */
typedef struct staging_sizes {
    size_t q, h, out, element;
} staging_sizes;

static staging_sizes staging_sizes_of(const mhfa_module *m, int batch, int n_query,
                                      int graph_size) {
    size_t din = (size_t)m->cfg.input_dim, e = (size_t)m->cfg.embed_dim;
    staging_sizes s = {(size_t)batch * (size_t)n_query * din,
                       (size_t)batch * (size_t)graph_size * din,
                       (size_t)batch * (size_t)n_query * e, mhfa_dtype_bytes(m->cfg.dtype)};
    return s;
}

/* The device buffers mhfa_forward stages its arrays through, before any host array is read. */
static mhfa_status reserve_staging(mhfa_module *m, const staging_sizes *s, int has_h,
                                   size_t mask_count) {
    mhfa_context *ctx = m->ctx;
    mhfa_status status = mhfa_buffer_reserve(ctx, &m->host_q, s->q * s->element);
    if (status == MHFA_SUCCESS && has_h)
        status = mhfa_buffer_reserve(ctx, &m->host_h, s->h * s->element);
    if (status == MHFA_SUCCESS && mask_count)
        status = mhfa_buffer_reserve(ctx, &m->host_mask, mask_count);
    if (status == MHFA_SUCCESS)
        status = mhfa_buffer_reserve(ctx, &m->host_out, s->out * s->element);
    return status;
}

/* mhfa_forward's device part: the inputs (in the storage type) through the staging buffers,
 * the forward, the output read back into out. */
static mhfa_status forward_through_staging(mhfa_module *m, int batch, int n_query, int graph_size,
                                           const staging_sizes *s, const void *q, const void *h,
                                           const mhfa_mask *mask, forward_io *io, void *out) {
    mhfa_context *ctx = m->ctx;
    const size_t q_bytes = s->q * s->element, h_bytes = s->h * s->element;
    const size_t out_bytes = s->out * s->element;
    cl_command_queue queue = ctx->queue;
    cl_int err = clEnqueueWriteBuffer(queue, m->host_q.mem, CL_FALSE, 0, q_bytes, q, 0, NULL, NULL);
    if (err == CL_SUCCESS && h)
        err = clEnqueueWriteBuffer(queue, m->host_h.mem, CL_FALSE, 0, h_bytes, h, 0, NULL, NULL);
    if (err == CL_SUCCESS && mask)
        err = clEnqueueWriteBuffer(queue, m->host_mask.mem, CL_FALSE, 0, io->layout.count,
                                   mask->data, 0, NULL, NULL);
    if (err == CL_SUCCESS && ctx->out_of_order)
        err = clEnqueueBarrierWithWaitList(queue, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        clFinish(queue); /* the host arrays must not be read after we return */
        return mhfa_fail_cl(ctx, err, "writing the inputs to the device");
    }
    io->q = m->host_q.mem;
    io->h = h ? m->host_h.mem : NULL;
    io->mask = mask ? m->host_mask.mem : NULL;
    io->out = m->host_out.mem;
    mhfa_status status = enqueue_forward(m, batch, n_query, graph_size, io);
    if (status != MHFA_SUCCESS) {
        clFinish(queue);
        return status;
    }
    err = clEnqueueReadBuffer(queue, m->host_out.mem, CL_TRUE, 0, out_bytes, out, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        clFinish(queue); /* the writes of the host's q, h and mask may still be reading them */
        return mhfa_fail_cl(ctx, err, "reading the output from the device");
    }
    return MHFA_SUCCESS;
}

mhfa_status mhfa_forward(mhfa_module *m, int batch, int n_query, int graph_size, const float *q,
                         const float *h, const mhfa_mask *mask, float *out) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    mhfa_context *ctx = m->ctx;
    if (!q || !out)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_ARGUMENT, "%s is NULL", q ? "out" : "q");
    if (mask && !mask->data)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_ARGUMENT, "mask->data is NULL");
    mhfa_status status = check_shape(m, batch, n_query, graph_size, h != NULL);
    forward_io io = {0};
    if (status == MHFA_SUCCESS && mask)
        status = mhfa_mask_layout_make(ctx, mask->ndim, mask->dims, batch, m->cfg.n_heads, n_query,
                                       graph_size, &io.layout);
    if (status == MHFA_SUCCESS)
        status = mhfa_check_forward_limits(m, batch, n_query, graph_size, io.layout.count, 1);
    const staging_sizes sizes = staging_sizes_of(m, batch, n_query, graph_size);
    if (status == MHFA_SUCCESS)
        status = reserve_staging(m, &sizes, h != NULL, mask ? io.layout.count : 0);
    if (status != MHFA_SUCCESS) return status;

    /* Half storage: 16-bit copies of the host's float32 arrays go to the device and come back. */
    const mhfa_dtype dtype = m->cfg.dtype;
    void *q_copy, *h_copy = NULL, *out_copy = NULL;
    const void *q_stored = mhfa_storage_copy(dtype, q, sizes.q, &q_copy);
    const void *h_stored = h ? mhfa_storage_copy(dtype, h, sizes.h, &h_copy) : NULL;
    if (dtype != MHFA_FLOAT32) out_copy = malloc(sizes.out * sizes.element);
    void *out_stored = dtype == MHFA_FLOAT32 ? (void *)out : out_copy;
    if (!q_stored || (h && !h_stored) || !out_stored)
        status = mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    else
        status = forward_through_staging(m, batch, n_query, graph_size, &sizes, q_stored, h_stored,
                                         mask, &io, out_stored);
    if (status == MHFA_SUCCESS) {
        if (out_copy) mhfa_from_storage(dtype, out_copy, sizes.out, out);
        commit_forward(m, batch, n_query, graph_size, &io);
    }
    free(out_copy);
    free(h_copy);
    free(q_copy);
    return status;
}
