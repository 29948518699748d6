/* Moving projections between the row layout of a plain GEMM (CLBlast's) and the per-head layout
 * the attention kernels read. Needs common.cl and project_common.cl. */
#if !defined(HEAD_DIM)
#error "layout.cl is built with -D HEAD_DIM"
#endif
#if STORAGE != 0 /* the plan takes other kernels for half storage */
#error "layout.cl reads and writes float32 only"
#endif

/* src [rows][width] plus bias[col0 + col] (when has_bias), scattered into y0..y2 as
 * project_to_heads would write them. Grid: (width, rows). */
__kernel void rows_to_heads(__global const float *src, int width, __global const float *bias,
                            int has_bias, int col0, __global float *y0, __global float *y1,
                            __global float *y2, int rows, int out_width, int seq_len) {
    const int col = get_global_id(0), row = get_global_id(1);
    if (col >= width || row >= rows) return;
    float value = src[(size_t)row * width + col];
    if (has_bias) value += bias[col0 + col];
    store_output(y0, y1, y2, 1, row, col, out_width, seq_len, value);
}

/* The attention's context [batch][n_heads][seq_len][HEAD_DIM] as rows [rows][width].
 * Grid: (width, rows). */
__kernel void heads_to_rows(__global const float *src, __global float *dst, int rows, int width,
                            int seq_len) {
    const int col = get_global_id(0), row = get_global_id(1);
    if (col >= width || row >= rows) return;
    dst[(size_t)row * width + col] = src[element_offset(1, row, col, seq_len, width)];
}

/* y[row][col] += bias[col]. Grid: (width, rows). */
__kernel void add_bias(__global float *y, __global const float *bias, int rows, int width) {
    const int col = get_global_id(0), row = get_global_id(1);
    if (col < width && row < rows) y[(size_t)row * width + col] += bias[col];
}
