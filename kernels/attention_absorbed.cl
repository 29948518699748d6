/* The whole layer for few queries (decoding: one query per step), with the key and value
 * projections absorbed into the query side. For head h, key input row x_j and query q_h:
 *   score_h(j) = q_h . (Wk_h x_j + bk_h)        = (Wk_h^T q_h) . x_j + q_h . bk_h
 *   context_h  = sum_j w_j (Wv_h x_j + bv_h)    = Wv_h (sum_j w_j x_j) + bv_h sum_j w_j
 * so each key costs 2 * N_HEADS * IN_DIM multiply-adds per query instead of the 2 * EMBED * IN_DIM
 * of projecting it. Nothing is written between the input and the output.
 *
 * One work-group of GROUP items per (batch, query) row: Q projection (scaled by 1/sqrt(d)), the
 * absorbed query, the keys in tiles of KEYS with the online softmax, the weighted key input,
 * context, output projection. Items take every GROUP-th feature or key, so GROUP 1 is one item
 * doing it all with contiguous inner loops (CPUs), and a larger GROUP spreads it (GPUs).
 * Inputs, weights and the output in the storage type (common.cl); all else float32.
 * Compile-time: N_HEADS, HEAD_DIM, IN_DIM, GROUP, KEYS. Grid: (n_query * GROUP, batch). */
#if !defined(N_HEADS) || !defined(HEAD_DIM) || !defined(IN_DIM) || !defined(GROUP) || !defined(KEYS)
#error "attention_absorbed.cl is built with -D N_HEADS, HEAD_DIM, IN_DIM, GROUP and KEYS"
#endif

#define EMBED         (N_HEADS * HEAD_DIM)
#define PER_ITEM(n)   (((n) + GROUP - 1) / GROUP)
#define X_STRIDE      (IN_DIM + 1) /* key tile rows padded: items reading one column hit other banks */
#define HEADS_LOOP(h) for (int h = get_local_id(0); h < N_HEADS; h += GROUP)

/* y[k] = scale * (sum_i w_t[i * ld + col0 + e] * x[i] + bias[col0 + e]) for this item's outputs
 * e = lid + k * GROUP < EMBED: a row times transposed weights. */
inline void project_row(__local const float *x, int in_dim, __global const stored *w_t, int ld,
                        int col0, __global const stored *bias, int has_bias, float scale,
                        float y[PER_ITEM(EMBED)]) {
    const int lid = get_local_id(0);
    for (int k = 0; k < PER_ITEM(EMBED); k++)
        y[k] = 0.0f;
    for (int i = 0; i < in_dim; i++) {
        __global const stored *row = w_t + (size_t)i * ld + col0 + lid;
        const float xi = x[i];
        for (int k = 0; k < PER_ITEM(EMBED); k++)
            if (EMBED % GROUP == 0 || lid + k * GROUP < EMBED)
                y[k] = MAC(READ(row, k * GROUP), xi, y[k]);
    }
    for (int k = 0; k < PER_ITEM(EMBED); k++) {
        const int e = min(lid + k * GROUP, EMBED - 1);
        y[k] = (y[k] + (has_bias ? READ(bias, col0 + e) : 0.0f)) * scale;
    }
}

/* The same with one input vector per head, x[i][head], and head h's bias scaled by
 * bias_scale[h]: output e reads the vector of head e / HEAD_DIM. */
inline void project_heads(__local const float *x, __global const stored *w_t, int ld, int col0,
                          __global const stored *bias, int has_bias,
                          __local const float *bias_scale, float y[PER_ITEM(EMBED)]) {
    const int lid = get_local_id(0);
    for (int k = 0; k < PER_ITEM(EMBED); k++)
        y[k] = 0.0f;
#if GROUP == 1
    /* One item: head by head, so the inner loop runs over contiguous weights. */
    for (int i = 0; i < IN_DIM; i++) {
        __global const stored *row = w_t + (size_t)i * ld + col0;
        for (int h = 0; h < N_HEADS; h++) {
            const float xi = x[i * N_HEADS + h];
            for (int d = 0; d < HEAD_DIM; d++)
                y[h * HEAD_DIM + d] = MAC(READ(row, h * HEAD_DIM + d), xi, y[h * HEAD_DIM + d]);
        }
    }
#else
    for (int i = 0; i < IN_DIM; i++) {
        __global const stored *row = w_t + (size_t)i * ld + col0 + lid;
        for (int k = 0; k < PER_ITEM(EMBED); k++) {
            const int e = lid + k * GROUP;
            if (EMBED % GROUP == 0 || e < EMBED)
                y[k] = MAC(READ(row, k * GROUP), x[i * N_HEADS + e / HEAD_DIM], y[k]);
        }
    }
#endif
    for (int k = 0; k < PER_ITEM(EMBED); k++) {
        const int e = min(lid + k * GROUP, EMBED - 1);
        y[k] += has_bias ? READ(bias, col0 + e) * bias_scale[e / HEAD_DIM] : 0.0f;
    }
}

