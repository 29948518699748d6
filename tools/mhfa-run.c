/* mhfa-run: the layer on a routing-sized batch, on the default device (MHFA_DEVICE).
 * An encoder pass (B 512, 100 nodes, E 128, 8 heads, self-attention), then one decoder step per
 * instance (one query against the 100 nodes, visited nodes masked). Prints the device, the time
 * per forward and the largest error of a sample of instances against the float64 reference. */
#define _POSIX_C_SOURCE 200809L
#include "mhfa.h"

#include "random_data.h"
#include "reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BATCH = 512, NODES = 100, EMBED = 128, HEADS = 8, SAMPLE = 4, RUNS = 5 };

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

typedef struct step {
    const char *name;
    int n_query;
    const float *q, *h;
    const mhfa_mask *mask;
    float *out;
} step;

static int check(mhfa_status s, mhfa_context *ctx, const char *what) {
    if (s == MHFA_SUCCESS) return 0;
    fprintf(stderr, "mhfa-run: %s failed: %s: %s\n", what, mhfa_status_string(s),
            ctx ? mhfa_context_error_message(ctx) : mhfa_last_create_error());
    return 1;
}

/* Median time of RUNS forwards after one warm-up; the last output stays in s->out. */
static int time_step(mhfa_module *m, mhfa_context *ctx, step *s, double *median_ms) {
    double times[RUNS];
    for (int r = -1; r < RUNS; r++) {
        double start = now_ms();
        if (check(mhfa_forward(m, BATCH, s->n_query, NODES, s->q, s->h, s->mask, s->out), ctx,
                  s->name))
            return 1;
        if (r >= 0) times[r] = now_ms() - start;
    }
    for (int i = 1; i < RUNS; i++) /* insertion sort */
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double t = times[j];
            times[j] = times[j - 1], times[j - 1] = t;
        }
    *median_ms = times[RUNS / 2];
    return 0;
}

/* Largest |out - ref| / max(1, max|ref|) over the first SAMPLE instances. */
static double sample_error(const step *s, float *weight[4], float *bias[4]) {
    ref_problem p = {SAMPLE,
                     s->n_query,
                     NODES,
                     EMBED,
                     EMBED,
                     HEADS,
                     {weight[0], weight[1], weight[2], weight[3]},
                     {bias[0], bias[1], bias[2], bias[3]},
                     s->q,
                     s->h,
                     NULL,
                     0,
                     {0},
                     0.0f,
                     0,
                     0};
    if (s->mask) {
        p.mask = s->mask->data, p.mask_ndim = 2;
        p.mask_dims[0] = SAMPLE, p.mask_dims[1] = NODES;
    }
    size_t n = (size_t)SAMPLE * s->n_query * EMBED;
    double *ref = malloc(n * sizeof(double)), ref_max = 1.0, err = 0.0;
    if (!ref || ref_forward(&p, ref, NULL, NULL) != 0) {
        free(ref);
        return INFINITY;
    }
    for (size_t i = 0; i < n; i++) {
        ref_max = fmax(ref_max, fabs(ref[i]));
        double e = fabs((double)s->out[i] - ref[i]);
        err = isnan(e) ? INFINITY : fmax(err, e);
    }
    free(ref);
    return err / ref_max;
}

int main(void) {
    mhfa_context *ctx = NULL;
    if (check(mhfa_context_create(NULL, &ctx), NULL, "choosing the device")) return 1;
    mhfa_config cfg = mhfa_config_default(HEADS, EMBED, EMBED);
    mhfa_module *m = NULL;
    if (check(mhfa_module_create(ctx, &cfg, &m), ctx, "creating the module")) return 1;

    size_t nodes_n = (size_t)BATCH * NODES * EMBED;
    float *nodes = malloc(nodes_n * sizeof(float)), *encoded = malloc(nodes_n * sizeof(float));
    float *query = malloc((size_t)BATCH * EMBED * sizeof(float));
    float *decoded = malloc((size_t)BATCH * EMBED * sizeof(float));
    unsigned char *visited = malloc((size_t)BATCH * NODES);
    float *weight[4], *bias[4];
    for (int i = 0; i < 4; i++) {
        weight[i] = malloc((size_t)EMBED * EMBED * sizeof(float));
        bias[i] = malloc(EMBED * sizeof(float));
    }
    if (!nodes || !encoded || !query || !decoded || !visited || !weight[3] || !bias[3]) {
        fprintf(stderr, "mhfa-run: out of memory\n");
        return 1;
    }
    uint64_t state = 2024;
    fill_normal(&state, nodes, nodes_n);
    fill_normal(&state, query, (size_t)BATCH * EMBED);
    for (size_t i = 0; i < (size_t)BATCH * NODES; i++)
        visited[i] = uniform01(&state) < 0.5;
    for (int b = 0; b < BATCH; b++)
        visited[(size_t)b * NODES] = 0; /* the depot stays open */
    for (int i = 0; i < 4; i++)
        mhfa_module_get_projection(m, (mhfa_projection)i, weight[i], bias[i]);

    mhfa_mask mask = {visited, 2, {BATCH, NODES, 0, 0}};
    step steps[2] = {{"encoder (self-attention, 100 nodes)", NODES, nodes, NULL, NULL, encoded},
                     {"decoder step (1 query, visited masked)", 1, query, nodes, &mask, decoded}};
    printf("mhfa %s on %s\n", mhfa_version_string(), mhfa_context_device_name(ctx));
    printf("batch %d, %d nodes, embed %d, %d heads, median of %d forwards (host arrays)\n", BATCH,
           NODES, EMBED, HEADS, RUNS);
    int failed = 0;
    for (int i = 0; i < 2 && !failed; i++) {
        double ms;
        if ((failed = time_step(m, ctx, &steps[i], &ms))) break;
        double err = sample_error(&steps[i], weight, bias);
        printf("  %-40s %9.3f ms   max error vs float64 (first %d) %.2e %s\n", steps[i].name, ms,
               SAMPLE, err, err <= 1e-5 ? "ok" : "TOO LARGE");
        failed = !(err <= 1e-5);
    }
    for (int i = 0; i < 4; i++)
        free(weight[i]), free(bias[i]);
    free(nodes), free(encoded), free(query), free(decoded), free(visited);
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);
    return failed;
}
