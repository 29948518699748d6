/* The initial weights (mhfa_module_init_parameters): Xavier-uniform weights, nn.Linear's default
 * biases, from Philox4x32-10 keyed by the seed, so the same seed gives the same numbers on every
 * device and platform. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
static void generate_projection(const mhfa_config *cfg, uint64_t seed, uint32_t which,
                                float *weight, float *bias) {
    size_t fan_out = (size_t)cfg->embed_dim;
    size_t fan_in = which == MHFA_W_OUT ? fan_out : (size_t)cfg->input_dim;
    double xavier = sqrt(6.0 / (double)(fan_in + fan_out));
    for (size_t i = 0; i < fan_out * fan_in; i++)
        weight[i] = uniform_element(seed, 2 * which, i, xavier);
    if (bias)
        for (size_t i = 0; i < fan_out; i++)
            bias[i] = uniform_element(seed, 2 * which + 1, i, 1.0 / sqrt((double)fan_in));
}

void mhfa_host_weights_free(mhfa_host_weights *w) {
    for (int i = 0; i < 4; i++) {
        free(w->weight[i]);
        free(w->bias[i]);
    }
    memset(w, 0, sizeof *w);
}

mhfa_status mhfa_initial_weights(const mhfa_config *cfg, uint64_t seed, mhfa_host_weights *w) {
    memset(w, 0, sizeof *w);
    const size_t e = (size_t)cfg->embed_dim;
    for (uint32_t i = 0; i < 4; i++) {
        size_t in = i == MHFA_W_OUT ? e : (size_t)cfg->input_dim;
        w->weight[i] = malloc(e * in * sizeof(float));
        w->bias[i] = cfg->bias ? malloc(e * sizeof(float)) : NULL;
        if (!w->weight[i] || (cfg->bias && !w->bias[i])) {
            mhfa_host_weights_free(w);
            return MHFA_ERROR_OUT_OF_MEMORY;
        }
        generate_projection(cfg, seed, i, w->weight[i], w->bias[i]);
    }
    return MHFA_SUCCESS;
}
