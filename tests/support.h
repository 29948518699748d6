/* What the tests share: a seeded generator, the device context, one forward checked end to end
 * against the float64 reference. */
#ifndef MHFA_TEST_SUPPORT_H
#define MHFA_TEST_SUPPORT_H

#include "mhfa.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

typedef struct test_rng {
    uint64_t state;
} test_rng;

/* The run's seed: MHFA_TEST_SEED if set, else fresh from the clock; printed once. */
uint64_t test_seed(void);
void rng_init(test_rng *rng, uint64_t seed);
uint64_t rng_next(test_rng *rng);
double rng_uniform(test_rng *rng); /* [0, 1) */
double rng_normal(test_rng *rng);  /* N(0, 1) */
void fill_normal(test_rng *rng, float *x, size_t n, double scale);

/* The context every device test uses (MHFA_DEVICE picks it); fails the test if none. */
mhfa_context *test_context(void);
void poison(float *x, size_t n); /* NaN everywhere, so an unwritten element fails */
void *checked_malloc(size_t bytes);
void remove_files_in(const char *dir); /* every file of dir whose name does not start with '.' */

/* SEMANTICS.md's bound: max |out - ref| <= 1e-5 * max(1, max |ref|), and nothing non-finite. */
void assert_close(const float *out, const double *ref, size_t n, const char *what);
/* The same with relative bound tolerance in place of 1e-5. */
void assert_close_within(const float *out, const double *ref, size_t n, double tolerance,
                         const char *what);

/* One forward, described. */
typedef struct test_case {
    int batch, n_query, graph_size, input_dim, embed_dim, n_heads;
    int bias, self_attention, store;
    int mask_ndim;         /* 0: none; 2, 3, 4 */
    int broadcast_mask;    /* 4-D: random dims of 1 */
    int fully_masked_rows; /* mask some rows entirely */
    double input_scale;    /* 1 for N(0,1) inputs; large for logits near 1e4 */
    float dropout_p;       /* > 0: training mode */
    mhfa_dtype dtype;      /* storage (0: float32); checked against the reference rounded alike */
    int finite_only;       /* check only that every output is finite (see test_half_storage.c) */
    int reduced_math;      /* mhfa_config.allow_reduced_math */
} test_case;

/* Weights drawn by the test and set through set_projection; returns the module. */
mhfa_module *make_module(mhfa_context *ctx, const test_case *c, test_rng *rng, float *weight[4],
                         float *bias[4]);
void free_weights(float *weight[4], float *bias[4]);
/* Builds the module, runs one forward and checks output (and stored weights) against the
 * reference. */
void run_case(mhfa_context *ctx, const test_case *c, test_rng *rng);
/* The same, with prepare (may be NULL) called on the module before its forward; keep: the module
 * is returned to the caller, else destroyed (and NULL returned). */
mhfa_module *run_case_with(mhfa_context *ctx, const test_case *c, test_rng *rng,
                           void (*prepare)(mhfa_module *m, const test_case *c, int graph_size),
                           int keep);
/* Fills a mask for the case; returns its element count (0 for none). */
size_t make_mask(const test_case *c, test_rng *rng, unsigned char **mask, int dims[4]);

#endif
