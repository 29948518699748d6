/* The layer mhfa-run measures: its module (from --weights or its own initial weights) and a host
 * copy of its weights for the float64 reference and the heatmap's module. */
#ifndef MHFA_TOOLS_RUN_MODULE_H
#define MHFA_TOOLS_RUN_MODULE_H

#include "mhfa.h"
#include "run_options.h"

typedef struct layer_weights {
    mhfa_config cfg;
    float *weight[4]; /* W_query, W_key, W_val: [embed_dim][input_dim]; W_out: [embed_dim]^2 */
    float *bias[4];   /* [embed_dim] each, all NULL without bias */
} layer_weights;

/* Creates the module from opts, writing a description of where its weights came from to source
 * (at most source_size bytes). Returns 0; 1 after a failure (message printed); 2 when the options
 * do not suffice for the weights file (message printed: bad usage). */
int run_module_create(mhfa_context *ctx, const run_options *opts, mhfa_module **module,
                      char *source, size_t source_size);

/* Copies the module's config and weights to the host. Returns 0, or 1 (message printed). */
int layer_weights_read(mhfa_context *ctx, const mhfa_module *module, layer_weights *w);
void layer_weights_free(layer_weights *w);

/* A second module with w's weights and the manual path (stored attention weights). Returns 0, or
 * 1 (message printed). */
int layer_weights_manual_module(mhfa_context *ctx, const layer_weights *w, mhfa_module **module);

/* Prints "mhfa-run: WHAT failed: STATUS: MESSAGE" and returns 1, or returns 0 on success. */
int report_failure(mhfa_status s, const mhfa_context *ctx, const char *what);

#endif
