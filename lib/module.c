/* Modules: configuration, weights (on the device, mirrored on the host), training mode. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const projection_names[4] = {"W_query", "W_key", "W_val", "W_out"};

const char *mhfa_projection_name(mhfa_projection which) {
    return projection_names[which];
}

mhfa_config mhfa_config_default(int n_heads, int input_dim, int embed_dim) {
    mhfa_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_heads = n_heads;
    cfg.input_dim = input_dim;
    cfg.embed_dim = embed_dim;
    cfg.bias = 1;
    return cfg;
}

static mhfa_status check_config(const mhfa_context *ctx, const mhfa_config *cfg) {
    if (cfg->n_heads <= 0 || cfg->input_dim <= 0 || cfg->embed_dim <= 0)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                         "n_heads (%d), input_dim (%d) and embed_dim (%d) must be positive",
                         cfg->n_heads, cfg->input_dim, cfg->embed_dim);
    if (cfg->embed_dim % cfg->n_heads != 0)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_SHAPE,
                         "embed_dim (%d) is not divisible by n_heads (%d)", cfg->embed_dim,
                         cfg->n_heads);
    if (!(cfg->attention_dropout >= 0.0f && cfg->attention_dropout < 1.0f))
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                         "attention_dropout (%g) must be in [0, 1)",
                         (double)cfg->attention_dropout);
    if (mhfa_dtype_bytes(cfg->dtype) == 0)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                         "dtype (%d) is none of MHFA_FLOAT32, MHFA_FLOAT16, MHFA_BFLOAT16",
                         (int)cfg->dtype);
    /* Every weight matrix must be addressable with int indices in the kernels. */
    if ((size_t)cfg->embed_dim *
            (size_t)(cfg->input_dim > cfg->embed_dim ? cfg->input_dim : cfg->embed_dim) >
        (size_t)INT32_MAX)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_SHAPE, "weight matrices of %d x %d are too large",
                         cfg->embed_dim, cfg->input_dim);
    return MHFA_SUCCESS;
}

static int in_features(const mhfa_module *m, int which) {
    return which == MHFA_W_OUT ? m->cfg.embed_dim : m->cfg.input_dim;
}

static size_t weight_count(const mhfa_module *m, int which) {
    return (size_t)m->cfg.embed_dim * (size_t)in_features(m, which);
}

mhfa_status mhfa_module_create(mhfa_context *ctx, const mhfa_config *cfg, mhfa_module **out) {
    if (!ctx) return MHFA_ERROR_INVALID_ARGUMENT;
    if (!cfg || !out)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_ARGUMENT, "%s is NULL", cfg ? "module" : "cfg");
    *out = NULL;
    mhfa_status status = check_config(ctx, cfg);
    if (status != MHFA_SUCCESS) return status;

    mhfa_module *m = calloc(1, sizeof *m);
    if (!m) return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    m->ctx = ctx;
    m->cfg = *cfg;
    m->head_dim = cfg->embed_dim / cfg->n_heads;
    for (int i = 0; i < 4 && status == MHFA_SUCCESS; i++) {
        size_t n = weight_count(m, i), e = (size_t)cfg->embed_dim;
        m->host_weight[i] = malloc(n * sizeof(float));
        if (cfg->bias) m->host_bias[i] = malloc(e * sizeof(float));
        if (!m->host_weight[i] || (cfg->bias && !m->host_bias[i])) {
            status = mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
            break;
        }
    }
    if (status == MHFA_SUCCESS) status = mhfa_device_weights_alloc(m);
    if (status == MHFA_SUCCESS) status = mhfa_build_module_kernels(m);
    if (status == MHFA_SUCCESS) status = mhfa_module_init_parameters(m, 0);
    if (status != MHFA_SUCCESS) {
        mhfa_module_destroy(m);
        return status;
    }
    *out = m;
    return MHFA_SUCCESS;
}

/* Every scratch buffer of the module, for release and accounting. */
static void scratch_buffers(mhfa_module *m, mhfa_buffer *list[14]) {
    mhfa_buffer *all[14] = {&m->partials,       &m->gemm_rows,  &m->q_heads,   &m->k_heads,
                            &m->v_heads,        &m->context,    &m->keep,      &m->weights,
                            &m->host_q,         &m->host_h,     &m->host_mask, &m->host_out,
                            &m->stored_weights, &m->stored_keep};
    memcpy(list, all, sizeof all);
}

void mhfa_module_destroy(mhfa_module *m) {
    if (!m) return;
    mhfa_release_module_kernels(&m->kernels);
    mhfa_device_weights_release(m);
    for (int i = 0; i < 4; i++) {
        free(m->host_weight[i]);
        free(m->host_bias[i]);
    }
    mhfa_buffer *list[14];
    scratch_buffers(m, list);
    for (int i = 0; i < 14; i++)
        mhfa_buffer_release(list[i]);
    free(m);
}

