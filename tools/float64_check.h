/* The tools' accuracy check (mhfa-run's error line, mhfa-info --check): mhfa's float32 output on
 * the first instances of a forward against tests/reference.c's float64 evaluation of the same
 * layer. */
#ifndef MHFA_TOOLS_FLOAT64_CHECK_H
#define MHFA_TOOLS_FLOAT64_CHECK_H

#include "run_module.h"

/* The bound: max|out - ref| <= FLOAT64_CHECK_TOLERANCE * max(1, max|ref|) for float32 storage;
 * the tests' ref_tolerance (reference.h) gives every type's (the layer's dtype, in w->cfg). */
#define FLOAT64_CHECK_TOLERANCE 1e-5

typedef struct float64_forward {
    int n_query, graph_size;
    const float *q, *h;        /* as given to mhfa_forward; h NULL for self-attention */
    const unsigned char *mask; /* NULL, or [batch][graph_size] */
    const float *out;          /* mhfa's output */
} float64_forward;

typedef struct float64_error {
    int sample;       /* instances compared */
    double max_abs;   /* max |out - ref| (INFINITY for a NaN) */
    double scale;     /* max(1, max|ref|) */
    double relative;  /* max_abs / scale */
    int within_bound; /* relative <= ref_tolerance(the layer's dtype) */
} float64_error;

/* How many of batch instances to compare: up to 4, fewer when one instance's float64 evaluation
 * is large, at least 1. */
int float64_sample_size(const mhfa_config *cfg, int batch, int n_query, int graph_size);

/* Compares the first `sample` instances. Returns 0, or -1 when out of memory. */
int float64_check(const layer_weights *w, const float64_forward *f, int sample,
                  float64_error *error);

#endif
