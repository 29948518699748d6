/* Attention for a few queries against many keys (decoding: one query per step): the keys are cut
 * into chunks of CHUNK, one work-item per (query row, chunk), and a merge kernel combines the
 * chunks. No local memory, no barrier.
 *   decode_partial: for its chunk, the running max m, sum l and unnormalised output acc, written
 *     to partial[row][chunk] = {m, l, acc[0..HEAD_DIM)}.
 *   decode_merge: out = sum_c acc_c e^(m_c - m) / sum_c l_c e^(m_c - m), m the max of the m_c;
 *     rows with no attendable key (every m_c = -inf) give 0.
 * Layouts and storage as in attention_tiled.cl; the partials are float32.
 * Grids: (chunks, batch * n_heads * n_query) and (batch * n_heads * n_query). */
#if !defined(HEAD_DIM) || !defined(CHUNK)
#error "attention_decode.cl is built with -D HEAD_DIM and CHUNK"
#endif

#define PARTIAL (HEAD_DIM + 2)

__kernel void decode_partial(ATTENTION_ARGS, __global float *partial, int chunks) {
    const int chunk = get_global_id(0), row = get_global_id(1); /* row = bh * n_query + query */
    if (chunk >= chunks) return;
    const int bh = row / n_query, query = row - bh * n_query;
    const int batch = bh / n_heads, head = bh - batch * n_heads;
    const int dropout = dropout_p > 0.0f;
    __global const stored *q_row = HEAD_ROWS(q, batch, head, n_query) + query * ROW_STRIDE;
    __global const stored *k_head = HEAD_ROWS(k, batch, head, graph_size);
    __global const stored *v_head = HEAD_ROWS(v, batch, head, graph_size);
    float qr[HEAD_DIM], acc[HEAD_DIM];
    for (int c = 0; c < HEAD_DIM; c++) {
        qr[c] = READ(q_row, c) * scale;
        acc[c] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    const int end = min(graph_size, (chunk + 1) * CHUNK);
    for (int key = chunk * CHUNK; key < end; key++) {
        if (!may_attend(keep, mask_kind, keep_stride, batch, head, query, key)) continue;
        __global const stored *k_row = k_head + (size_t)key * ROW_STRIDE;
        float s = 0.0f;
        for (int c = 0; c < HEAD_DIM; c++)
            s = MAC(qr[c], READ(k_row, c), s);
        const float m_new = fmax(m, s);
        const float correction = SOFTMAX_EXP(m - m_new); /* m_new is finite here */
        float p = SOFTMAX_EXP(s - m_new);
        l = l * correction + p;
        if (dropout &&
            !dropout_keeps((ulong)row * graph_size + key, dropout_p, dropout_seed, dropout_offset))
            p = 0.0f;
        __global const stored *v_row = v_head + (size_t)key * ROW_STRIDE;
        for (int c = 0; c < HEAD_DIM; c++)
            acc[c] = MAC(p, READ(v_row, c), acc[c] * correction);
        m = m_new;
    }
    int finite = 1;
    for (int c = 0; c < HEAD_DIM; c++)
        finite &= isfinite(qr[c]);
    __global float *to = partial + ((size_t)row * chunks + chunk) * PARTIAL;
    /* A query row that is not finite, or a NaN score (l NaN): NaN out, as in PyTorch; the merge
     * would pass over a NaN in l where m is -inf. */
    to[0] = finite && !isnan(l) ? m : NAN;
    to[1] = l;
    for (int c = 0; c < HEAD_DIM; c++)
        to[2 + c] = acc[c];
}

__kernel void decode_merge(__global const float *partial, int chunks, __global stored *out,
                           float dropout_p, int n_heads, int n_query) {
    const int row = get_global_id(0), bh = row / n_query, query = row - bh * n_query;
    const int batch = bh / n_heads, head = bh - batch * n_heads;
    __global const float *from = partial + (size_t)row * chunks * PARTIAL;
    float m = -INFINITY;
    int finite = 1;
    for (int i = 0; i < chunks; i++) {
        m = fmax(m, from[(size_t)i * PARTIAL]);
        finite &= !isnan(from[(size_t)i * PARTIAL]);
    }
    float l = 0.0f, acc[HEAD_DIM];
    for (int c = 0; c < HEAD_DIM; c++)
        acc[c] = 0.0f;
    if (m != -INFINITY) {
        for (int i = 0; i < chunks; i++) {
            __global const float *p = from + (size_t)i * PARTIAL;
            if (p[0] == -INFINITY) continue;
            const float w = SOFTMAX_EXP(p[0] - m);
            l = MAC(p[1], w, l);
            for (int c = 0; c < HEAD_DIM; c++)
                acc[c] = MAC(p[2 + c], w, acc[c]);
        }
    }
    float inv = softmax_inverse(l);
    if (!finite) inv = NAN;
    if (dropout_p > 0.0f) inv /= 1.0f - dropout_p;
    __global stored *out_row = HEAD_ROWS(out, batch, head, n_query) + query * ROW_STRIDE;
    for (int c = 0; c < HEAD_DIM; c++)
        WRITE(acc[c] * inv, out_row, c);
}
