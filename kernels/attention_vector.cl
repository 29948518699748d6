/* Attention for CPUs (and any device): each work-item takes 16 queries of one (batch, head) as
 * the lanes of float16 vectors and walks the keys BLOCK_K at a time, with no local memory and no
 * barrier. Scores of a key for the 16 queries are one vector (Q^T in registers, the key's features
 * broadcast), so the online softmax, the exp and the weighted sum of V are vector operations too.
 *   vector_attention: the flash path (running max m, running sum l, rescaled output).
 *   vector_attention_with_weights: the manual path; a first walk finds m and l, a second writes
 *     the weights exp(s - m) / l and accumulates the (dropped-out) weights times V.
 * A query whose keys are all masked keeps m = -inf and l = 0: its weights and output are 0.
 * Scores are in base 2 (the queries' scale includes log2(e)) and weights are exp2 of them, which
 * PoCL's CPU code computes in fewer steps than exp.
 * Layouts as in attention_tiled.cl. Grid: (ceil(n_query / 16), batch * n_heads). */
#if !defined(HEAD_DIM) || !defined(BLOCK_K)
#error "attention_vector.cl is built with -D HEAD_DIM and BLOCK_K"
#endif

#define LANES 16

/* Keys handled side by side: independent multiply-add chains keep the FMA units busy (one key's
 * dot product is a chain of HEAD_DIM dependent steps). */
#define KEYS_AT_ONCE 4

/* Features of a K or V row read together: four (one READ4) for half storage where HEAD_DIM
 * allows, since a 16-bit value converted alone cost more than the multiply-adds it feeds; one for
 * float32, whose loads need no conversion. */
#if STORAGE != 0 && HEAD_DIM % 4 == 0
#define FEATURE_RUN 4
inline void read_features(__global const stored *row, int c, float *to) {
    const float4 v = READ4(row, c);
    to[0] = v.s0, to[1] = v.s1, to[2] = v.s2, to[3] = v.s3;
}
#else
#define FEATURE_RUN 1
inline void read_features(__global const stored *row, int c, float *to) {
    to[0] = READ(row, c);
}
#endif

/* The mask's bytes of 16 keys from key0 on, one vector per key (lane i: query i). Each query's
 * 16 bytes are one load; four rounds of interleaving rows p and p + 8 then turn the rows into
 * columns, instead of sixteen byte loads per query. */
inline void mask_columns(uchar16 *column, __global const uchar *const *mask_row, int key0) {
    uchar16 r[LANES];
#pragma unroll
    for (int i = 0; i < LANES; i++)
        r[i] = vload16(0, mask_row[i] + key0);
#pragma unroll
    for (int round = 0; round < 4; round++) {
        uchar16 t[LANES];
#pragma unroll
        for (int p = 0; p < LANES / 2; p++) {
            const uchar16 a = r[p], b = r[p + LANES / 2];
            t[2 * p] = (uchar16)(a.s0, b.s0, a.s1, b.s1, a.s2, b.s2, a.s3, b.s3, a.s4, b.s4, a.s5,
                                 b.s5, a.s6, b.s6, a.s7, b.s7);
            t[2 * p + 1] = (uchar16)(a.s8, b.s8, a.s9, b.s9, a.sa, b.sa, a.sb, b.sb, a.sc, b.sc,
                                     a.sd, b.sd, a.se, b.se, a.sf, b.sf);
        }
#pragma unroll
        for (int i = 0; i < LANES; i++)
            r[i] = t[i];
    }
#pragma unroll
    for (int k = 0; k < LANES; k++)
        column[k] = r[k];
}

/* The mask's bytes of key `key` (lane i: query i), one lane at a time. */
inline uchar16 mask_bytes(__global const uchar *const *mask_row, int key, int key_stride) {
    uchar bytes[LANES];
    for (int i = 0; i < LANES; i++)
        bytes[i] = mask_row[i][(size_t)key * key_stride];
    return vload16(0, bytes);
}

/* The scores of keys [k0, k0 + BLOCK_K) for the 16 queries, -inf where masked or past the end;
 * returns their lane-wise max. mask_row[i]: query i's row of the mask (mask_kind as in
 * may_attend). */
