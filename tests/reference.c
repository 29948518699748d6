/* The float64 reference: projections, masked softmax per head (a row with every key masked gives
 * zero weights), dropout after the weights are kept, context, output projection. */
#include "reference.h"

#include "internal.h" /* mhfa_dropout_keeps: the position-keyed generator SEMANTICS.md names */

#include <math.h>
#include <stdlib.h>

double ref_tolerance(int storage) {
    return storage == 1 ? 4e-3 : storage == 2 ? 3e-2 : 1e-5;
}

/* x as a value of the storage type (0: float32, kept as it is). */
static double stored(int storage, double x) {
    if (storage == 1) return mhfa_half_to_float(mhfa_float_to_half((float)x));
    if (storage == 2) return mhfa_bfloat16_to_float(mhfa_float_to_bfloat16((float)x));
    return x;
}

static void round_all(int storage, double *x, size_t n) {
    for (size_t i = 0; i < n && storage; i++)
        x[i] = stored(storage, x[i]);
}

/* y[rows][out] = x[rows][in] W^T + b, in double, W and b as stored, y rounded where stored. */
static void linear(int storage, const double *x, int rows, int in, int out, const float *w,
                   const float *b, double *y) {
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = b ? stored(storage, b[o]) : 0.0;
            for (int i = 0; i < in; i++)
                s += x[(size_t)r * in + i] * stored(storage, w[(size_t)o * in + i]);
            y[(size_t)r * out + o] = stored(storage, s);
        }
}

static int is_masked(const ref_problem *p, int b, int h, int i, int j) {
    if (!p->mask) return 0;
    int idx[4] = {b, h, i, j}, axis_of[4];
    if (p->mask_ndim == 2) axis_of[0] = 0, axis_of[1] = 3;
    if (p->mask_ndim == 3) axis_of[0] = 0, axis_of[1] = 2, axis_of[2] = 3;
    if (p->mask_ndim == 4) axis_of[0] = 0, axis_of[1] = 1, axis_of[2] = 2, axis_of[3] = 3;
    size_t at = 0;
    for (int d = 0; d < p->mask_ndim; d++) {
        int size = p->mask_dims[d];
        at = at * (size_t)size + (size_t)(size == 1 ? 0 : idx[axis_of[d]]);
    }
    return p->mask[at] != 0;
}

/* The distance between the two largest finite entries of row (INFINITY with fewer than two). */
static double top_two_gap(const double *row, int n) {
    double first = -INFINITY, second = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (row[j] > first)
            second = first, first = row[j];
        else if (row[j] > second)
            second = row[j];
    }
    return second == -INFINITY ? INFINITY : first - second;
}

int ref_forward(const ref_problem *p, double *out, double *weights_out, ref_stats *stats) {
    const int B = p->batch, Nq = p->n_query, Nk = p->graph_size, Din = p->input_dim;
    const int E = p->embed_dim, H = p->n_heads, d = E / H;
    const float *h_in = p->h ? p->h : p->q;
    double *xq = malloc(sizeof(double) * (size_t)B * Nq * Din);
    double *xh = malloc(sizeof(double) * (size_t)B * Nk * Din);
    double *Q = malloc(sizeof(double) * (size_t)B * Nq * E);
    double *K = malloc(sizeof(double) * (size_t)B * Nk * E);
    double *V = malloc(sizeof(double) * (size_t)B * Nk * E);
    double *ctx = malloc(sizeof(double) * (size_t)B * Nq * E);
    double *row = malloc(sizeof(double) * (size_t)Nk);
    int ok = xq && xh && Q && K && V && ctx && row;
    ref_stats seen = {0.0, 0.0, stats ? stats->row_gap : NULL};
    if (seen.row_gap)
        for (size_t i = 0; i < (size_t)B * Nq; i++)
            seen.row_gap[i] = INFINITY;
    if (ok) {
        for (size_t i = 0; i < (size_t)B * Nq * Din; i++)
            xq[i] = stored(p->storage, p->q[i]);
        for (size_t i = 0; i < (size_t)B * Nk * Din; i++)
            xh[i] = stored(p->storage, h_in[i]);
        linear(p->storage, xq, B * Nq, Din, E, p->weight[0], p->bias[0], Q);
        linear(p->storage, xh, B * Nk, Din, E, p->weight[1], p->bias[1], K);
        linear(p->storage, xh, B * Nk, Din, E, p->weight[2], p->bias[2], V);
        for (size_t i = 0; i < (size_t)B * Nk * E; i++)
            if (fabs(V[i]) > seen.max_value) seen.max_value = fabs(V[i]);
        const double scale = 1.0 / sqrt((double)d);
        for (int b = 0; b < B; b++)
            for (int hd = 0; hd < H; hd++)
                for (int i = 0; i < Nq; i++) {
                    const double *qi = Q + ((size_t)b * Nq + i) * E + (size_t)hd * d;
                    double m = -INFINITY;
                    for (int j = 0; j < Nk; j++) {
                        const double *kj = K + ((size_t)b * Nk + j) * E + (size_t)hd * d;
                        double s = 0.0;
                        for (int c = 0; c < d; c++)
                            s += qi[c] * kj[c];
                        row[j] = is_masked(p, b, hd, i, j) ? -INFINITY : s * scale;
                        if (fabs(row[j]) > seen.max_logit && row[j] != -INFINITY)
                            seen.max_logit = fabs(row[j]);
                        if (row[j] > m) m = row[j];
                    }
                    if (seen.row_gap) {
                        double gap = top_two_gap(row, Nk), *at = &seen.row_gap[(size_t)b * Nq + i];
                        if (gap < *at) *at = gap;
                    }
                    double sum = 0.0;
                    for (int j = 0; j < Nk; j++) {
                        row[j] = m == -INFINITY ? 0.0 : exp(row[j] - m);
                        sum += row[j];
                    }
                    size_t wrow = (((size_t)b * H + hd) * Nq + i) * Nk;
                    for (int j = 0; j < Nk; j++) {
                        row[j] = sum > 0.0 ? row[j] / sum : 0.0;
                        if (weights_out) weights_out[wrow + j] = row[j];
                        if (p->dropout_p > 0.0f)
                            row[j] = mhfa_dropout_keeps(wrow + j, p->dropout_p, p->dropout_seed,
                                                        p->dropout_offset)
                                         ? row[j] / (1.0 - (double)p->dropout_p)
                                         : 0.0;
                    }
                    double *ci = ctx + ((size_t)b * Nq + i) * E + (size_t)hd * d;
                    for (int c = 0; c < d; c++) {
                        double s = 0.0;
                        for (int j = 0; j < Nk; j++)
                            s += row[j] * V[((size_t)b * Nk + j) * E + (size_t)hd * d + c];
                        ci[c] = s;
                    }
                }
        round_all(p->storage, ctx, (size_t)B * Nq * E);
        linear(p->storage, ctx, B * Nq, E, E, p->weight[3], p->bias[3], out);
    }
    if (stats) *stats = seen;
    free(xq);
    free(xh);
    free(Q);
    free(K);
    free(V);
    free(ctx);
    free(row);
    return ok ? 0 : -1;
}
