#define _POSIX_C_SOURCE 200809L /* opendir */
#include "support.h"

#include "reference.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t test_seed(void) {
    static uint64_t seed;
    static int chosen;
    if (!chosen) {
        const char *env = getenv("MHFA_TEST_SEED");
        seed = env && env[0] ? strtoull(env, NULL, 0)
                             : (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)clock();
        chosen = 1;
        printf("# MHFA_TEST_SEED=%llu (set it to replay this run)\n", (unsigned long long)seed);
    }
    return seed;
}

void rng_init(test_rng *rng, uint64_t seed) {
    rng->state = seed;
}

uint64_t rng_next(test_rng *rng) { /* splitmix64 */
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double rng_uniform(test_rng *rng) {
    return (double)(rng_next(rng) >> 11) / 9007199254740992.0;
}

double rng_normal(test_rng *rng) {
    double u1 = rng_uniform(rng), u2 = rng_uniform(rng);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

void fill_normal(test_rng *rng, float *x, size_t n, double scale) {
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(rng_normal(rng) * scale);
}

mhfa_context *test_context(void) {
    static mhfa_context *ctx;
    if (!ctx) {
        mhfa_status s = mhfa_context_create(NULL, &ctx);
        if (s != MHFA_SUCCESS) fail_msg("no device: %s", mhfa_last_create_error());
    }
    return ctx;
}

void poison(float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
}

void remove_files_in(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
    }
    closedir(d);
}

void *checked_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

void assert_close(const float *out, const double *ref, size_t n, const char *what) {
    assert_close_within(out, ref, n, 1e-5, what);
}

void assert_close_within(const float *out, const double *ref, size_t n, double tolerance,
                         const char *what) {
    double ref_max = 0.0, err_max = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > ref_max) ref_max = fabs(ref[i]);
    double bound = tolerance * (ref_max > 1.0 ? ref_max : 1.0);
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)out[i] - ref[i]);
        if (!isfinite(out[i])) err = INFINITY;
        if (err > err_max) err_max = err, worst = i;
    }
    if (err_max > bound)
        fail_msg("%s: max error %.3g at %zu (got %.9g, want %.9g) exceeds %.3g", what, err_max,
                 worst, (double)out[worst], ref[worst], bound);
}

static int out_features_of(const test_case *c, int which) {
    (void)which;
    return c->embed_dim;
}

mhfa_module *make_module(mhfa_context *ctx, const test_case *c, test_rng *rng, float *weight[4],
                         float *bias[4]) {
    mhfa_config cfg = mhfa_config_default(c->n_heads, c->input_dim, c->embed_dim);
    cfg.bias = c->bias;
    cfg.store_attn_weights = c->store;
    cfg.attention_dropout = c->dropout_p;
    cfg.dtype = c->dtype;
    cfg.allow_reduced_math = c->reduced_math;
    mhfa_module *m = NULL;
    mhfa_status s = mhfa_module_create(ctx, &cfg, &m);
    if (s != MHFA_SUCCESS) fail_msg("module_create: %s", mhfa_context_error_message(ctx));
    for (int i = 0; i < 4; i++) {
        int in = i == 3 ? c->embed_dim : c->input_dim, out = out_features_of(c, i);
        double bound = sqrt(6.0 / (in + out));
        weight[i] = checked_malloc(sizeof(float) * (size_t)in * out);
        for (size_t k = 0; k < (size_t)in * out; k++)
            weight[i][k] = (float)((2.0 * rng_uniform(rng) - 1.0) * bound);
        bias[i] = NULL;
        if (c->bias) {
            bias[i] = checked_malloc(sizeof(float) * (size_t)out);
            for (int k = 0; k < out; k++)
                bias[i][k] = (float)((2.0 * rng_uniform(rng) - 1.0) / sqrt((double)in));
        }
        s = mhfa_module_set_projection(m, (mhfa_projection)i, weight[i], bias[i]);
        if (s != MHFA_SUCCESS) fail_msg("set_projection: %s", mhfa_context_error_message(ctx));
    }
    return m;
}

void free_weights(float *weight[4], float *bias[4]) {
    for (int i = 0; i < 4; i++) {
        free(weight[i]);
        free(bias[i]);
    }
}

size_t make_mask(const test_case *c, test_rng *rng, unsigned char **mask, int dims[4]) {
    *mask = NULL;
    if (c->mask_ndim == 0) return 0;
    const int full4[4] = {c->batch, c->n_heads, c->n_query, c->graph_size};
    if (c->mask_ndim == 2) dims[0] = c->batch, dims[1] = c->graph_size;
    if (c->mask_ndim == 3) dims[0] = c->batch, dims[1] = c->n_query, dims[2] = c->graph_size;
    if (c->mask_ndim == 4)
        for (int i = 0; i < 4; i++)
            dims[i] = c->broadcast_mask && rng_uniform(rng) < 0.5 ? 1 : full4[i];
    size_t count = 1;
    for (int i = 0; i < c->mask_ndim; i++)
        count *= (size_t)dims[i];
    *mask = checked_malloc(count);
    for (size_t i = 0; i < count; i++)
        (*mask)[i] = rng_uniform(rng) < 0.3;
    if (c->fully_masked_rows) {
        /* Every few rows of the last dimension masked whole. */
        size_t row_len = (size_t)dims[c->mask_ndim - 1], rows = count / row_len;
        for (size_t r = 0; r < rows; r += 3)
            memset(*mask + r * row_len, 1, row_len);
    }
    return count;
}

