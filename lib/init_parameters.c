/* init_parameters: Xavier-uniform weights, nn.Linear's default biases, from Philox4x32-10 keyed by
 * the seed, so the same seed gives the same numbers on every device and platform. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

/* Element i of stream `stream`, uniform in [-bound, bound): 24 random bits, then double arithmetic
 * rounded once to float, which every IEEE platform does alike. */
static float uniform_element(uint64_t seed, uint32_t stream, uint64_t i, double bound) {
    uint64_t block = i >> 2;
    uint32_t counter[4] = {(uint32_t)block, (uint32_t)(block >> 32), stream, 0x6d686661u};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t r[4];
    mhfa_philox4x32_10(counter, key, r);
    double u = (double)(r[i & 3] >> 8) / 16777216.0;
    return (float)((2.0 * u - 1.0) * bound);
}

/* Fills one projection's weight (and bias, if any) for the seed. */
static void generate_projection(const mhfa_module *m, uint64_t seed, uint32_t which, float *weight,
                                float *bias) {
    size_t fan_out = (size_t)m->cfg.embed_dim;
    size_t fan_in = which == MHFA_W_OUT ? fan_out : (size_t)m->cfg.input_dim;
    double xavier = sqrt(6.0 / (double)(fan_in + fan_out));
    for (size_t i = 0; i < fan_out * fan_in; i++)
        weight[i] = uniform_element(seed, 2 * which, i, xavier);
    if (bias)
        for (size_t i = 0; i < fan_out; i++)
            bias[i] = uniform_element(seed, 2 * which + 1, i, 1.0 / sqrt((double)fan_in));
}

mhfa_status mhfa_module_init_parameters(mhfa_module *m, uint64_t seed) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    const size_t e = (size_t)m->cfg.embed_dim;
    const size_t in_max =
        (size_t)(m->cfg.input_dim > m->cfg.embed_dim ? m->cfg.input_dim : m->cfg.embed_dim);
    /* New values for one projection, and the old ones of all four to restore after a failure. */
    float *weight = malloc(e * in_max * sizeof(float)), *old_weight[4] = {0}, *old_bias[4] = {0};
    float *bias = m->cfg.bias ? malloc(e * sizeof(float)) : NULL;
    int ok = weight && (!m->cfg.bias || bias);
    for (int i = 0; i < 4 && ok; i++) {
        old_weight[i] = malloc(e * in_max * sizeof(float));
        old_bias[i] = m->cfg.bias ? malloc(e * sizeof(float)) : NULL;
        ok = old_weight[i] && (!m->cfg.bias || old_bias[i]) &&
             mhfa_module_get_projection(m, (mhfa_projection)i, old_weight[i], old_bias[i]) ==
                 MHFA_SUCCESS;
    }
    mhfa_status status =
        ok ? MHFA_SUCCESS : mhfa_fail(m->ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    uint32_t written = 0;
    for (; written < 4 && status == MHFA_SUCCESS; written++) {
        generate_projection(m, seed, written, weight, bias);
        status = mhfa_module_set_projection(m, (mhfa_projection)written, weight, bias);
    }
    if (status != MHFA_SUCCESS && ok)
        for (uint32_t i = 0; i + 1 < written; i++)
            mhfa_module_set_projection(m, (mhfa_projection)i, old_weight[i], old_bias[i]);
    for (int i = 0; i < 4; i++) {
        free(old_weight[i]);
        free(old_bias[i]);
    }
    free(weight);
    free(bias);
    return status;
}
