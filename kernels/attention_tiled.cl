/* Attention, softmax(Q K^T * scale, masked) V, for one (batch, head) and BLOCK_Q queries per
 * work-group, one query per work-item. K and V pass through local memory BLOCK_K rows at a time.
 *   tiled_attention (the flash path): never stores a row of scores; each work-item keeps its
 *     running max m, running sum l and the unnormalised output in registers and rescales them
 *     when m grows (the online softmax).
 *   tiled_attention_with_weights (the manual path, store_attn_weights): a first pass over the
 *     keys finds m and l, a second writes each weight exp(s - m) / l to the stored weights and
 *     accumulates the (dropped-out) weights times V.
 * A query whose keys are all masked keeps m = -inf and l = 0: its weights and output are 0.
 * Loops over a tile's keys run to BLOCK_K, not to the keys present, so that the compiler can keep
 * the scores in registers (keys past the end score -inf and weigh 0).
 * Rows are handled as VW-wide vectors (float4 when HEAD_DIM allows), so that local memory is read
 * 16 bytes at a time.
 * Inputs q, k, v and out in the per-head layout (common.cl: HEAD_ROWS, ROW_STRIDE).
 * Work-group: BLOCK_Q work-items; grid: (ceil(n_query / BLOCK_Q) * BLOCK_Q, batch * n_heads).
 * STORE_WEIGHTS picks the kernel a program holds, so that each checks its own local memory. */
#if !defined(HEAD_DIM) || !defined(BLOCK_Q) || !defined(BLOCK_K) || !defined(STORE_WEIGHTS)
#error "attention_tiled.cl is built with -D HEAD_DIM, BLOCK_Q, BLOCK_K and STORE_WEIGHTS"
#endif

#define TILE_LOADS ((BLOCK_K * DV + BLOCK_Q - 1) / BLOCK_Q)

/* Loads keys and values [k0, k0 + in_tile) of one head into local memory, zeros past the end.
 * A fixed trip count lets the compiler issue every load before the first store. */
inline void load_tile(__local vec (*ks)[DV], __local vec (*vs)[DV], __global const stored *k_head,
                      __global const stored *v_head, size_t row_stride, int k0, int in_tile) {
    for (int j = 0; j < TILE_LOADS; j++) {
        int i = get_local_id(0) + j * BLOCK_Q, r = i / DV, c = i - r * DV;
        if (i >= BLOCK_K * DV) break;
        size_t at = (size_t)(k0 + r) * row_stride;
        ks[r][c] = r < in_tile ? LOAD(c, k_head + at) : (vec)(0.0f);
        vs[r][c] = r < in_tile ? LOAD(c, v_head + at) : (vec)(0.0f);
    }
}

/* The scaled scores of one query against the tile (-inf where masked or past the end); returns
 * their max. Keys are the inner loop so that BLOCK_K independent sums are in flight. */
inline float tile_scores(float *s, const vec *qr, __local vec (*ks)[DV], int in_tile,
                         __global const uchar *keep, int mask_kind, int4 keep_stride, int batch,
                         int head, int row, int k0) {
    for (int r = 0; r < BLOCK_K; r++)
        s[r] = 0.0f;
    for (int c = 0; c < DV; c++) {
        const vec qc = qr[c];
        for (int r = 0; r < BLOCK_K; r++) {
            const vec kc = ks[r][c];
#if VW == 4
            s[r] = MAC(qc.x, kc.x, s[r]);
            s[r] = MAC(qc.y, kc.y, s[r]);
            s[r] = MAC(qc.z, kc.z, s[r]);
            s[r] = MAC(qc.w, kc.w, s[r]);
#else
            s[r] = MAC(qc, kc, s[r]);
#endif
        }
    }
    float tile_max = -INFINITY;
    int any_nan = 0; /* fmax passes over NaN: a row whose attendable scores are NaN must not look
                        fully masked */
    for (int r = 0; r < BLOCK_K; r++) {
        int allowed =
            r < in_tile && may_attend(keep, mask_kind, keep_stride, batch, head, row, k0 + r);
        s[r] = allowed ? s[r] : -INFINITY;
        tile_max = fmax(tile_max, s[r]);
        any_nan |= isnan(s[r]);
    }
    return any_nan ? NAN : tile_max;
}

