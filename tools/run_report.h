/* mhfa-run's output: the measured numbers as text, or as one JSON object (--json). */
#ifndef MHFA_TOOLS_RUN_REPORT_H
#define MHFA_TOOLS_RUN_REPORT_H

#include "float64_check.h"

typedef struct stage_result {
    int forwards;        /* timed forwards the median is taken over */
    double median_ms;    /* per forward */
    int n_query;         /* queries per instance */
    float64_error error; /* on the first error.sample instances */
} stage_result;

typedef struct run_result {
    const char *device;
    const char *weights_source;
    int batch, nodes, n_heads, input_dim, embed_dim;
    stage_result encoder;
    stage_result decoder; /* one forward per step */
    int decoder_steps, checked_step;
    int keys_are_encoder_output; /* 0: the node embeddings (input_dim differs from embed_dim) */
    const char *heatmap_path;    /* NULL when none was written */
    int heatmap_nodes;
} run_result;

void run_report_text(const run_result *r);
/* Returns 0, or -1 when out of memory. */
int run_report_json(const run_result *r);

#endif
