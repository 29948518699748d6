/* mhfa-run: the layer on a routing workload (README's first command; --help lists the options).
 * An encoder pass (self-attention over each instance's nodes), then decoder steps (one query per
 * instance against the encoded nodes, the visited ones masked). Prints the device, the shapes,
 * the median time per forward, the throughput and the largest error of a sample of instances
 * against the float64 reference; exits 1 when that error is over the bound, 2 on bad usage. */
#define _POSIX_C_SOURCE 200809L
#include "mhfa.h"

#include "float64_check.h"
#include "heatmap.h"
#include "routing_workload.h"
#include "run_module.h"
#include "run_options.h"
#include "run_report.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ENCODER_RUNS = 5, MAX_DECODER_STEPS = 10, HEATMAP_MAX_NODES = 100 };
#define WORKLOAD_SEED 2024u

typedef struct workload {
    int batch, nodes, input_dim, embed_dim, steps;
    routing_instances instances;
    float *embedded;     /* [batch][nodes][input_dim]: the encoder's input */
    float *encoded;      /* [batch][nodes][embed_dim]: the encoder's output */
    float *graph_mean;   /* [batch][input_dim]: mean of the decoder's keys */
    float *query;        /* [batch][input_dim]: the decoder's query at the current step */
    float *decoded;      /* [batch][embed_dim] */
    unsigned char *mask; /* [batch][nodes]: visited nodes at the current step */
    int *tour;           /* [batch][steps] */
} workload;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int n) { /* sorts values */
    qsort(values, (size_t)n, sizeof *values, compare_doubles);
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

static void workload_free(workload *wl) {
    routing_instances_destroy(&wl->instances);
    free(wl->embedded), free(wl->encoded), free(wl->graph_mean);
    free(wl->query), free(wl->decoded), free(wl->mask), free(wl->tour);
}

/* Sizes whose arrays could not even be addressed are refused before any allocation. */
static int workload_too_large(int batch, int nodes, int dim) {
    double floats = (double)batch * nodes * dim;
    return floats * sizeof(float) > (double)(SIZE_MAX / 4);
}

static int workload_create(const run_options *opts, const mhfa_config *cfg, workload *wl) {
    int dim = cfg->input_dim > cfg->embed_dim ? cfg->input_dim : cfg->embed_dim;
    memset(wl, 0, sizeof *wl);
    if (workload_too_large(opts->batch, opts->nodes, dim)) {
        fprintf(stderr, "mhfa-run: batch %d x %d nodes x %d is too large\n", opts->batch,
                opts->nodes, dim);
        return 1;
    }
    *wl = (workload){.batch = opts->batch,
                     .nodes = opts->nodes,
                     .input_dim = cfg->input_dim,
                     .embed_dim = cfg->embed_dim,
                     .steps =
                         opts->nodes - 1 < MAX_DECODER_STEPS ? opts->nodes - 1 : MAX_DECODER_STEPS};
    size_t rows = (size_t)wl->batch * wl->nodes;
    wl->embedded = malloc(rows * wl->input_dim * sizeof(float));
    wl->encoded = malloc(rows * wl->embed_dim * sizeof(float));
    wl->graph_mean = malloc((size_t)wl->batch * wl->input_dim * sizeof(float));
    wl->query = malloc((size_t)wl->batch * wl->input_dim * sizeof(float));
    wl->decoded = malloc((size_t)wl->batch * wl->embed_dim * sizeof(float));
    wl->mask = malloc(rows);
    wl->tour = malloc((size_t)wl->batch * wl->steps * sizeof(int));
    int ok = wl->embedded && wl->encoded && wl->graph_mean && wl->query && wl->decoded &&
             wl->mask && wl->tour &&
             routing_instances_create(wl->batch, wl->nodes, WORKLOAD_SEED, &wl->instances) == 0 &&
             routing_embed(&wl->instances, wl->input_dim, wl->embedded) == 0 &&
             routing_plan_tours(&wl->instances, wl->steps, wl->tour) == 0;
    if (ok) return 0;
    fprintf(stderr, "mhfa-run: out of memory for the workload\n");
    workload_free(wl);
    return 1;
}

static int timed_forward(mhfa_module *m, mhfa_context *ctx, const char *what, const workload *wl,
                         int n_query, const float *q, const float *h, const mhfa_mask *mask,
                         float *out, double *ms) {
    double start = now_ms();
    mhfa_status s = mhfa_forward(m, wl->batch, n_query, wl->nodes, q, h, mask, out);
    *ms = now_ms() - start;
    return report_failure(s, ctx, what);
}

static int check_stage(const layer_weights *w, const float64_forward *f, int batch,
                       stage_result *stage) {
    int sample = float64_sample_size(&w->cfg, batch, f->n_query, f->graph_size);
    if (float64_check(w, f, sample, &stage->error) == 0) return 0;
    fprintf(stderr, "mhfa-run: out of memory for the float64 reference\n");
    return 1;
}

/* Median of ENCODER_RUNS forwards after a warm-up; the output stays in wl->encoded. */
static int run_encoder(mhfa_module *m, mhfa_context *ctx, const layer_weights *w, workload *wl,
                       stage_result *stage) {
    double times[ENCODER_RUNS];
    for (int r = -1; r < ENCODER_RUNS; r++) {
        double ms;
        if (timed_forward(m, ctx, "the encoder forward", wl, wl->nodes, wl->embedded, NULL, NULL,
                          wl->encoded, &ms))
            return 1;
        if (r >= 0) times[r] = ms;
    }
    *stage = (stage_result){ENCODER_RUNS, median(times, ENCODER_RUNS), wl->nodes, {0}};
    float64_forward f = {wl->nodes, wl->nodes, wl->embedded, NULL, NULL, wl->encoded};
    return check_stage(w, &f, wl->batch, stage);
}

/* The decoder's keys: the encoder output, as a routing model's decoder reads them, where the
 * layer's input_dim allows; else the node embeddings. */
static const float *decoder_keys(const workload *wl) {
    return wl->input_dim == wl->embed_dim ? wl->encoded : wl->embedded;
}

/* One forward per step, the mask growing by the node just left; the first step also runs once
 * untimed as the warm-up. The last step's output is checked. */
static int run_decoder(mhfa_module *m, mhfa_context *ctx, const layer_weights *w, workload *wl,
                       stage_result *stage) {
    const float *keys = decoder_keys(wl);
    mhfa_mask mask = {wl->mask, 2, {wl->batch, wl->nodes, 0, 0}};
    double times[MAX_DECODER_STEPS], ms;
    routing_graph_mean(keys, wl->batch, wl->nodes, wl->input_dim, wl->graph_mean);
    for (int step = 0; step < wl->steps; step++) {
        routing_visited_mask(&wl->instances, wl->tour, wl->steps, step, wl->mask);
        routing_decoder_query(keys, wl->graph_mean, wl->batch, wl->nodes, wl->input_dim, wl->tour,
                              wl->steps, step, wl->query);
        if (step == 0 && timed_forward(m, ctx, "the decoder step", wl, 1, wl->query, keys, &mask,
                                       wl->decoded, &ms))
            return 1;
        if (timed_forward(m, ctx, "the decoder step", wl, 1, wl->query, keys, &mask, wl->decoded,
                          &times[step]))
            return 1;
    }
    *stage = (stage_result){wl->steps, median(times, wl->steps), 1, {0}};
    float64_forward f = {1, wl->nodes, wl->query, keys, wl->mask, wl->decoded};
    return check_stage(w, &f, wl->batch, stage);
}

#ifdef MHFA_HAVE_CAIRO
static int draw_heatmap(const char *path, const run_result *r, int shown, const float *weights) {
    char title[256], subtitle[512], error[256];
    snprintf(title, sizeof title,
             "Encoder self-attention, instance 0  \xe2\x80\x94  batch %d, %d nodes, %d head%s, "
             "embed %d",
             r->batch, r->nodes, r->n_heads, r->n_heads == 1 ? "" : "s", r->embed_dim);
    snprintf(subtitle, sizeof subtitle,
             "%s%d head%s \xc3\x97 %d queries \xc3\x97 %d keys, head_dim %d, input_dim %d; manual "
             "path on %s. Node 0 is the depot; uniform attention is %.3g.",
             shown < r->nodes ? "The instance's first nodes only: " : "", r->n_heads,
             r->n_heads == 1 ? "" : "s", shown, shown, r->embed_dim / r->n_heads, r->input_dim,
             r->device, 1.0 / shown);
    heatmap_figure fig = {weights, r->n_heads, shown,      shown,
                          title,   subtitle,   "key node", "query node"};
    if (heatmap_write_png(&fig, path, error, sizeof error) == 0) return 0;
    fprintf(stderr, "mhfa-run: writing %s failed: %s\n", path, error);
    return 1;
}

/* A manual-path module with the same weights runs instance 0 (its first HEATMAP_MAX_NODES nodes
 * at most) and its stored attention weights become the PNG. */
static int write_heatmap(mhfa_context *ctx, const layer_weights *w, const workload *wl,
                         const char *path, run_result *r) {
    int shown = wl->nodes < HEATMAP_MAX_NODES ? wl->nodes : HEATMAP_MAX_NODES, dims[4];
    size_t n_weights = (size_t)w->cfg.n_heads * shown * shown;
    float *out = malloc((size_t)shown * wl->embed_dim * sizeof(float));
    float *weights = malloc(n_weights * sizeof(float));
    mhfa_module *manual = NULL;
    int failed = !out || !weights;
    if (failed) fprintf(stderr, "mhfa-run: out of memory for the heatmap\n");
    failed = failed || layer_weights_manual_module(ctx, w, &manual) ||
             report_failure(mhfa_forward(manual, 1, shown, shown, wl->embedded, NULL, NULL, out),
                            ctx, "the manual-path forward") ||
             report_failure(mhfa_module_last_attention(manual, dims, weights, n_weights), ctx,
                            "reading the attention weights") ||
             draw_heatmap(path, r, shown, weights);
    if (!failed) r->heatmap_path = path, r->heatmap_nodes = shown;
    mhfa_module_destroy(manual);
    free(out), free(weights);
    return failed;
}
#endif

/* Runs the workload on the module and fills r; returns 0, or 1 after a failure (printed). */
static int run_workload(mhfa_context *ctx, mhfa_module *m, const run_options *opts, run_result *r) {
    layer_weights w;
    workload wl;
    if (layer_weights_read(ctx, m, &w)) return 1;
    if (workload_create(opts, &w.cfg, &wl)) {
        layer_weights_free(&w);
        return 1;
    }
    r->n_heads = w.cfg.n_heads, r->input_dim = w.cfg.input_dim, r->embed_dim = w.cfg.embed_dim;
    r->decoder_steps = wl.steps, r->checked_step = wl.steps - 1;
    r->keys_are_encoder_output = decoder_keys(&wl) == wl.encoded;
    int failed =
        run_encoder(m, ctx, &w, &wl, &r->encoder) || run_decoder(m, ctx, &w, &wl, &r->decoder);
#ifdef MHFA_HAVE_CAIRO
    if (!failed && opts->heatmap) failed = write_heatmap(ctx, &w, &wl, opts->heatmap, r);
#endif
    workload_free(&wl);
    layer_weights_free(&w);
    return failed;
}

static int report(const run_options *opts, const run_result *r) {
    if (!opts->json) {
        run_report_text(r);
        return 0;
    }
    if (run_report_json(r) == 0) return 0;
    fprintf(stderr, "mhfa-run: out of memory for the JSON report\n");
    return 1;
}

int main(int argc, char **argv) {
    run_options opts;
    run_options_result parsed = run_options_parse(argc, argv, &opts);
    if (parsed != RUN_OPTIONS_OK) return parsed == RUN_OPTIONS_HELP ? 0 : 2;

    mhfa_context *ctx = NULL;
    if (report_failure(mhfa_context_create(opts.device, &ctx), NULL, "choosing the device"))
        return 1;
    mhfa_module *m = NULL;
    char weights_source[1024];
    int status = run_module_create(ctx, &opts, &m, weights_source, sizeof weights_source);
    if (status == 0) {
        run_result r = {.device = mhfa_context_device_name(ctx),
                        .weights_source = weights_source,
                        .batch = opts.batch,
                        .nodes = opts.nodes};
        status = run_workload(ctx, m, &opts, &r) || report(&opts, &r);
        if (status == 0 && !(r.encoder.error.within_bound && r.decoder.error.within_bound))
            status = 1;
    }
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);
    return status;
}