void run_case(mhfa_context *ctx, const test_case *c, test_rng *rng) {
    run_case_with(ctx, c, rng, NULL, 0);
}

mhfa_module *run_case_with(mhfa_context *ctx, const test_case *c, test_rng *rng,
                           void (*prepare)(mhfa_module *m, const test_case *c, int graph_size),
                           int keep) {
    float *weight[4], *bias[4];
    mhfa_module *m = make_module(ctx, c, rng, weight, bias);
    const int B = c->batch, Nq = c->n_query, Nk = c->self_attention ? c->n_query : c->graph_size;
    if (prepare) prepare(m, c, Nk);
    size_t q_n = (size_t)B * Nq * c->input_dim, h_n = (size_t)B * Nk * c->input_dim;
    size_t out_n = (size_t)B * Nq * c->embed_dim, w_n = (size_t)B * c->n_heads * Nq * Nk;
    float *q = checked_malloc(q_n * sizeof(float));
    float *h = c->self_attention ? NULL : checked_malloc(h_n * sizeof(float));
    fill_normal(rng, q, q_n, c->input_scale);
    if (h) fill_normal(rng, h, h_n, c->input_scale);
    test_case shaped = *c;
    shaped.graph_size = Nk;
    unsigned char *mask;
    int dims[4] = {0};
    make_mask(&shaped, rng, &mask, dims);
    mhfa_mask mask_desc = {mask, c->mask_ndim, {dims[0], dims[1], dims[2], dims[3]}};
    uint64_t dropout_seed = rng_next(rng);
    if (c->dropout_p > 0.0f) mhfa_module_set_training(m, 1, dropout_seed);

    float *out = checked_malloc(out_n * sizeof(float));
    poison(out, out_n);
    mhfa_status s = mhfa_forward(m, B, Nq, Nk, q, h, mask ? &mask_desc : NULL, out);
    if (s != MHFA_SUCCESS) fail_msg("forward: %s", mhfa_context_error_message(ctx));

    ref_problem p = {B,
                     Nq,
                     Nk,
                     c->input_dim,
                     c->embed_dim,
                     c->n_heads,
                     {weight[0], weight[1], weight[2], weight[3]},
                     {bias[0], bias[1], bias[2], bias[3]},
                     q,
                     h,
                     mask,
                     c->mask_ndim,
                     {dims[0], dims[1], dims[2], dims[3]},
                     c->dropout_p,
                     dropout_seed,
                     0,
                     (int)c->dtype};
    double *ref = checked_malloc(out_n * sizeof(double));
    double *ref_w = c->store ? checked_malloc(w_n * sizeof(double)) : NULL;
    assert_int_equal(ref_forward(&p, ref, ref_w, NULL), 0);
    char what[200];
    snprintf(what, sizeof what,
             "B%d Nq%d Nk%d Din%d E%d H%d bias%d self%d store%d mask%d%s%s p%.2f dtype%d", B, Nq,
             Nk, c->input_dim, c->embed_dim, c->n_heads, c->bias, c->self_attention, c->store,
             c->mask_ndim, c->broadcast_mask ? "b" : "", c->fully_masked_rows ? "f" : "",
             (double)c->dropout_p, (int)c->dtype);
    const double tolerance = ref_tolerance((int)c->dtype);
    if (c->finite_only) {
        for (size_t i = 0; i < out_n; i++)
            if (!isfinite(out[i])) fail_msg("%s: output %zu is %g", what, i, (double)out[i]);
    } else {
        assert_close_within(out, ref, out_n, tolerance, what);
    }

    if (c->store) {
        float *w = checked_malloc(w_n * sizeof(float));
        poison(w, w_n);
        int wdims[4];
        s = mhfa_module_last_attention(m, wdims, w, w_n);
        if (s != MHFA_SUCCESS) fail_msg("last_attention: %s", mhfa_context_error_message(ctx));
        assert_int_equal(wdims[0], B);
        assert_int_equal(wdims[1], c->n_heads);
        assert_int_equal(wdims[2], Nq);
        assert_int_equal(wdims[3], Nk);
        strncat(what, " (stored weights)", sizeof what - strlen(what) - 1);
        assert_close_within(w, ref_w, w_n, tolerance, what);
        free(w);
    }
    free(ref);
    free(ref_w);
    free(out);
    free(mask);
    free(q);
    free(h);
    free_weights(weight, bias);
    if (keep) return m;
    mhfa_module_destroy(m);
    return NULL;
}