mhfa_status mhfa_module_device_bytes(const mhfa_module *m, size_t *bytes) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    if (!bytes) return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT, "bytes is NULL");
    size_t total = mhfa_device_weights_bytes(m);
    mhfa_buffer *list[14];
    scratch_buffers((mhfa_module *)m, list);
    for (int i = 0; i < 14; i++)
        total += list[i]->bytes;
    *bytes = total;
    return MHFA_SUCCESS;
}

mhfa_status mhfa_module_get_config(const mhfa_module *m, mhfa_config *cfg) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    if (!cfg) return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT, "cfg is NULL");
    *cfg = m->cfg;
    return MHFA_SUCCESS;
}

static mhfa_status check_projection(const mhfa_module *m, mhfa_projection which, const void *weight,
                                    const void *bias, const char *verb) {
    if ((int)which < MHFA_W_QUERY || (int)which > MHFA_W_OUT)
        return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT, "%s: no projection number %d", verb,
                         (int)which);
    if (!weight)
        return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT, "%s %s: weight is NULL", verb,
                         projection_names[which]);
    if (m->cfg.bias && !bias)
        return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT,
                         "%s %s: bias is NULL but the module has biases", verb,
                         projection_names[which]);
    if (!m->cfg.bias && bias)
        return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT,
                         "%s %s: bias given but the module has no biases", verb,
                         projection_names[which]);
    return MHFA_SUCCESS;
}

/* The host mirror of one projection holds what the device holds: rounded to the storage type. */
static void round_mirror(mhfa_module *m, int which) {
    mhfa_round_to_storage(m->cfg.dtype, m->host_weight[which], weight_count(m, which));
    if (m->host_bias[which])
        mhfa_round_to_storage(m->cfg.dtype, m->host_bias[which], (size_t)m->cfg.embed_dim);
}

/* Writes one projection to the device, then to the host mirror: on failure neither changes
 * (a failed write leaves the device copy undefined, so it is rewritten from the mirror). */
mhfa_status mhfa_module_set_projection(mhfa_module *m, mhfa_projection which, const float *weight,
                                       const float *bias) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    mhfa_status status = check_projection(m, which, weight, bias, "set_projection");
    if (status != MHFA_SUCCESS) return status;
    status = mhfa_device_weights_write(m, which, weight, bias);
    if (status != MHFA_SUCCESS) {
        mhfa_device_weights_write(m, which, m->host_weight[which],
                                  bias ? m->host_bias[which] : NULL);
        return status;
    }
    size_t w_bytes = weight_count(m, which) * sizeof(float);
    size_t b_bytes = (size_t)m->cfg.embed_dim * sizeof(float);
    memcpy(m->host_weight[which], weight, w_bytes);
    if (bias) memcpy(m->host_bias[which], bias, b_bytes);
    round_mirror(m, which);
    return MHFA_SUCCESS;
}

mhfa_status mhfa_module_replace_weights(mhfa_module *m, const float *const weight[4],
                                        const float *const bias[4]) {
    mhfa_status status = MHFA_SUCCESS;
    int written = 0;
    while (written < 4 && status == MHFA_SUCCESS) {
        status =
            mhfa_device_weights_write(m, (mhfa_projection)written, weight[written], bias[written]);
        written++;
    }
    if (status != MHFA_SUCCESS) {
        for (int i = 0; i < written; i++)
            mhfa_device_weights_write(m, (mhfa_projection)i, m->host_weight[i], m->host_bias[i]);
        return status;
    }
    for (int i = 0; i < 4; i++) {
        memcpy(m->host_weight[i], weight[i], weight_count(m, i) * sizeof(float));
        if (m->cfg.bias) memcpy(m->host_bias[i], bias[i], (size_t)m->cfg.embed_dim * sizeof(float));
        round_mirror(m, i);
    }
    return MHFA_SUCCESS;
}

mhfa_status mhfa_module_get_projection(const mhfa_module *m, mhfa_projection which, float *weight,
                                       float *bias) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    mhfa_status status = check_projection(m, which, weight, bias, "get_projection");
    if (status != MHFA_SUCCESS) return status;
    memcpy(weight, m->host_weight[which], weight_count(m, which) * sizeof(float));
    if (bias) memcpy(bias, m->host_bias[which], (size_t)m->cfg.embed_dim * sizeof(float));
    return MHFA_SUCCESS;
}

mhfa_status mhfa_module_init_parameters(mhfa_module *m, uint64_t seed) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    mhfa_host_weights w;
    if (mhfa_initial_weights(&m->cfg, seed, &w) != MHFA_SUCCESS)
        return mhfa_fail(m->ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    mhfa_status status = mhfa_module_replace_weights(m, (const float *const *)w.weight,
                                                     (const float *const *)w.bias);
    mhfa_host_weights_free(&w);
    return status;
}

mhfa_status mhfa_module_set_training(mhfa_module *m, int training, uint64_t seed) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    m->training = training != 0;
    m->dropout_seed = seed;
    m->dropout_offset = 0;
    return MHFA_SUCCESS;
}