inline float16 block_scores(float16 *s, const float16 *qt, __global const stored *k_head,
                            size_t row_stride, int graph_size, int k0,
                            __global const uchar *const *mask_row, int mask_kind, int key_stride) {
    float16 block_max = (float16)(-INFINITY);
    uchar16 columns[LANES]; /* the mask's bytes of 16 keys, where they are one load per query */
    int have_columns = 0;
    for (int r0 = 0; r0 < BLOCK_K; r0 += KEYS_AT_ONCE) {
        if (mask_kind != MASK_NONE && r0 % LANES == 0) {
            have_columns = key_stride == 1 && k0 + r0 + LANES <= graph_size;
            if (have_columns) mask_columns(columns, mask_row, k0 + r0);
        }
        __global const stored *k_row[KEYS_AT_ONCE]; /* keys past the end read the last one */
        float16 dot[KEYS_AT_ONCE];
#pragma unroll
        for (int j = 0; j < KEYS_AT_ONCE; j++) {
            k_row[j] = k_head + (size_t)min(k0 + r0 + j, graph_size - 1) * row_stride;
            dot[j] = (float16)(0.0f);
        }
        for (int c = 0; c < HEAD_DIM; c += FEATURE_RUN) {
            float features[KEYS_AT_ONCE][FEATURE_RUN];
#pragma unroll
            for (int j = 0; j < KEYS_AT_ONCE; j++)
                read_features(k_row[j], c, features[j]);
#pragma unroll
            for (int e = 0; e < FEATURE_RUN; e++) {
                const float16 q = qt[c + e];
#pragma unroll
                for (int j = 0; j < KEYS_AT_ONCE; j++)
                    dot[j] = MAC(q, (float16)(features[j][e]), dot[j]);
            }
        }
        for (int j = 0; j < KEYS_AT_ONCE && r0 + j < BLOCK_K; j++) {
            const int key = k0 + r0 + j;
            if (key >= graph_size) {
                s[r0 + j] = (float16)(-INFINITY);
                continue;
            }
            if (mask_kind != MASK_NONE) {
                const uchar16 bytes = have_columns ? columns[(r0 + j) % LANES]
                                                   : mask_bytes(mask_row, key, key_stride);
                /* Oclgrind's false positive from mask_columns: tests/oclgrind/exceptions.txt */
                const int16 nonzero = convert_int16(bytes) != (int16)(0);
                const int16 masked = mask_kind == MASK_KEEP ? ~nonzero : nonzero;
                dot[j] = select(dot[j], (float16)(-INFINITY), masked);
            }
            s[r0 + j] = dot[j];
            block_max = fmax(block_max, dot[j]);
        }
    }
    return block_max;
}

/* Whether dropout keeps key `key` for each of the 16 queries: 1 kept, 0 dropped. */
inline float16 dropout_mask(ulong row0, int graph_size, int key, float p, ulong seed,
                            ulong offset) {
    float f[LANES];
    for (int i = 0; i < LANES; i++)
        f[i] = dropout_keeps(row0 + (ulong)i * graph_size + key, p, seed, offset) ? 1.0f : 0.0f;
    return vload16(0, f);
}

/* Where one work-item's LANES queries lie: the first query, its (batch, head), its head's keys
 * and values, and the first weight of its rows in [batch][n_heads][n_query][graph_size]. */
typedef struct lanes_place {
    int query0, bh, batch, head;
    int16 finite; /* per lane: the scaled query row is (-1); else its output row is NaN */
    ulong row0;
    __global const stored *k_head, *v_head;
} lanes_place;

/* The setup both kernels share: the place, qt the scaled (log2 e) queries lane-wise, acc
 * cleared, and mask_row each query's row of the mask (lanes past the end: the last). Call it
 * only when query0 < n_query. */
