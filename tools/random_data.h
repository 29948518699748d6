/* Seeded inputs for the tools (mhfa-run, mhfa-bench): splitmix64, uniform and N(0,1) draws. */
#ifndef MHFA_TOOLS_RANDOM_DATA_H
#define MHFA_TOOLS_RANDOM_DATA_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

static inline uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline double uniform01(uint64_t *state) { /* in [0, 1) */
    return (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

static inline void fill_normal(uint64_t *state, float *x, size_t n) { /* Box-Muller, N(0,1) */
    for (size_t i = 0; i < n; i++) {
        double u = 1.0 - uniform01(state), v = uniform01(state);
        x[i] = (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
    }
}

#endif
