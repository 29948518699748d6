/* The same forward gives bitwise the same output: 250 repeats at batch >= 60 on one module, and
 * once more on a second context of the same device. Every route is taken (flash and manual path,
 * masks, cross-attention, one query, dropout replayed from the same seed); ctest runs it with
 * each kernel variant's tuning file. */
#include "support.h"

#include "reference.h"

#include <stdlib.h>
#include <string.h>

enum { REPEATS = 250, DIN = 12, E = 16, H = 4 };

typedef struct repeat_case {
    const char *name;
    int batch, n_query, graph_size, cross, store, mask_ndim;
    float dropout_p;
} repeat_case;

static const repeat_case cases[] = {
    {"self, flash", 64, 20, 20, 0, 0, 0, 0.0f},
    {"cross, key padding mask", 60, 13, 29, 1, 0, 2, 0.0f},
    {"manual path, 3-D mask", 61, 9, 17, 1, 1, 3, 0.0f},
    {"one query, masked", 64, 1, 50, 1, 0, 2, 0.0f},
    {"dropout, same seed", 60, 11, 11, 0, 0, 0, 0.25f},
};

typedef struct problem {
    const repeat_case *c;
    float *weight[4], *bias[4], *q, *h;
    unsigned char *mask;
    mhfa_mask mask_desc;
    size_t out_size;
} problem;

static void make_problem(const repeat_case *c, test_rng *rng, problem *p) {
    memset(p, 0, sizeof *p);
    p->c = c;
    for (int i = 0; i < 4; i++) {
        const int in = i == 3 ? E : DIN;
        p->weight[i] = checked_malloc(sizeof(float) * E * in);
        p->bias[i] = checked_malloc(sizeof(float) * E);
        fill_normal(rng, p->weight[i], (size_t)E * in, 0.4);
        fill_normal(rng, p->bias[i], E, 0.1);
    }
    p->q = checked_malloc(sizeof(float) * c->batch * c->n_query * DIN);
    fill_normal(rng, p->q, (size_t)c->batch * c->n_query * DIN, 1.0);
    if (c->cross) {
        p->h = checked_malloc(sizeof(float) * c->batch * c->graph_size * DIN);
        fill_normal(rng, p->h, (size_t)c->batch * c->graph_size * DIN, 1.0);
    }
    if (c->mask_ndim) {
        const size_t n = (size_t)c->batch * (c->mask_ndim == 3 ? c->n_query : 1) * c->graph_size;
        p->mask = checked_malloc(n);
        for (size_t i = 0; i < n; i++)
            p->mask[i] = rng_uniform(rng) < 0.3;
        p->mask_desc = (mhfa_mask){p->mask, c->mask_ndim, {c->batch, c->graph_size, 0, 0}};
        if (c->mask_ndim == 3)
            p->mask_desc.dims[1] = c->n_query, p->mask_desc.dims[2] = c->graph_size;
    }
    p->out_size = (size_t)c->batch * c->n_query * E;
}

static void free_problem(problem *p) {
    free_weights(p->weight, p->bias);
    free(p->q);
    free(p->h);
    free(p->mask);
}

static mhfa_module *module_for(mhfa_context *ctx, const problem *p) {
    mhfa_config cfg = mhfa_config_default(H, DIN, E);
    cfg.store_attn_weights = p->c->store;
    cfg.attention_dropout = p->c->dropout_p;
    mhfa_module *m = NULL;
    if (mhfa_module_create(ctx, &cfg, &m) != MHFA_SUCCESS)
        fail_msg("module_create: %s", mhfa_context_error_message(ctx));
    for (int i = 0; i < 4; i++)
        if (mhfa_module_set_projection(m, (mhfa_projection)i, p->weight[i], p->bias[i]))
            fail_msg("set_projection: %s", mhfa_context_error_message(ctx));
    return m;
}

/* One forward into out (poisoned first); with dropout, the stream restarts from the same seed. */
static void forward(mhfa_module *m, mhfa_context *ctx, const problem *p, float *out) {
    const repeat_case *c = p->c;
    if (c->dropout_p > 0.0f) assert_int_equal(mhfa_module_set_training(m, 1, 1234), MHFA_SUCCESS);
    poison(out, p->out_size);
    if (mhfa_forward(m, c->batch, c->n_query, c->graph_size, p->q, p->h,
                     c->mask_ndim ? &p->mask_desc : NULL, out) != MHFA_SUCCESS)
        fail_msg("%s: forward: %s", c->name, mhfa_context_error_message(ctx));
}

/* The first output against float64 (without dropout), so that a constant wrong answer fails. */
static void check_reference(const problem *p, const float *out) {
    const repeat_case *c = p->c;
    if (c->dropout_p > 0.0f) return;
    double *ref = checked_malloc(sizeof(double) * p->out_size);
    ref_problem r = {c->batch, c->n_query, c->graph_size, DIN, E,    H, {0}, {0},         p->q,
                     p->h,     p->mask,    c->mask_ndim,  {0}, 0.0f, 0, 0,   MHFA_FLOAT32};
    memcpy(r.mask_dims, p->mask_desc.dims, sizeof r.mask_dims);
    for (int i = 0; i < 4; i++)
        r.weight[i] = p->weight[i], r.bias[i] = p->bias[i];
    assert_int_equal(ref_forward(&r, ref, NULL, NULL), 0);
    assert_close(out, ref, p->out_size, c->name);
    free(ref);
}

static void repeats_are_bitwise_equal(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_context *ctx = test_context();
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        problem p;
        make_problem(&cases[k], &rng, &p);
        float *first = checked_malloc(sizeof(float) * p.out_size);
        float *again = checked_malloc(sizeof(float) * p.out_size);
        mhfa_module *m = module_for(ctx, &p);
        forward(m, ctx, &p, first);
        check_reference(&p, first);
        for (int r = 1; r < REPEATS; r++) {
            forward(m, ctx, &p, again);
            if (memcmp(first, again, sizeof(float) * p.out_size) != 0)
                fail_msg("%s: repeat %d differs from the first forward", p.c->name, r);
        }
        mhfa_module_destroy(m);

        /* A second context on the same device, with its own module of the same weights. */
        mhfa_context *other = NULL;
        if (mhfa_context_create(NULL, &other) != MHFA_SUCCESS)
            fail_msg("second context: %s", mhfa_last_create_error());
        m = module_for(other, &p);
        forward(m, other, &p, again);
        if (memcmp(first, again, sizeof(float) * p.out_size) != 0)
            fail_msg("%s: a second context gives another output", p.c->name);
        mhfa_module_destroy(m);
        mhfa_context_destroy(other);
        free(first);
        free(again);
        free_problem(&p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(repeats_are_bitwise_equal)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