inline lanes_place setup_lanes(__global const stored *q, __global const stored *k,
                               __global const stored *v, __global const uchar *keep, int mask_kind,
                               int4 keep_stride, int n_heads, int n_query, int graph_size,
                               float scale, float16 *qt, float16 *acc,
                               __global const uchar **mask_row) {
    lanes_place at;
    at.query0 = get_global_id(0) * LANES;
    at.bh = get_global_id(1);
    at.batch = at.bh / n_heads;
    at.head = at.bh - at.batch * n_heads;
    __global const stored *q_head = HEAD_ROWS(q, at.batch, at.head, n_query);
    for (int c = 0; c < HEAD_DIM; c++) {
        float lane[LANES];
        for (int i = 0; i < LANES; i++)
            lane[i] = READ(q_head, min(at.query0 + i, n_query - 1) * ROW_STRIDE + c);
        qt[c] = vload16(0, lane) * (scale * M_LOG2E_F);
        acc[c] = (float16)(0.0f);
    }
    at.finite = (int16)(-1);
    for (int c = 0; c < HEAD_DIM; c++)
        at.finite &= isfinite(qt[c]);
    at.k_head = HEAD_ROWS(k, at.batch, at.head, graph_size);
    at.v_head = HEAD_ROWS(v, at.batch, at.head, graph_size);
    at.row0 = ((ulong)at.bh * n_query + at.query0) * graph_size;
    for (int i = 0; i < LANES && mask_kind != MASK_NONE; i++)
        mask_row[i] =
            keep + keep_offset(keep_stride, at.batch, at.head, min(at.query0 + i, n_query - 1), 0);
    return at;
}

/* Writes lane i of the per-query result vectors (acc[c] * inv) to query0 + i. */
inline void store_rows(__global stored *out_head, size_t row_stride, int n_query, int query0,
                       const float16 *acc, float16 inv) {
    for (int c = 0; c < HEAD_DIM; c++) {
        float lane[LANES];
        vstore16(acc[c] * inv, 0, lane);
        for (int i = 0; i < LANES && query0 + i < n_query; i++)
            WRITE(lane[i], out_head, (query0 + i) * row_stride + c);
    }
}

__kernel void vector_attention(ATTENTION_ARGS) {
    if (get_global_id(0) * LANES >= n_query) return;
    float16 qt[HEAD_DIM], acc[HEAD_DIM], s[BLOCK_K], m = (float16)(-INFINITY), l = (float16)(0.0f);
    __global const uchar *mask_row[LANES];
    const int dropout = dropout_p > 0.0f;
    const lanes_place at = setup_lanes(q, k, v, keep, mask_kind, keep_stride, n_heads, n_query,
                                       graph_size, scale, qt, acc, mask_row);
    for (int k0 = 0; k0 < graph_size; k0 += BLOCK_K) {
        const float16 m_new = fmax(m, block_scores(s, qt, at.k_head, ROW_STRIDE, graph_size, k0,
                                                   mask_row, mask_kind, keep_stride.w));
        /* Lanes with nothing attendable yet keep m = -inf: no rescale, weights 0. */
        const int16 empty = isinf(m_new) & (m_new < 0.0f);
        const float16 base = select(m_new, (float16)(0.0f), empty);
        const float16 correction = select(exp2(m - base), (float16)(1.0f), empty);
        l *= correction;
        for (int c = 0; c < HEAD_DIM; c++)
            acc[c] *= correction;
        /* KEYS_AT_ONCE keys per pass over acc (keys past the end weigh 0, read the last row). */
        for (int r0 = 0; r0 < BLOCK_K && k0 + r0 < graph_size; r0 += KEYS_AT_ONCE) {
            float16 p[KEYS_AT_ONCE];
            __global const stored *v_row[KEYS_AT_ONCE];
#pragma unroll
            for (int j = 0; j < KEYS_AT_ONCE; j++) {
                const int r = r0 + j, present = r < BLOCK_K && k0 + r < graph_size;
                p[j] = present ? exp2(s[min(r, BLOCK_K - 1)] - base) : (float16)(0.0f);
                l += p[j]; /* 0 where s is -inf */
                if (dropout && present)
                    p[j] *= dropout_mask(at.row0, graph_size, k0 + r, dropout_p, dropout_seed,
                                         dropout_offset);
                v_row[j] = at.v_head + (size_t)min(k0 + r, graph_size - 1) * ROW_STRIDE;
            }
            for (int c = 0; c < HEAD_DIM; c += FEATURE_RUN) {
                float features[KEYS_AT_ONCE][FEATURE_RUN];
#pragma unroll
                for (int j = 0; j < KEYS_AT_ONCE; j++)
                    read_features(v_row[j], c, features[j]);
#pragma unroll
                for (int e = 0; e < FEATURE_RUN; e++) {
                    float16 a = acc[c + e];
#pragma unroll
                    for (int j = 0; j < KEYS_AT_ONCE; j++)
                        a = MAC(p[j], (float16)(features[j][e]), a);
                    acc[c + e] = a;
                }
            }
        }
        m = m_new;
    }
    float16 inv = select(1.0f / l, (float16)(0.0f), l == 0.0f);
    inv = select(inv, (float16)(NAN), ~at.finite);
    if (dropout) inv /= 1.0f - dropout_p;
    store_rows(HEAD_ROWS(out, at.batch, at.head, n_query), ROW_STRIDE, n_query, at.query0, acc,
               inv);
}