/* Where one work-item's query lies: its (batch, head), its row (the last query for idle
 * work-items, so that their mask reads stay in bounds), and its head's keys and values. */
typedef struct query_place {
    int query, bh, batch, head, row, active;
    int finite;       /* the scaled query row is: else the output row is NaN */
    ulong weight_row; /* the row's first weight in [batch][n_heads][n_query][graph_size] */
    __global const stored *k_head, *v_head;
} query_place;

/* The per-work-item setup both kernels share: the query's place, its scaled row in qr, and acc
 * cleared. */
inline query_place setup_query(__global const stored *q, __global const stored *k,
                               __global const stored *v, int n_heads, int n_query, int graph_size,
                               float scale, vec *qr, vec *acc) {
    query_place at;
    at.query = get_group_id(0) * BLOCK_Q + get_local_id(0);
    at.bh = get_group_id(1);
    at.batch = at.bh / n_heads;
    at.head = at.bh - at.batch * n_heads;
    at.active = at.query < n_query;
    at.row = at.active ? at.query : n_query - 1;
    __global const stored *q_row = HEAD_ROWS(q, at.batch, at.head, n_query) + at.row * ROW_STRIDE;
    for (int c = 0; c < DV; c++) {
        /* Idle work-items score a zero query: the last row is overwritten by its output (the
         * output is written over Q), and no fence orders that store after this load. */
        qr[c] = at.active ? LOAD(c, q_row) * scale : (vec)(0.0f);
        acc[c] = (vec)(0.0f);
    }
    at.finite = row_finite(qr);
    at.k_head = HEAD_ROWS(k, at.batch, at.head, graph_size);
    at.v_head = HEAD_ROWS(v, at.batch, at.head, graph_size);
    at.weight_row = ((ulong)at.bh * n_query + at.row) * graph_size;
    return at;
}

#if !STORE_WEIGHTS
__kernel void tiled_attention(ATTENTION_ARGS) {
    __local vec ks[BLOCK_K][DV], vs[BLOCK_K][DV]; /* local memory: at kernel scope */
    CHECK_LOCAL_BYTES(sizeof ks + sizeof vs);
    vec qr[DV], acc[DV];
    float s[BLOCK_K], m = -INFINITY, l = 0.0f;
    const int dropout = dropout_p > 0.0f;
    const query_place at = setup_query(q, k, v, n_heads, n_query, graph_size, scale, qr, acc);
    for (int k0 = 0; k0 < graph_size; k0 += BLOCK_K) {
        const int in_tile = min(BLOCK_K, graph_size - k0);
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is no longer read */
        load_tile(ks, vs, at.k_head, at.v_head, ROW_STRIDE, k0, in_tile);
        barrier(CLK_LOCAL_MEM_FENCE);
        const float tile_max = tile_scores(s, qr, ks, in_tile, keep, mask_kind, keep_stride,
                                           at.batch, at.head, at.row, k0);
        const float m_new = isnan(tile_max) ? NAN : fmax(m, tile_max); /* NaN: l and acc NaN */
        if (m_new != -INFINITY) { /* else nothing attendable yet, and exp(-inf - -inf) is NaN */
            const float correction = SOFTMAX_EXP(m - m_new);
            l *= correction;
            for (int c = 0; c < DV; c++)
                acc[c] *= correction;
            for (int r = 0; r < BLOCK_K; r++) { /* past in_tile s is -inf, so p is 0 */
                float p = SOFTMAX_EXP(s[r] - m_new);
                l += p;
                if (dropout && r < in_tile &&
                    !dropout_keeps(at.weight_row + k0 + r, dropout_p, dropout_seed, dropout_offset))
                    p = 0.0f;
                for (int c = 0; c < DV; c++)
                    acc[c] = MAC((vec)(p), vs[r][c], acc[c]);
            }
            m = m_new;
        }
    }

    if (!at.active) return;
    float inv = softmax_inverse(l);
    if (!at.finite) inv = NAN;
    if (dropout) inv /= 1.0f - dropout_p;
    __global stored *out_row = HEAD_ROWS(out, at.batch, at.head, n_query) + at.query * ROW_STRIDE;
    for (int c = 0; c < DV; c++)
        STORE(acc[c] * inv, c, out_row);
}

