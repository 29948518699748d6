/* Flash attention: softmax(Q K^T * scale, masked) V for one (batch, head) and BLOCK_Q queries per
 * work-group, one query per work-item, without ever storing a row of scores. K and V pass through
 * local memory BLOCK_K rows at a time; each work-item keeps its running max m, running sum l and
 * the unnormalised output in registers and rescales them when m grows (the online softmax).
 * A query whose keys are all masked keeps m = -inf and l = 0 and writes 0.
 * Inputs q, k, v: [batch][n_heads][len][HEAD_DIM]; out: [batch][n_heads][n_query][HEAD_DIM].
 * Work-group: BLOCK_Q work-items; grid: (ceil(n_query / BLOCK_Q) * BLOCK_Q, batch * n_heads). */

__kernel void flash_attention(__global const float *q, __global const float *k,
                              __global const float *v, __global const uchar *keep, int has_keep,
                              int4 keep_stride, __global float *out, int n_heads, int n_query,
                              int graph_size, float scale, float dropout_p, ulong dropout_seed,
                              ulong dropout_offset) {
    __local float ks[BLOCK_K][HEAD_DIM], vs[BLOCK_K][HEAD_DIM];
    const int lid = get_local_id(0);
    const int query = get_group_id(0) * BLOCK_Q + lid;
    const int bh = get_group_id(1), batch = bh / n_heads, head = bh - batch * n_heads;
    const int active = query < n_query;
    const int row = active ? query : n_query - 1; /* idle work-items read a valid row */
    const int dropout = dropout_p > 0.0f;

    float qr[HEAD_DIM], acc[HEAD_DIM];
    __global const float *q_row = q + ((size_t)bh * n_query + row) * HEAD_DIM;
    for (int c = 0; c < HEAD_DIM; c++) {
        qr[c] = q_row[c] * scale;
        acc[c] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    __global const float *k_head = k + (size_t)bh * graph_size * HEAD_DIM;
    __global const float *v_head = v + (size_t)bh * graph_size * HEAD_DIM;
    const ulong weight_row = ((ulong)bh * n_query + row) * graph_size;

    for (int k0 = 0; k0 < graph_size; k0 += BLOCK_K) {
        const int in_tile = min(BLOCK_K, graph_size - k0);
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is no longer read */
        for (int i = lid; i < BLOCK_K * HEAD_DIM; i += BLOCK_Q) {
            int r = i / HEAD_DIM, c = i - r * HEAD_DIM;
            size_t at = (size_t)(k0 + r) * HEAD_DIM + c;
            ks[r][c] = r < in_tile ? k_head[at] : 0.0f;
            vs[r][c] = r < in_tile ? v_head[at] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        float s[BLOCK_K];
        float tile_max = -INFINITY;
        for (int r = 0; r < BLOCK_K; r++) {
            float dot = 0.0f;
            for (int c = 0; c < HEAD_DIM; c++) dot = MAC(qr[c], ks[r][c], dot);
            int allowed = r < in_tile &&
                          may_attend(keep, has_keep, keep_stride, batch, head, row, k0 + r);
            s[r] = allowed ? dot : -INFINITY;
            tile_max = fmax(tile_max, s[r]);
        }
        const float m_new = fmax(m, tile_max);
        if (m_new != -INFINITY) { /* else nothing attendable yet, and exp(-inf - -inf) is NaN */
            const float correction = exp(m - m_new);
            l *= correction;
            for (int c = 0; c < HEAD_DIM; c++) acc[c] *= correction;
            for (int r = 0; r < in_tile; r++) {
                float p = exp(s[r] - m_new);
                l += p;
                if (dropout && !dropout_keeps(weight_row + k0 + r, dropout_p, dropout_seed,
                                              dropout_offset))
                    p = 0.0f;
                for (int c = 0; c < HEAD_DIM; c++) acc[c] = MAC(p, vs[r][c], acc[c]);
            }
            m = m_new;
        }
    }

    if (!active) return;
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
    if (dropout) inv /= 1.0f - dropout_p;
    __global float *out_row = out + ((size_t)bh * n_query + query) * HEAD_DIM;
    for (int c = 0; c < HEAD_DIM; c++) out_row[c] = acc[c] * inv;
}