/* weights: [batch][n_heads][n_query][graph_size], written before dropout. */
__kernel void vector_attention_with_weights(ATTENTION_ARGS, __global float *weights) {
    if (get_global_id(0) * LANES >= n_query) return;
    float16 qt[HEAD_DIM], acc[HEAD_DIM], s[BLOCK_K], m = (float16)(-INFINITY), l = (float16)(0.0f);
    __global const uchar *mask_row[LANES];
    const int dropout = dropout_p > 0.0f;
    const lanes_place at = setup_lanes(q, k, v, keep, mask_kind, keep_stride, n_heads, n_query,
                                       graph_size, scale, qt, acc, mask_row);
    for (int k0 = 0; k0 < graph_size; k0 += BLOCK_K) { /* pass 1: m and l */
        const float16 m_new = fmax(m, block_scores(s, qt, at.k_head, ROW_STRIDE, graph_size, k0,
                                                   mask_row, mask_kind, keep_stride.w));
        const int16 empty = isinf(m_new) & (m_new < 0.0f);
        const float16 base = select(m_new, (float16)(0.0f), empty);
        l *= select(exp2(m - base), (float16)(1.0f), empty);
        for (int r = 0; r < BLOCK_K && k0 + r < graph_size; r++)
            l += exp2(s[r] - base);
        m = m_new;
    }
    const int16 empty = l == 0.0f;
    /* A lane whose query row is not finite: every weight NaN. */
    const float16 base = select(select(m, (float16)(0.0f), empty), (float16)(NAN), ~at.finite);
    const float16 inv = select(1.0f / l, (float16)(0.0f), empty);
    for (int k0 = 0; k0 < graph_size; k0 += BLOCK_K) { /* pass 2: weights, then V */
        block_scores(s, qt, at.k_head, ROW_STRIDE, graph_size, k0, mask_row, mask_kind,
                     keep_stride.w);
        for (int r = 0; r < BLOCK_K && k0 + r < graph_size; r++) {
            float16 p = exp2(s[r] - base) * inv;
            float lane[LANES];
            vstore16(p, 0, lane);
            for (int i = 0; i < LANES && at.query0 + i < n_query; i++)
                weights[at.row0 + (ulong)i * graph_size + k0 + r] = lane[i];
            if (dropout)
                p *= dropout_mask(at.row0, graph_size, k0 + r, dropout_p, dropout_seed,
                                  dropout_offset) /
                     (1.0f - dropout_p);
            __global const stored *v_row = at.v_head + (size_t)(k0 + r) * ROW_STRIDE;
            for (int c = 0; c < HEAD_DIM; c += FEATURE_RUN) {
                float features[FEATURE_RUN];
                read_features(v_row, c, features);
#pragma unroll
                for (int e = 0; e < FEATURE_RUN; e++)
                    acc[c + e] = MAC(p, (float16)(features[e]), acc[c + e]);
            }
        }
    }
    store_rows(HEAD_ROWS(out, at.batch, at.head, n_query), ROW_STRIDE, n_query, at.query0, acc,
               (float16)(1.0f));
}
