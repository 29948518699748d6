/* The layer's projections, nn.Linear: y = x W^T + b, with W [out_features][in_features].
 * Rows are (batch, position) pairs. Either side may use the per-head layout
 * [batch][n_heads][seq_len][HEAD_DIM] instead of [rows][features]: the input projections write it
 * (project_to_heads), the output projection reads the attention's context in it (project_to_rows).
 *
 * A work-group computes a TILE_M x TILE_N block of y through TILE_K-wide slices of x and W staged in
 * local memory; each work-item keeps a WPT_M x WPT_N block of sums in registers. Ragged edges load
 * zeros and skip their stores. Work-group: (TILE_N / WPT_N, TILE_M / WPT_M). */

#define GROUP_X (TILE_N / WPT_N)
#define GROUP_Y (TILE_M / WPT_M)

inline size_t element_offset(int heads_layout, int row, int col, int seq_len, int features) {
    if (!heads_layout) return (size_t)row * features + col;
    int b = row / seq_len, n = row - b * seq_len;
    int head = col / HEAD_DIM, j = col - head * HEAD_DIM;
    return ((size_t)(b * (features / HEAD_DIM) + head) * seq_len + n) * HEAD_DIM + j;
}

inline void linear_tile(__global const float *x, int x_heads, __global const float *w,
                        __global const float *bias, int has_bias, __global float *y, int y_heads,
                        int rows, int in_features, int out_features, int seq_len,
                        __local float *xs, __local float *ws) {
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int tid = ty * GROUP_X + tx;
    const int m0 = get_group_id(1) * TILE_M, n0 = get_group_id(0) * TILE_N;
    float acc[WPT_M][WPT_N];
    for (int i = 0; i < WPT_M; i++)
        for (int j = 0; j < WPT_N; j++) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < in_features; k0 += TILE_K) {
        for (int i = tid; i < TILE_M * TILE_K; i += GROUP_X * GROUP_Y) {
            int r = i / TILE_K, c = i - r * TILE_K, row = m0 + r, col = k0 + c;
            xs[c * (TILE_M + 1) + r] =
                row < rows && col < in_features
                    ? x[element_offset(x_heads, row, col, seq_len, in_features)]
                    : 0.0f;
        }
        for (int i = tid; i < TILE_N * TILE_K; i += GROUP_X * GROUP_Y) {
            int r = i / TILE_K, c = i - r * TILE_K, row = n0 + r, col = k0 + c;
            ws[c * (TILE_N + 1) + r] =
                row < out_features && col < in_features ? w[(size_t)row * in_features + col] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int c = 0; c < TILE_K; c++) {
            float a[WPT_M], b[WPT_N];
            for (int i = 0; i < WPT_M; i++) a[i] = xs[c * (TILE_M + 1) + ty + i * GROUP_Y];
            for (int j = 0; j < WPT_N; j++) b[j] = ws[c * (TILE_N + 1) + tx + j * GROUP_X];
            for (int i = 0; i < WPT_M; i++)
                for (int j = 0; j < WPT_N; j++) acc[i][j] = MAC(a[i], b[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    for (int i = 0; i < WPT_M; i++) {
        int row = m0 + ty + i * GROUP_Y;
        if (row >= rows) continue;
        for (int j = 0; j < WPT_N; j++) {
            int col = n0 + tx + j * GROUP_X;
            if (col >= out_features) continue;
            y[element_offset(y_heads, row, col, seq_len, out_features)] =
                has_bias ? acc[i][j] + bias[col] : acc[i][j];
        }
    }
}

__kernel void project_to_heads(__global const float *x, __global const float *w,
                               __global const float *bias, int has_bias, __global float *y,
                               int rows, int in_features, int out_features, int seq_len) {
    __local float xs[TILE_K * (TILE_M + 1)], ws[TILE_K * (TILE_N + 1)];
    linear_tile(x, 0, w, bias, has_bias, y, 1, rows, in_features, out_features, seq_len, xs, ws);
}

__kernel void project_to_rows(__global const float *x, __global const float *w,
                              __global const float *bias, int has_bias, __global float *y,
                              int rows, int in_features, int out_features, int seq_len) {
    __local float xs[TILE_K * (TILE_M + 1)], ws[TILE_K * (TILE_N + 1)];
    linear_tile(x, 1, w, bias, has_bias, y, 0, rows, in_features, out_features, seq_len, xs, ws);
}
