/* init_parameters: Xavier-uniform weights and nn.Linear's default biases, checked by their ranges
 * and statistics; seeded, so reproducible across modules and contexts. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* input_dim differs from embed_dim, so W_out's fan_in (embed_dim) tells apart from the others'. */
enum { HEADS = 4, DIN = 16, EMBED = 64 };

static int fan_in(int which) {
    return which == MHFA_W_OUT ? EMBED : DIN;
}

static size_t weight_count(int which) {
    return (size_t)EMBED * (size_t)fan_in(which);
}

static double xavier_bound(int which) {
    return sqrt(6.0 / (double)(fan_in(which) + EMBED));
}

static double bias_bound(int which) {
    return 1.0 / sqrt((double)fan_in(which));
}

/* All four projections of a module, read back. */
typedef struct params {
    float weight[4][EMBED * EMBED], bias[4][EMBED];
} params;

static params *read_params(const mhfa_module *m) {
    params *p = checked_malloc(sizeof *p);
    memset(p, 0, sizeof *p);
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            mhfa_module_get_projection(m, (mhfa_projection)i, p->weight[i], p->bias[i]),
            MHFA_SUCCESS);
    return p;
}

static int params_equal(const params *a, const params *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

static mhfa_module *create_module(mhfa_context *ctx) {
    mhfa_config cfg = mhfa_config_default(HEADS, DIN, EMBED);
    mhfa_module *m = NULL;
    if (mhfa_module_create(ctx, &cfg, &m) != MHFA_SUCCESS)
        fail_msg("module_create: %s", mhfa_context_error_message(ctx));
    return m;
}

static void init_params(mhfa_module *m, uint64_t seed) {
    assert_int_equal(mhfa_module_init_parameters(m, seed), MHFA_SUCCESS);
}

/* ---- distribution ---- */

/* x must look like n draws of U(-a, a): inside the range, reaching near its ends, mean and variance
 * within 6 standard errors of 0 and a^2/3. */
static void check_uniform(const float *x, size_t n, double a, const char *what) {
    double sum = 0.0, max_abs = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(fabs(x[i]) <= a * (1.0 + 1e-6)))
            fail_msg("%s[%zu] = %.9g is outside [-%.6g, %.6g]", what, i, (double)x[i], a, a);
        sum += x[i];
        max_abs = fmax(max_abs, fabs(x[i]));
    }
    double mean = sum / (double)n, var = 0.0;
    for (size_t i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= (double)n;
    double mean_se = a / sqrt(3.0 * (double)n);           /* sd of U(-a,a) is a/sqrt(3) */
    double var_se = a * a * sqrt(4.0 / 45.0 / (double)n); /* Var(x^2) = 4 a^4 / 45 */
    if (fabs(mean) > 6.0 * mean_se)
        fail_msg("%s: mean %.4g, want 0 +- %.4g", what, mean, 6.0 * mean_se);
    if (fabs(var - a * a / 3.0) > 6.0 * var_se)
        fail_msg("%s: variance %.5g, want %.5g +- %.4g", what, var, a * a / 3.0, 6.0 * var_se);
    /* P(max |x| < a (1 - t)) = (1 - t)^n, below e^-30 for this t. */
    double t = fmin(0.5, 30.0 / (double)n);
    if (max_abs < a * (1.0 - t))
        fail_msg("%s: largest |value| %.5g, want near %.5g", what, max_abs, a);
}

static const char *const names[4] = {"W_query", "W_key", "W_val", "W_out"};

static void check_distribution(const params *p) {
    char what[64];
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "%s.weight", names[i]);
        check_uniform(p->weight[i], weight_count(i), xavier_bound(i), what);
        snprintf(what, sizeof what, "%s.bias", names[i]);
        check_uniform(p->bias[i], EMBED, bias_bound(i), what);
    }
}

static void test_create_distribution(void **state) {
    (void)state;
    mhfa_module *m = create_module(test_context());
    params *p = read_params(m);
    check_distribution(p);
    free(p);
    mhfa_module_destroy(m);
}

static void test_seeded_distribution(void **state) {
    (void)state;
    mhfa_module *m = create_module(test_context());
    const uint64_t seeds[] = {1, 0xdeadbeefull, 1ull << 63, test_seed()};
    for (int i = 0; i < 4; i++) {
        init_params(m, seeds[i]);
        params *p = read_params(m);
        check_distribution(p);
        free(p);
    }
    mhfa_module_destroy(m);
}

/* ---- reproducibility ---- */

static void test_seed_zero_is_create(void **state) {
    (void)state;
    mhfa_module *m = create_module(test_context());
    params *created = read_params(m);
    init_params(m, 12345);
    params *other = read_params(m);
    assert_false(params_equal(created, other));
    init_params(m, 0);
    params *again = read_params(m);
    assert_true(params_equal(created, again));
    free(created);
    free(other);
    free(again);
    mhfa_module_destroy(m);
}

