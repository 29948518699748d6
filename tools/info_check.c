/* --check: fresh weights, then masked self-attention forwards compared with the float64
 * reference one by one. */
#define _POSIX_C_SOURCE 200809L
#include "info_check.h"

#include "reference.h"

#include "random_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Self-attention shapes {batch, nodes}: sizes off every block and tile size, one query alone, and
 * more keys than one wide tile holds. */
static const int check_shapes[][2] = {{3, 37}, {2, 100}, {1, 1}, {4, 17}, {2, 5}, {1, 130}};
enum { N_CHECK_SHAPES = sizeof check_shapes / sizeof check_shapes[0] };

typedef struct check_data {
    layer_weights w; /* as the module holds them, for the reference */
    float *x, *out;
    unsigned char *mask;
} check_data;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static size_t largest_check_rows(void) {
    size_t most = 0;
    for (int i = 0; i < N_CHECK_SHAPES; i++) {
        size_t rows = (size_t)check_shapes[i][0] * (size_t)check_shapes[i][1];
        if (rows > most) most = rows;
    }
    return most;
}

static size_t projection_inputs(const mhfa_config *cfg, int which) {
    return (size_t)(which == MHFA_W_OUT ? cfg->embed_dim : cfg->input_dim);
}

static void free_check_data(check_data *d) {
    for (int i = 0; i < 4; i++)
        free(d->w.weight[i]), free(d->w.bias[i]);
    free(d->x), free(d->out), free(d->mask);
}

static int alloc_check_data(const mhfa_config *cfg, check_data *d) {
    memset(d, 0, sizeof *d);
    d->w.cfg = *cfg;
    size_t rows = largest_check_rows(), e = (size_t)cfg->embed_dim;
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        d->w.weight[i] = malloc(e * projection_inputs(cfg, i) * sizeof(float));
        d->w.bias[i] = malloc(e * sizeof(float));
        ok = ok && d->w.weight[i] && d->w.bias[i];
    }
    d->x = malloc(rows * (size_t)cfg->input_dim * sizeof(float));
    d->out = malloc(rows * e * sizeof(float));
    d->mask = malloc(rows);
    ok = ok && d->x && d->out && d->mask;
    if (!ok) free_check_data(d);
    return ok;
}

static void fill_uniform(uint64_t *state, float *x, size_t n, double bound) {
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((2.0 * uniform01(state) - 1.0) * bound);
}

/* PyTorch's nn.Linear range, U(-1/sqrt(in), 1/sqrt(in)), keeps the softmax well conditioned. */
static mhfa_status set_random_weights(mhfa_module *m, check_data *d, uint64_t *state) {
    mhfa_status s = MHFA_SUCCESS;
    size_t e = (size_t)d->w.cfg.embed_dim;
    for (int i = 0; i < 4 && s == MHFA_SUCCESS; i++) {
        size_t in = projection_inputs(&d->w.cfg, i);
        double bound = 1.0 / sqrt((double)in);
        fill_uniform(state, d->w.weight[i], e * in, bound);
        fill_uniform(state, d->w.bias[i], e, bound);
        s = mhfa_module_set_projection(m, (mhfa_projection)i, d->w.weight[i], d->w.bias[i]);
    }
    return s;
}

/* A mask of [batch][nodes], about a third masked; the last instance of a batch of several has
 * every key masked (its output must be W_out's bias). */
static void fill_random_mask(uint64_t *state, unsigned char *mask, int batch, int nodes) {
    for (int b = 0; b < batch; b++)
        for (int j = 0; j < nodes; j++)
            mask[(size_t)b * nodes + j] = (batch > 1 && b == batch - 1) || uniform01(state) < 0.3;
}

/* One masked self-attention forward of a fresh input; its error goes to *error. */
static int check_one_forward(mhfa_context *ctx, mhfa_module *m, check_data *d, int batch, int nodes,
                             uint64_t *state, double *error, char *failure, size_t size) {
    size_t rows = (size_t)batch * nodes, n_out = rows * (size_t)d->w.cfg.embed_dim;
    fill_normal(state, d->x, rows * (size_t)d->w.cfg.input_dim);
    fill_random_mask(state, d->mask, batch, nodes);
    for (size_t i = 0; i < n_out; i++)
        d->out[i] = NAN; /* what the forward does not write stays NaN and fails */
    mhfa_mask mask = {d->mask, 2, {batch, nodes, 0, 0}};
    mhfa_status s = mhfa_forward(m, batch, nodes, nodes, d->x, NULL, &mask, d->out);
    if (s != MHFA_SUCCESS) {
        snprintf(failure, size, "forward (batch %d, %d nodes): %s: %s", batch, nodes,
                 mhfa_status_string(s), mhfa_context_error_message(ctx));
        return 0;
    }
    float64_forward f = {nodes, nodes, d->x, NULL, d->mask, d->out};
    float64_error e;
    if (float64_check(&d->w, &f, batch, &e) != 0) {
        snprintf(failure, size, "the float64 reference ran out of memory");
        return 0;
    }
    *error = e.relative;
    if (!e.within_bound) {
        snprintf(failure, size, "batch %d, %d nodes: error %.3g > %.0e", batch, nodes, *error,
                 ref_tolerance((int)d->w.cfg.dtype));
        return 0;
    }
    return 1;
}

void run_check(mhfa_context *ctx, mhfa_module *m, check_result *c) {
    memset(c, 0, sizeof *c);
    mhfa_config cfg;
    check_data d;
    mhfa_status s = mhfa_module_get_config(m, &cfg);
    if (s != MHFA_SUCCESS) {
        snprintf(c->failure, sizeof c->failure, "reading the config: %s", mhfa_status_string(s));
        return;
    }
    c->tolerance = ref_tolerance((int)cfg.dtype);
    if (!alloc_check_data(&cfg, &d)) {
        snprintf(c->failure, sizeof c->failure, "out of host memory");
        return;
    }
    uint64_t state = 20240601;
    s = set_random_weights(m, &d, &state);
    if (s != MHFA_SUCCESS) {
        snprintf(c->failure, sizeof c->failure, "setting the weights: %s: %s",
                 mhfa_status_string(s), mhfa_context_error_message(ctx));
        free_check_data(&d);
        return;
    }
    double start = now_seconds();
    int ok = 1;
    for (int i = 0; ok && (i < N_CHECK_SHAPES || now_seconds() - start < CHECK_SECONDS); i++) {
        const int *shape = check_shapes[i % N_CHECK_SHAPES];
        double error = 0.0;
        ok = check_one_forward(ctx, m, &d, shape[0], shape[1], &state, &error, c->failure,
                               sizeof c->failure);
        c->forwards += ok;
        c->max_error = fmax(c->max_error, error);
    }
    c->seconds = now_seconds() - start;
    c->passed = ok;
    free_check_data(&d);
}