#else
/* weights: [batch][n_heads][n_query][graph_size], written before dropout. */
__kernel void tiled_attention_with_weights(ATTENTION_ARGS, __global float *weights) {
    __local vec ks[BLOCK_K][DV], vs[BLOCK_K][DV]; /* local memory: at kernel scope */
    vec qr[DV], acc[DV];
    float s[BLOCK_K], m = -INFINITY, l = 0.0f;
    const int dropout = dropout_p > 0.0f;
    const query_place at = setup_query(q, k, v, n_heads, n_query, graph_size, scale, qr, acc);
    /* Pass 1: the row's max and sum. */
    for (int k0 = 0; k0 < graph_size; k0 += BLOCK_K) {
        const int in_tile = min(BLOCK_K, graph_size - k0);
        barrier(CLK_LOCAL_MEM_FENCE);
        load_tile(ks, vs, at.k_head, at.v_head, ROW_STRIDE, k0, in_tile);
        barrier(CLK_LOCAL_MEM_FENCE);
        const float tile_max = tile_scores(s, qr, ks, in_tile, keep, mask_kind, keep_stride,
                                           at.batch, at.head, at.row, k0);
        const float m_new = isnan(tile_max) ? NAN : fmax(m, tile_max); /* NaN: l and acc NaN */
        if (m_new != -INFINITY) {
            l *= SOFTMAX_EXP(m - m_new);
            for (int r = 0; r < BLOCK_K; r++)
                l += SOFTMAX_EXP(s[r] - m_new);
            m = m_new;
        }
    }
    /* Pass 2: the weights, stored (through local memory, so that each row's run of BLOCK_K
     * weights is written by adjacent work-items), then dropped out and applied to V. */
    __local float ps[BLOCK_Q][BLOCK_K + 1];
    CHECK_LOCAL_BYTES(sizeof ks + sizeof vs + sizeof ps);
    const int lid = get_local_id(0), q0 = get_group_id(0) * BLOCK_Q;
    if (!at.finite) m = NAN; /* every weight NaN */
    const float inv = softmax_inverse(l);
    const float keep_scale = dropout ? 1.0f / (1.0f - dropout_p) : 1.0f;
    for (int k0 = 0; k0 < graph_size; k0 += BLOCK_K) {
        const int in_tile = min(BLOCK_K, graph_size - k0);
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile, and ps, are no longer read */
        load_tile(ks, vs, at.k_head, at.v_head, ROW_STRIDE, k0, in_tile);
        barrier(CLK_LOCAL_MEM_FENCE);
        tile_scores(s, qr, ks, in_tile, keep, mask_kind, keep_stride, at.batch, at.head, at.row,
                    k0);
        for (int r = 0; r < BLOCK_K; r++) {
            float p = m == -INFINITY ? 0.0f : SOFTMAX_EXP(s[r] - m) * inv;
            ps[lid][r] = p;
            if (dropout && r < in_tile)
                p = dropout_keeps(at.weight_row + k0 + r, dropout_p, dropout_seed, dropout_offset)
                        ? p * keep_scale
                        : 0.0f;
            for (int c = 0; c < DV; c++)
                acc[c] = MAC((vec)(p), vs[r][c], acc[c]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = lid; i < BLOCK_Q * in_tile; i += BLOCK_Q) {
            int qq = i / in_tile, r = i - qq * in_tile;
            if (q0 + qq < n_query)
                weights[((size_t)at.bh * n_query + q0 + qq) * graph_size + k0 + r] = ps[qq][r];
        }
    }
    if (!at.active) return;
    __global stored *out_row = HEAD_ROWS(out, at.batch, at.head, n_query) + at.query * ROW_STRIDE;
    for (int c = 0; c < DV; c++)
        STORE(acc[c], c, out_row);
}
#endif
