/* A float64 evaluation of the layer, written from SEMANTICS.md, for the tests to compare with. */
#ifndef MHFA_TEST_REFERENCE_H
#define MHFA_TEST_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ref_problem {
    int batch, n_query, graph_size, input_dim, embed_dim, n_heads;
    const float *weight[4];    /* W_query, W_key, W_val, W_out: [out][in] */
    const float *bias[4];      /* all NULL without bias */
    const float *q, *h;        /* h NULL: self-attention */
    const unsigned char *mask; /* NULL or nonzero = masked, laid out by mask_ndim/mask_dims */
    int mask_ndim, mask_dims[4];
    float dropout_p; /* 0: evaluation */
    uint64_t dropout_seed, dropout_offset;
} ref_problem;

/* out: [batch][n_query][embed_dim]; weights (may be NULL): [batch][n_heads][n_query][graph_size],
 * before dropout. Returns 0, or -1 when out of memory. */
int ref_forward(const ref_problem *p, double *out, double *weights);

#endif
