/* What both projection kernels share. A projection is an nn.Linear, y = x W^T + b, computed as
 * x times w_t, the transposed weight [in_features][ld_w], from column col0 on. Its out_features
 * columns feed up to three outputs of out_width columns each (y0, y1, y2: one fused launch makes
 * Q, K and V). Rows are (batch, position) pairs; either side may use the per-head layout
 * [batch][n_heads][seq_len][HEAD_DIM] instead of [rows][features]: the input projections write
 * it, the output projection reads the attention's context in it. */

/* An element's offset split into a row part and a column part, so that a work-item computes each
 * once per row and once per column rather than once per element. In the per-head layout,
 * ((b * n_heads + head) * seq_len + n) * HEAD_DIM + j = [b * seq_len * features + n * HEAD_DIM]
 * + [head * seq_len * HEAD_DIM + j]. */
inline size_t row_offset(int heads_layout, int row, int seq_len, int features) {
    if (!heads_layout) return (size_t)row * features;
    int b = row / seq_len, n = row - b * seq_len;
    return (size_t)b * seq_len * features + (size_t)n * HEAD_DIM;
}

inline size_t col_offset(int heads_layout, int col, int seq_len) {
    if (!heads_layout) return (size_t)col;
    int head = col / HEAD_DIM, j = col - head * HEAD_DIM;
    return (size_t)head * seq_len * HEAD_DIM + j;
}

inline size_t element_offset(int heads_layout, int row, int col, int seq_len, int features) {
    return row_offset(heads_layout, row, seq_len, features) +
           col_offset(heads_layout, col, seq_len);
}

/* Output column col (of out_features = up to 3 * out_width) goes to y0, y1 or y2: which output,
 * and the column part of its offset there. */
inline __global stored *output_of(__global stored *y0, __global stored *y1, __global stored *y2,
                                  int col, int out_width, int y_heads, int seq_len,
                                  size_t *col_part) {
    int which = col / out_width, c = col - which * out_width;
    *col_part = col_offset(y_heads, c, seq_len);
    return which == 0 ? y0 : which == 1 ? y1 : y2;
}

inline void store_output(__global stored *y0, __global stored *y1, __global stored *y2, int y_heads,
                         int row, int col, int out_width, int seq_len, float value) {
    size_t col_part;
    __global stored *y = output_of(y0, y1, y2, col, out_width, y_heads, seq_len, &col_part);
    WRITE(value, y, row_offset(y_heads, row, seq_len, out_width) + col_part);
}

/* For the tiled kernels: each tile row's offset in x, once per tile (in the per-head layout a
 * row's offset takes a division), -1 past the last row. A barrier must follow before it is read. */
inline void fill_row_offsets(__local long *x_rows, int x_heads, int m0, int rows, int seq_len,
                             int in_features, int tid, int tile_m, int threads) {
    for (int r = tid; r < tile_m; r += threads)
        x_rows[r] = m0 + r < rows ? (long)row_offset(x_heads, m0 + r, seq_len, in_features) : -1;
}

/* For the tiled kernels: global memory is read in runs of RUN floats, along k in x and along the
 * columns in w_t. The host passes VECTOR_RUNS when that is safe: in_features, ld_w, col0,
 * out_width, HEAD_DIM, TILE_K and TILE_N all multiples of 4, so that a run is 16-byte aligned and
 * never crosses a head, an edge or an output. Then runs are float4, one wide access instead of
 * four. */
#if VECTOR_RUNS
#define RUN 4
typedef float4 run_t;
#define ZERO_RUN          ((float4)(0.0f))
#define LOAD_RUN(p)       READ4((p), 0)
#define RUN_ELEMENT(v, e) ((e) == 0 ? (v).s0 : (e) == 1 ? (v).s1 : (e) == 2 ? (v).s2 : (v).s3)
#else
#define RUN               1
typedef float run_t;
#define ZERO_RUN          0.0f
#define LOAD_RUN(p)       READ((p), 0)
#define RUN_ELEMENT(v, e) (v)
#endif

/* For the tiled kernels: this work-item's share (run tid + t * threads, row-major) of the
 * tile_m x tile_k slice of x at (x_rows, k0) and the tile_k x tile_n slice of w_t at (k0, n0),
 * zeros past the edges. All loads are issued before any is used (fixed trip counts), so that
 * their latencies overlap. */
inline void fetch_runs(__global const stored *x, __local const long *x_rows, int x_heads,
                       __global const stored *w_t, int ld_w, int col0, int in_features,
                       int out_features, int seq_len, int n0, int k0, int tid, int tile_m,
                       int tile_n, int tile_k, int threads, int loads_x, int loads_w, run_t *x_next,
                       run_t *w_next) {
    const int x_per_row = tile_k / RUN, w_per_row = tile_n / RUN;
#pragma unroll
    for (int t = 0; t < loads_x; t++) {
        int i = tid + t * threads, r = i / x_per_row, k = k0 + (i - r * x_per_row) * RUN;
        long row = i < tile_m * x_per_row ? x_rows[r] : -1;
        x_next[t] = row >= 0 && k < in_features
                        ? LOAD_RUN(x + row + col_offset(x_heads, k, seq_len))
                        : ZERO_RUN;
    }
#pragma unroll
    for (int t = 0; t < loads_w; t++) {
        int i = tid + t * threads, r = i / w_per_row, col = n0 + (i - r * w_per_row) * RUN;
        int k = k0 + r;
        w_next[t] = i < tile_k * w_per_row && k < in_features && col < out_features
                        ? LOAD_RUN(w_t + (size_t)k * ld_w + col0 + col)
                        : ZERO_RUN;
    }
}

#define PROJECTION_ARGS                                                                            \
    __global const stored *x, __global const stored *w_t, int ld_w, int col0,                      \
        __global const stored *bias, int has_bias, __global stored *y0, __global stored *y1,       \
        __global stored *y2, int rows, int in_features, int out_features, int out_width,           \
        int seq_len
#define PROJECTION_PASS                                                                            \
    x, w_t, ld_w, col0, bias, has_bias, y0, y1, y2, rows, in_features, out_features, out_width,    \
        seq_len
