/* The device memory a forward needs, buffer by buffer, and its refusal before anything is
 * allocated when one buffer exceeds the device's largest allocation or all of them its global
 * memory. reserve_scratch (forward.c) allocates by the same sizes. */
#include "internal.h"

#include <string.h>

mhfa_scratch_sizes mhfa_scratch_sizes_for(const mhfa_module *m, int batch, int n_query,
                                          int graph_size, size_t mask_count, int values_elsewhere) {
    size_t e = (size_t)m->cfg.embed_dim, f = mhfa_dtype_bytes(m->cfg.dtype);
    mhfa_scratch_sizes s;
    memset(&s, 0, sizeof s);
    s.q_heads = (size_t)batch * (size_t)n_query * e * f;
    s.k_heads = (size_t)batch * (size_t)graph_size * e * f;
    s.v_heads = values_elsewhere ? 0 : s.k_heads;
    /* The built-in kernels write each query's output over its own Q row, which only that
     * work-item reads: a context buffer of its own is needed only for the application's core. */
    s.context = mhfa_uses_application_core(&m->cfg) ? s.q_heads : 0;
    s.keep = mask_count;
    if (m->cfg.store_attn_weights)
        s.weights = (size_t)batch * (size_t)m->cfg.n_heads * (size_t)n_query * (size_t)graph_size *
                    sizeof(float); /* float32 whatever the storage */
    return s;
}

/* Growth of buf to bytes (0 where it holds enough or is not needed). */
static size_t growth(const mhfa_buffer *buf, size_t bytes) {
    return bytes > buf->bytes ? bytes : 0;
}

mhfa_status mhfa_check_forward_limits(const mhfa_module *m, int batch, int n_query, int graph_size,
                                      size_t mask_count, int host_copies) {
    const mhfa_context *ctx = m->ctx;
    size_t f = mhfa_dtype_bytes(m->cfg.dtype), din = (size_t)m->cfg.input_dim;
    size_t e = (size_t)m->cfg.embed_dim;
    mhfa_scratch_sizes s = mhfa_scratch_sizes_for(m, batch, n_query, graph_size, mask_count, 0);
    struct {
        const char *name;
        const mhfa_buffer *buf;
        size_t bytes;
    } need[10] = {
        {"Q per head", &m->q_heads, s.q_heads},
        {"K per head", &m->k_heads, s.k_heads},
        {"V per head", &m->v_heads, s.v_heads},
        {"the context", &m->context, s.context},
        {"the keep mask", &m->keep, s.keep},
        {"the attention weights", &m->weights, s.weights},
        {"the copy of q", &m->host_q, host_copies ? (size_t)batch * n_query * din * f : 0},
        {"the copy of h", &m->host_h, host_copies ? (size_t)batch * graph_size * din * f : 0},
        {"the copy of the mask", &m->host_mask, host_copies ? mask_count : 0},
        {"the copy of out", &m->host_out, host_copies ? (size_t)batch * n_query * e * f : 0},
    };
    size_t held = 0, added = 0;
    if (mhfa_module_device_bytes(m, &held) != MHFA_SUCCESS) held = 0;
    for (int i = 0; i < 10; i++) {
        if (need[i].bytes > ctx->info.max_alloc_size)
            return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY,
                             "batch %d, n_query %d, graph_size %d: %s needs %zu bytes, more than "
                             "the device's largest allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE, %llu "
                             "bytes)",
                             batch, n_query, graph_size, need[i].name, need[i].bytes,
                             (unsigned long long)ctx->info.max_alloc_size);
        added += growth(need[i].buf, need[i].bytes);
    }
    if ((cl_ulong)held + added > ctx->info.global_mem_size)
        return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY,
                         "batch %d, n_query %d, graph_size %d: the module would hold %zu bytes of "
                         "device memory, more than the device has (CL_DEVICE_GLOBAL_MEM_SIZE, %llu "
                         "bytes)",
                         batch, n_query, graph_size, held + added,
                         (unsigned long long)ctx->info.global_mem_size);
    return MHFA_SUCCESS;
}
