/* The manual path (store_attn_weights): the full [batch][n_heads][n_query][graph_size] weights are
 * computed, kept for last_attention, and multiplied with V.
 *   attention_scores:  weights = Q K^T * scale, masked entries -inf
 *   attention_softmax: each row normalised in place; a row with no attendable key becomes 0
 *   attention_dropout: dropped = weights * keep / (1 - p), when training with p > 0
 *   weights_times_values: out = weights V (or dropped V)
 * Q, K, V and out use the per-head layout [batch][n_heads][len][HEAD_DIM]. */

/* Grid: (graph_size, n_query, batch * n_heads). */
__kernel void attention_scores(__global const float *q, __global const float *k,
                               __global const uchar *keep, int has_keep, int4 keep_stride,
                               __global float *weights, int n_heads, int n_query, int graph_size,
                               float scale) {
    const int key = get_global_id(0), query = get_global_id(1), bh = get_global_id(2);
    if (key >= graph_size || query >= n_query) return;
    const int batch = bh / n_heads, head = bh - batch * n_heads;
    __global const float *q_row = q + ((size_t)bh * n_query + query) * HEAD_DIM;
    __global const float *k_row = k + ((size_t)bh * graph_size + key) * HEAD_DIM;
    float dot = 0.0f;
    for (int c = 0; c < HEAD_DIM; c++) dot = MAC(q_row[c] * scale, k_row[c], dot);
    int allowed = may_attend(keep, has_keep, keep_stride, batch, head, query, key);
    weights[((size_t)bh * n_query + query) * graph_size + key] = allowed ? dot : -INFINITY;
}

/* One work-group of SOFTMAX_GROUP (a power of two) work-items per row; grid: rows * group. */
__kernel void attention_softmax(__global float *weights, int graph_size) {
    __local float partial[SOFTMAX_GROUP];
    const int lid = get_local_id(0);
    __global float *row = weights + (size_t)get_group_id(0) * graph_size;

    float m = -INFINITY;
    for (int j = lid; j < graph_size; j += SOFTMAX_GROUP) m = fmax(m, row[j]);
    partial[lid] = m;
    for (int span = SOFTMAX_GROUP / 2; span > 0; span /= 2) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < span) partial[lid] = fmax(partial[lid], partial[lid + span]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    m = partial[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* everyone has read the max before partial is reused */

    float sum = 0.0f;
    if (m != -INFINITY)
        for (int j = lid; j < graph_size; j += SOFTMAX_GROUP) sum += exp(row[j] - m);
    partial[lid] = sum;
    for (int span = SOFTMAX_GROUP / 2; span > 0; span /= 2) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < span) partial[lid] += partial[lid + span];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    sum = partial[0];

    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int j = lid; j < graph_size; j += SOFTMAX_GROUP)
        row[j] = m == -INFINITY ? 0.0f : exp(row[j] - m) * inv;
}

/* Grid: count (all weights). */
__kernel void attention_dropout(__global const float *weights, __global float *dropped, ulong count,
                                float p, ulong seed, ulong offset) {
    const ulong i = get_global_id(0);
    if (i >= count) return;
    dropped[i] = dropout_keeps(i, p, seed, offset) ? weights[i] / (1.0f - p) : 0.0f;
}

/* Grid: (HEAD_DIM, n_query, batch * n_heads). */
__kernel void weights_times_values(__global const float *weights, __global const float *v,
                                   __global float *out, int n_query, int graph_size) {
    const int c = get_global_id(0), query = get_global_id(1), bh = get_global_id(2);
    if (c >= HEAD_DIM || query >= n_query) return;
    __global const float *w_row = weights + ((size_t)bh * n_query + query) * graph_size;
    __global const float *v_head = v + (size_t)bh * graph_size * HEAD_DIM;
    float sum = 0.0f;
    for (int j = 0; j < graph_size; j++) sum = MAC(w_row[j], v_head[(size_t)j * HEAD_DIM + c], sum);
    out[((size_t)bh * n_query + query) * HEAD_DIM + c] = sum;
}