static void test_same_seed_same_values(void **state) {
    (void)state;
    mhfa_context *ctx = test_context(), *ctx2 = NULL;
    if (mhfa_context_create(NULL, &ctx2) != MHFA_SUCCESS)
        fail_msg("second context: %s", mhfa_last_create_error());
    mhfa_module *a = create_module(ctx), *b = create_module(ctx), *c = create_module(ctx2);
    /* Fresh modules agree (all seed 0). */
    params *pa = read_params(a), *pb = read_params(b), *pc = read_params(c);
    assert_true(params_equal(pa, pb));
    assert_true(params_equal(pa, pc));
    free(pa), free(pb), free(pc);
    /* So do modules given the same seed, whatever they held before. */
    const uint64_t seed = test_seed();
    init_params(b, seed ^ 1);
    init_params(a, seed);
    init_params(b, seed);
    init_params(c, seed);
    pa = read_params(a), pb = read_params(b), pc = read_params(c);
    assert_true(params_equal(pa, pb));
    assert_true(params_equal(pa, pc));
    free(pa), free(pb), free(pc);
    mhfa_module_destroy(a);
    mhfa_module_destroy(b);
    mhfa_module_destroy(c);
    mhfa_context_destroy(ctx2);
}

/* Share of equal elements between two arrays of n floats. */
static double equal_share(const float *x, const float *y, size_t n) {
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        same += x[i] == y[i];
    return (double)same / (double)n;
}

static void assert_params_differ(const params *x, const params *y, const char *what) {
    for (int i = 0; i < 4; i++) {
        double w = equal_share(x->weight[i], y->weight[i], weight_count(i));
        double b = equal_share(x->bias[i], y->bias[i], EMBED);
        if (w > 0.01 || b > 0.05)
            fail_msg("%s: %s shares %.1f%% of weights, %.1f%% of biases", what, names[i], 100.0 * w,
                     100.0 * b);
    }
}

static void test_different_seeds_differ(void **state) {
    (void)state;
    mhfa_module *m = create_module(test_context());
    const uint64_t seeds[] = {0, 1, 2, 1ull << 32, 1ull << 63};
    enum { N = sizeof seeds / sizeof seeds[0] };
    params *p[N];
    for (int i = 0; i < N; i++) {
        init_params(m, seeds[i]);
        p[i] = read_params(m);
    }
    char what[80];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++) {
            snprintf(what, sizeof what, "seeds %llu and %llu", (unsigned long long)seeds[i],
                     (unsigned long long)seeds[j]);
            assert_params_differ(p[i], p[j], what);
        }
    for (int i = 0; i < N; i++)
        free(p[i]);
    mhfa_module_destroy(m);
}

/* ---- the streams of one module ---- */

/* Values scaled back to U(-1, 1), so that streams of different bounds compare. */
static void normalised(const float *x, size_t n, double bound, double *out) {
    for (size_t i = 0; i < n; i++)
        out[i] = x[i] / bound;
}

/* Share of the first n elements of two streams that agree to 1e-6 (copies, shifted or not). */
static double close_share(const double *x, const double *y, size_t n) {
    size_t close = 0;
    for (size_t i = 0; i < n; i++)
        close += fabs(x[i] - y[i]) < 1e-6;
    return (double)close / (double)n;
}

static void test_projections_independent(void **state) {
    (void)state;
    mhfa_module *m = create_module(test_context());
    params *p = read_params(m);
    /* Eight streams (four weights, four biases), each compared on its first EMBED values. */
    double u[8][EMBED];
    for (int i = 0; i < 4; i++) {
        normalised(p->weight[i], EMBED, xavier_bound(i), u[i]);
        normalised(p->bias[i], EMBED, bias_bound(i), u[4 + i]);
    }
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < i; j++)
            if (close_share(u[i], u[j], EMBED) > 0.05)
                fail_msg("streams %d and %d (0-3 weights, 4-7 biases) are alike", i, j);
    /* Whole weights of the same shape differ too. */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < i; j++)
            assert_true(equal_share(p->weight[i], p->weight[j], weight_count(i)) < 0.01);
    free(p);
    mhfa_module_destroy(m);
}

/* W_out's bound is sqrt(6 / (E + E)), not sqrt(6 / (D_in + E)): its values stay within the
 * narrower range and fill it. */
static void test_w_out_fan_in(void **state) {
    (void)state;
    mhfa_module *m = create_module(test_context());
    params *p = read_params(m);
    double narrow = xavier_bound(MHFA_W_OUT), wide = sqrt(6.0 / (double)(DIN + EMBED));
    assert_true(narrow < 0.85 * wide);
    double max_abs = 0.0;
    for (size_t i = 0; i < weight_count(MHFA_W_OUT); i++)
        max_abs = fmax(max_abs, fabs(p->weight[MHFA_W_OUT][i]));
    assert_true(max_abs <= narrow * (1.0 + 1e-6));
    assert_true(max_abs > 0.99 * narrow);
    /* And its bias bound is 1/sqrt(E). */
    double bias_max = 0.0;
    for (int i = 0; i < EMBED; i++)
        bias_max = fmax(bias_max, fabs(p->bias[MHFA_W_OUT][i]));
    assert_true(bias_max <= bias_bound(MHFA_W_OUT) * (1.0 + 1e-6));
    free(p);
    mhfa_module_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_distribution),
        cmocka_unit_test(test_seeded_distribution),
        cmocka_unit_test(test_seed_zero_is_create),
        cmocka_unit_test(test_same_seed_same_values),
        cmocka_unit_test(test_different_seeds_differ),
        cmocka_unit_test(test_projections_independent),
        cmocka_unit_test(test_w_out_fan_in),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
