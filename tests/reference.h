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
    int storage; /* 0: float32, values as given; 1 float16, 2 bfloat16 (mhfa_dtype): inputs,
                    weights, Q, K, V, context and output rounded to it where mhfa stores them */
} ref_problem;

/* Magnitudes the error of a float32 evaluation scales with (for ill-conditioned inputs). */
typedef struct ref_stats {
    double max_logit; /* max |Q_i . K_j| * scale over attendable pairs */
    double max_value; /* max |V| */
    double *row_gap;  /* NULL, or [batch][n_query] receiving, over heads, the smallest gap
                         between a row's two largest logits (INFINITY with fewer than two) */
} ref_stats;

/* SEMANTICS.md's bound against this reference, relative to max(1, max |ref|), for a storage type:
 * 1e-5 (float32), 4e-3 (float16), 3e-2 (bfloat16). */
double ref_tolerance(int storage);

/* out: [batch][n_query][embed_dim]; weights (may be NULL): [batch][n_heads][n_query][graph_size],
 * before dropout; stats may be NULL (else its row_gap is read first). Returns 0, or -1 when out of
 * memory. */
int ref_forward(const ref_problem *p, double *out, double *weights, ref_stats *stats);

#endif