/* This item's outputs of project_row to a row of EMBED in local memory, or in global memory
 * in the storage type. */
#define STORE_ROW(to, y)                                                                           \
    for (int k = 0; k < PER_ITEM(EMBED) && lid + k * GROUP < EMBED; k++)                           \
        (to)[lid + k * GROUP] = (y)[k];
#define WRITE_ROW(to, y)                                                                           \
    for (int k = 0; k < PER_ITEM(EMBED) && lid + k * GROUP < EMBED; k++)                           \
        WRITE((y)[k], (to), lid + k * GROUP);

/* Global row to local memory, all items. */
inline void load_row(__global const stored *from, int n, __local float *to) {
    for (int i = get_local_id(0); i < n; i += GROUP)
        to[i] = READ(from, i);
}

__kernel void absorbed_attention(__global const stored *query_in, __global const stored *key_in,
                                 __global const stored *in_t, __global const stored *in_bias,
                                 __global const stored *key_weight, __global const stored *out_t,
                                 __global const stored *out_bias, int has_bias,
                                 __global const uchar *keep, int mask_kind, int4 keep_stride,
                                 __global stored *out, int n_query, int graph_size, float scale,
                                 float dropout_p, ulong dropout_seed, ulong dropout_offset) {
    const int lid = get_local_id(0), query = get_group_id(0), batch = get_group_id(1);
    const int row = batch * n_query + query, dropout = dropout_p > 0.0f;
    __local float qs[EMBED];             /* scaled query, later the context */
    __local float qt[IN_DIM * N_HEADS];  /* absorbed query [i][h], later the weighted input */
    __local float xs[KEYS * X_STRIDE];   /* key tile; first the query's input row */
    __local float probs[KEYS * N_HEADS]; /* tile scores, then e^(s - m) [j][h] */
    __local float kept[KEYS * N_HEADS];  /* the same after dropout */
    __local float bias_dot[N_HEADS], running_max[N_HEADS], correction[N_HEADS];
    __local float total[N_HEADS], kept_total[N_HEADS];
    CHECK_LOCAL_BYTES(sizeof qs + sizeof qt + sizeof xs + sizeof probs + sizeof kept +
                      sizeof bias_dot + sizeof running_max + sizeof correction + sizeof total +
                      sizeof kept_total);

    /* Q projection. */
    load_row(query_in + (size_t)row * IN_DIM, IN_DIM, xs);
    barrier(CLK_LOCAL_MEM_FENCE);
    float y[PER_ITEM(EMBED)];
    project_row(xs, IN_DIM, in_t, 3 * EMBED, 0, in_bias, has_bias, scale, y);
    STORE_ROW(qs, y);
    barrier(CLK_LOCAL_MEM_FENCE);

    /* Absorbed query qt[i][h] = sum_d q[h d] Wk[h d][i] (key_weight in PyTorch's [E][Din]
     * layout), and q_h . bk_h. acc is reused below for the weighted input. */
    float acc[N_HEADS][PER_ITEM(IN_DIM)];
    for (int h = 0; h < N_HEADS; h++) {
        for (int k = 0; k < PER_ITEM(IN_DIM); k++)
            acc[h][k] = 0.0f;
        for (int d = 0; d < HEAD_DIM; d++) {
            const float c = qs[h * HEAD_DIM + d];
            __global const stored *w = key_weight + (size_t)(h * HEAD_DIM + d) * IN_DIM + lid;
            for (int k = 0; k < PER_ITEM(IN_DIM); k++)
                if (IN_DIM % GROUP == 0 || lid + k * GROUP < IN_DIM)
                    acc[h][k] = MAC(c, READ(w, k * GROUP), acc[h][k]);
        }
    }
    for (int k = 0; k < PER_ITEM(IN_DIM); k++) {
        const int i = lid + k * GROUP;
        if (i >= IN_DIM) break;
        for (int h = 0; h < N_HEADS; h++) {
            qt[i * N_HEADS + h] = acc[h][k];
            acc[h][k] = 0.0f;
        }
    }
    HEADS_LOOP(h) {
        float s = 0.0f;
        for (int d = 0; d < HEAD_DIM && has_bias; d++)
            s = MAC(qs[h * HEAD_DIM + d], READ(in_bias, EMBED + h * HEAD_DIM + d), s);
        bias_dot[h] = s;
        running_max[h] = -INFINITY;
        total[h] = 0.0f;
        kept_total[h] = 0.0f;
    }

    /* Keys in tiles: scores, online softmax, acc[h][i] += w_j x_j[i]. */
    __global const stored *keys = key_in + (size_t)batch * graph_size * IN_DIM;
    for (int key0 = 0; key0 < graph_size; key0 += KEYS) {
        const int n = min(KEYS, graph_size - key0);
        barrier(CLK_LOCAL_MEM_FENCE); /* the last tile (or the query row) is no longer read */
        for (int t = lid; t < n * IN_DIM; t += GROUP) {
            const int j = t / IN_DIM, i = t - j * IN_DIM;
            xs[j * X_STRIDE + i] = READ(keys, (size_t)(key0 + j) * IN_DIM + i);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int j = lid; j < n; j += GROUP) {
            float s[N_HEADS];
            for (int h = 0; h < N_HEADS; h++)
                s[h] = 0.0f;
            for (int i = 0; i < IN_DIM; i++) {
                const float x = xs[j * X_STRIDE + i];
                for (int h = 0; h < N_HEADS; h++)
                    s[h] = MAC(qt[i * N_HEADS + h], x, s[h]);
            }
            for (int h = 0; h < N_HEADS; h++) {
                const int ok = may_attend(keep, mask_kind, keep_stride, batch, h, query, key0 + j);
                probs[j * N_HEADS + h] = ok ? s[h] + bias_dot[h] : -INFINITY;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        HEADS_LOOP(h) {
            float m = running_max[h];
            for (int j = 0; j < n; j++)
                m = fmax(m, probs[j * N_HEADS + h]);
            correction[h] = m == -INFINITY ? 1.0f : SOFTMAX_EXP(running_max[h] - m);
            running_max[h] = m;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int t = lid; t < n * N_HEADS; t += GROUP) {
            const int j = t / N_HEADS, h = t - j * N_HEADS;
            const float s = probs[t];
            const float p = s == -INFINITY ? 0.0f : SOFTMAX_EXP(s - running_max[h]);
            probs[t] = p;
            const ulong position =
                ((ulong)(batch * N_HEADS + h) * n_query + query) * graph_size + key0 + j;
            kept[t] = dropout && !dropout_keeps(position, dropout_p, dropout_seed, dropout_offset)
                          ? 0.0f
                          : p;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        HEADS_LOOP(h) {
            float l = total[h] * correction[h], lk = kept_total[h] * correction[h];
            for (int j = 0; j < n; j++) {
                l += probs[j * N_HEADS + h];
                lk += kept[j * N_HEADS + h];
            }
            total[h] = l;
            kept_total[h] = lk;
        }
        for (int h = 0; h < N_HEADS; h++)
            for (int k = 0; k < PER_ITEM(IN_DIM); k++)
                acc[h][k] *= correction[h];
        for (int j = 0; j < n; j++) {
            __local const float *x = xs + j * X_STRIDE + lid;
            for (int h = 0; h < N_HEADS; h++) {
                const float w = kept[j * N_HEADS + h];
                for (int k = 0; k < PER_ITEM(IN_DIM); k++)
                    if (IN_DIM % GROUP == 0 || lid + k * GROUP < IN_DIM)
                        acc[h][k] = MAC(w, x[k * GROUP], acc[h][k]);
            }
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* Normalise: the weighted input over qt, the weights' sum (bv's factor) over correction. Rows
     * with no attendable key (total 0) give a context of 0. */
    const float keep_scale = dropout ? 1.0f / (1.0f - dropout_p) : 1.0f;
    for (int k = 0; k < PER_ITEM(IN_DIM); k++) {
        const int i = lid + k * GROUP;
        if (i >= IN_DIM) break;
        for (int h = 0; h < N_HEADS; h++) {
            const float inv = total[h] == 0.0f ? 0.0f : keep_scale / total[h]; /* NaN: NaN */
            qt[i * N_HEADS + h] = acc[h][k] * inv;
        }
    }
    HEADS_LOOP(h) {
        correction[h] = total[h] == 0.0f ? 0.0f : kept_total[h] * (keep_scale / total[h]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* Context = Wv_h (weighted input) + bv_h * weights' sum, then the output projection. */
    project_heads(qt, in_t, 3 * EMBED, 2 * EMBED, in_bias, has_bias, correction, y);
    STORE_ROW(qs, y);
    barrier(CLK_LOCAL_MEM_FENCE);
    project_row(qs, EMBED, out_t, EMBED, 0, out_bias, has_bias, 1.0f, y);
    WRITE_ROW(out + (size_t)row * EMBED, y);
}
