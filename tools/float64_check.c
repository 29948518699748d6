/* The float64 comparison behind mhfa-run's error line and mhfa-info --check. */
#include "float64_check.h"

#include "reference.h"

#include <math.h>
#include <stdlib.h>

enum { MAX_SAMPLE = 4 };
#define SAMPLE_BUDGET 2e9 /* multiply-adds of float64 reference per forward checked */

int float64_sample_size(const mhfa_config *cfg, int batch, int n_query, int graph_size) {
    double in = cfg->input_dim, e = cfg->embed_dim;
    double per_instance =
        n_query * (in + e) * e + graph_size * 2.0 * in * e + 2.0 * n_query * (double)graph_size * e;
    double fits = floor(SAMPLE_BUDGET / per_instance);
    int sample = fits < MAX_SAMPLE ? (int)fits : MAX_SAMPLE;
    if (sample > batch) sample = batch;
    return sample < 1 ? 1 : sample;
}

/* The reference evaluates on the values as the layer's dtype stores them. */
static ref_problem reference_problem(const layer_weights *w, const float64_forward *f, int sample) {
    ref_problem p = {0};
    p.batch = sample, p.n_query = f->n_query, p.graph_size = f->graph_size;
    p.input_dim = w->cfg.input_dim, p.embed_dim = w->cfg.embed_dim, p.n_heads = w->cfg.n_heads;
    p.storage = (int)w->cfg.dtype;
    for (int i = 0; i < 4; i++)
        p.weight[i] = w->weight[i], p.bias[i] = w->bias[i];
    p.q = f->q, p.h = f->h;
    if (f->mask) { /* the first `sample` rows of a [batch][graph_size] mask */
        p.mask = f->mask, p.mask_ndim = 2;
        p.mask_dims[0] = sample, p.mask_dims[1] = f->graph_size;
    }
    return p;
}

int float64_check(const layer_weights *w, const float64_forward *f, int sample,
                  float64_error *error) {
    ref_problem p = reference_problem(w, f, sample);
    size_t n = (size_t)sample * f->n_query * w->cfg.embed_dim;
    double *ref = malloc(n * sizeof(double));
    if (!ref || ref_forward(&p, ref, NULL, NULL) != 0) {
        free(ref);
        return -1;
    }
    double max_abs = 0.0, ref_max = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)f->out[i] - ref[i]);
        max_abs = isnan(e) ? INFINITY : fmax(max_abs, e);
        ref_max = fmax(ref_max, fabs(ref[i]));
    }
    free(ref);
    error->sample = sample;
    error->max_abs = max_abs;
    error->scale = fmax(1.0, ref_max);
    error->relative = max_abs / error->scale;
    error->within_bound = error->relative <= ref_tolerance((int)w->cfg.dtype);
    return 0;
}
