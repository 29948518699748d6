/* What both projection kernels share. A projection is an nn.Linear, y = x W^T + b, computed as
 * x times w_t, the transposed weight [in_features][ld_w], from column col0 on. Its out_features
 * columns feed up to three outputs of out_width columns each (y0, y1, y2: one fused launch makes
 * Q, K and V). Rows are (batch, position) pairs; either side may use the per-head layout
 * [batch][n_heads][seq_len][HEAD_DIM] instead of [rows][features]: the input projections write
 * it, the output projection reads the attention's context in it. */

inline size_t element_offset(int heads_layout, int row, int col, int seq_len, int features) {
    if (!heads_layout) return (size_t)row * features + col;
    int b = row / seq_len, n = row - b * seq_len;
    int head = col / HEAD_DIM, j = col - head * HEAD_DIM;
    return ((size_t)(b * (features / HEAD_DIM) + head) * seq_len + n) * HEAD_DIM + j;
}

inline void store_output(__global float *y0, __global float *y1, __global float *y2, int y_heads,
                         int row, int col, int out_width, int seq_len, float value) {
    int which = col / out_width, c = col - which * out_width;
    __global float *y = which == 0 ? y0 : which == 1 ? y1 : y2;
    y[element_offset(y_heads, row, c, seq_len, out_width)] = value;
}

#define PROJECTION_ARGS                                                                            \
    __global const float *x, __global const float *w_t, int ld_w, int col0,                        \
        __global const float *bias, int has_bias, __global float *y0, __global float *y1,          \
        __global float *y2, int rows, int in_features, int out_features, int out_width,            \
        int seq_len
#define PROJECTION_PASS                                                                            \
    x, w_t, ld_w, col0, bias, has_bias, y0, y1, y2, rows, in_features, out_features, out_width,    \
        seq_len
