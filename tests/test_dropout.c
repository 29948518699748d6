/* Dropout: counter-based (seed, offset, position), so the same seed replays the same masks, both
 * paths drop the same weights, and the device's generator matches the host's (the reference). */
#include "support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Against the float64 reference, whose mask comes from the host twin of the generator. */
static void matches_reference(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    test_rng rng;
    rng_init(&rng, test_seed() + 11);
    for (int store = 0; store <= 1; store++) {
        test_case a = {2, 65, 33, 24, 32, 4, 1, 0, store, 3, 0, 1, 1.0, 0.3f, MHFA_FLOAT32, 0, 0};
        run_case(ctx, &a, &rng);
        test_case b = {3, 1, 129, 16, 48, 3, 0, 0, store, 2, 0, 0, 1.0, 0.1f, MHFA_FLOAT32, 0, 0};
        run_case(ctx, &b, &rng);
        test_case c = {1, 7, 7, 8, 8, 1, 1, 1, store, 0, 0, 0, 1.0, 0.9f, MHFA_FLOAT32, 0, 0};
        run_case(ctx, &c, &rng);
    }
}

typedef struct dropout_run {
    mhfa_module *m;
    int batch, n, dim;
    float *q, *out;
} dropout_run;

static void run_forward(dropout_run *r) {
    poison(r->out, (size_t)r->batch * r->n * r->dim);
    mhfa_status s = mhfa_forward(r->m, r->batch, r->n, r->n, r->q, NULL, NULL, r->out);
    if (s != MHFA_SUCCESS) fail_msg("forward: %s", mhfa_context_error_message(test_context()));
}

static int differs(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) != 0;
}

/* Same seed: same sequence of outputs; each forward in training advances; eval has no dropout;
 * flash and manual paths drop the same weights. */
static void replay_and_paths_agree(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    test_rng rng;
    rng_init(&rng, test_seed() + 12);
    const int B = 2, N = 40, E = 32;
    size_t n_out = (size_t)B * N * E;
    float *weight[4], *bias[4], *outs[5];
    float *q = checked_malloc(n_out * sizeof(float));
    fill_normal(&rng, q, n_out, 1.0);
    for (int i = 0; i < 5; i++)
        outs[i] = checked_malloc(n_out * sizeof(float));
    test_case flash_case = {B, N, N, E, E, 4, 1, 1, 0, 0, 0, 0, 1.0, 0.4f, MHFA_FLOAT32, 0, 0};
    mhfa_module *flash = make_module(ctx, &flash_case, &rng, weight, bias);
    uint64_t seed = rng_next(&rng);

    dropout_run r = {flash, B, N, E, q, NULL};
    mhfa_module_set_training(flash, 1, seed);
    r.out = outs[0], run_forward(&r);
    r.out = outs[1], run_forward(&r);
    mhfa_module_set_training(flash, 1, seed);
    r.out = outs[2], run_forward(&r);
    assert_false(differs(outs[0], outs[2], n_out)); /* replayed */
    assert_true(differs(outs[0], outs[1], n_out));  /* the offset advanced */

    /* The manual path with the same weights and seed: first forward, same drops. */
    mhfa_config cfg;
    mhfa_module_get_config(flash, &cfg);
    cfg.store_attn_weights = 1;
    mhfa_module *manual = NULL;
    assert_int_equal(mhfa_module_create(ctx, &cfg, &manual), MHFA_SUCCESS);
    for (int i = 0; i < 4; i++)
        assert_int_equal(mhfa_module_set_projection(manual, i, weight[i], bias[i]), MHFA_SUCCESS);
    mhfa_module_set_training(manual, 1, seed);
    r.m = manual, r.out = outs[3], run_forward(&r);
    double *as_double = checked_malloc(n_out * sizeof(double));
    for (size_t i = 0; i < n_out; i++)
        as_double[i] = outs[0][i];
    assert_close(outs[3], as_double, n_out, "manual vs flash, same seed");

    /* Evaluation mode: no dropout, so it differs from the training output. */
    mhfa_module_set_training(manual, 0, seed);
    r.out = outs[4], run_forward(&r);
    assert_true(differs(outs[3], outs[4], n_out));

    free(as_double);
    for (int i = 0; i < 5; i++)
        free(outs[i]);
    free(q);
    free_weights(weight, bias);
    mhfa_module_destroy(flash);
    mhfa_module_destroy(manual);
}

/* Over 1e6 weights the dropped fraction is within 0.01 of p. With one key every weight is 1, so
 * with head_dim 1 and W_out the identity each output element is one weight's fate: 0 when
 * dropped, v / (1 - p) when kept. */
static void drop_fraction(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    test_rng rng;
    rng_init(&rng, test_seed() + 13);
    const int B = 100, Nq = 1000, H = 10, E = 10, Din = 4;
    const float p = 0.25f;
    size_t n_out = (size_t)B * Nq * E;
    float *q = checked_malloc((size_t)B * Nq * Din * sizeof(float));
    float *h = checked_malloc((size_t)B * Din * sizeof(float));
    float *out = checked_malloc(n_out * sizeof(float));
    fill_normal(&rng, q, (size_t)B * Nq * Din, 1.0);
    fill_normal(&rng, h, (size_t)B * Din, 1.0);
    float identity[E * E];
    memset(identity, 0, sizeof identity);
    for (int i = 0; i < E; i++)
        identity[i * E + i] = 1.0f;
    for (int store = 0; store <= 1; store++) {
        mhfa_config cfg = mhfa_config_default(H, Din, E);
        cfg.bias = 0;
        cfg.attention_dropout = p;
        cfg.store_attn_weights = store;
        mhfa_module *m = NULL;
        assert_int_equal(mhfa_module_create(ctx, &cfg, &m), MHFA_SUCCESS);
        assert_int_equal(mhfa_module_set_projection(m, MHFA_W_OUT, identity, NULL), MHFA_SUCCESS);
        mhfa_module_set_training(m, 1, rng_next(&rng));
        poison(out, n_out);
        if (mhfa_forward(m, B, Nq, 1, q, h, NULL, out) != MHFA_SUCCESS)
            fail_msg("forward: %s", mhfa_context_error_message(ctx));
        size_t zeros = 0;
        for (size_t i = 0; i < n_out; i++) {
            assert_true(isfinite(out[i]));
            zeros += out[i] == 0.0f;
        }
        double fraction = (double)zeros / (double)n_out;
        if (fabs(fraction - p) > 0.01)
            fail_msg("store %d: dropped fraction %.4f, p %.2f", store, fraction, (double)p);
        mhfa_module_destroy(m);
    }
    free(q);
    free(h);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_reference),
        cmocka_unit_test(replay_and_paths_agree),
        cmocka_unit_test(drop_fraction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
