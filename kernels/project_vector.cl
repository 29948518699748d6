/* Projections for CPUs (and any device without fast local memory): each work-item computes
 * ROWS_PER_ITEM rows x (16 * VECTORS) columns of y as float16 vectors, streaming one row of w_t
 * per k, with no local memory and no barrier. Each x element, broadcast once, feeds VECTORS
 * multiply-adds. A column block past the last full one falls back to scalars. With X_RUNS (half
 * storage, in_features and HEAD_DIM multiples of 4) x is read four k's at a time.
 * Grid: (ceil(out_features / (16 * VECTORS)), ceil(rows / ROWS_PER_ITEM)) or more: work-items
 * past the end return. Needs common.cl and project_common.cl. */
#if !defined(HEAD_DIM) || !defined(ROWS_PER_ITEM) || !defined(VECTORS) || !defined(X_RUNS)
#error "project_vector.cl is built with -D HEAD_DIM, ROWS_PER_ITEM, VECTORS and X_RUNS"
#endif

#define COLS (16 * VECTORS)

inline void project_block(PROJECTION_ARGS, int x_heads, int y_heads) {
    const int n0 = get_global_id(0) * COLS, m0 = get_global_id(1) * ROWS_PER_ITEM;
    if (n0 >= out_features || m0 >= rows) return;
    if (n0 + COLS <= out_features) {
        size_t x_row[ROWS_PER_ITEM]; /* row parts of x's offsets (rows past the end: the last) */
#pragma unroll
        for (int r = 0; r < ROWS_PER_ITEM; r++)
            x_row[r] = row_offset(x_heads, min(m0 + r, rows - 1), seq_len, in_features);
        float16 acc[ROWS_PER_ITEM][VECTORS];
#pragma unroll
        for (int r = 0; r < ROWS_PER_ITEM; r++)
#pragma unroll
            for (int v = 0; v < VECTORS; v++)
                acc[r][v] = (float16)(0.0f);
#if X_RUNS
        /* Four k's a step: each row's four x values are one READ4, converted together (a 16-bit
         * type's x converted one by one cost more than its multiply-adds). in_features and
         * HEAD_DIM are multiples of 4: a run stays within one head. */
        for (int k = 0; k < in_features; k += 4) {
            float16 w[4][VECTORS];
#pragma unroll
            for (int e = 0; e < 4; e++)
#pragma unroll
                for (int v = 0; v < VECTORS; v++)
                    w[e][v] = READ16(w_t + (size_t)(k + e) * ld_w + col0 + n0, 16 * v);
            const size_t x_col = col_offset(x_heads, k, seq_len);
#pragma unroll
            for (int r = 0; r < ROWS_PER_ITEM; r++) {
                const float4 xr = READ4(x, x_row[r] + x_col);
                const float xe[4] = {xr.s0, xr.s1, xr.s2, xr.s3};
#pragma unroll
                for (int e = 0; e < 4; e++)
#pragma unroll
                    for (int v = 0; v < VECTORS; v++)
                        acc[r][v] = MAC((float16)(xe[e]), w[e][v], acc[r][v]);
            }
        }
#else
        for (int k = 0; k < in_features; k++) {
            __global const stored *w_row = w_t + (size_t)k * ld_w + col0 + n0;
            float16 w[VECTORS];
#pragma unroll
            for (int v = 0; v < VECTORS; v++)
                w[v] = READ16(w_row, 16 * v);
            const size_t x_col = col_offset(x_heads, k, seq_len);
#pragma unroll
            for (int r = 0; r < ROWS_PER_ITEM; r++) {
                const float16 xv = (float16)(READ(x, x_row[r] + x_col));
#pragma unroll
                for (int v = 0; v < VECTORS; v++)
                    acc[r][v] = MAC(xv, w[v], acc[r][v]);
            }
        }
#endif
        /* Each 16-column vector goes to one output; where its columns are also adjacent there
         * (always in the rows layout, and within one head in the per-head layout), each row's
         * 16 results are one vector store. */
#pragma unroll
        for (int v = 0; v < VECTORS; v++) {
            const int c0 = n0 + 16 * v;
            size_t part0, part_last;
            __global stored *y = output_of(y0, y1, y2, c0, out_width, y_heads, seq_len, &part0);
            __global stored *y_last =
                output_of(y0, y1, y2, c0 + 15, out_width, y_heads, seq_len, &part_last);
            const float16 b = has_bias ? READ16(bias, col0 + c0) : (float16)(0.0f);
            if (y_last == y && part_last == part0 + 15) {
                for (int r = 0; r < ROWS_PER_ITEM && m0 + r < rows; r++)
                    WRITE16(acc[r][v] + b, y + row_offset(y_heads, m0 + r, seq_len, out_width),
                            part0);
                continue;
            }
            float bias_of[16];
            vstore16(b, 0, bias_of);
            for (int r = 0; r < ROWS_PER_ITEM && m0 + r < rows; r++) {
                float out[16];
                vstore16(acc[r][v], 0, out);
                for (int j = 0; j < 16; j++)
                    store_output(y0, y1, y2, y_heads, m0 + r, c0 + j, out_width, seq_len,
                                 out[j] + bias_of[j]);
            }
        }
        return;
    }
    for (int r = 0; r < ROWS_PER_ITEM && m0 + r < rows; r++)
        for (int col = n0; col < out_features; col++) {
            float sum = 0.0f;
            for (int k = 0; k < in_features; k++)
                sum = MAC(READ(x, element_offset(x_heads, m0 + r, k, seq_len, in_features)),
                          READ(w_t, (size_t)k * ld_w + col0 + col), sum);
            store_output(y0, y1, y2, y_heads, m0 + r, col, out_width, seq_len,
                         has_bias ? sum + READ(bias, col0 + col) : sum);
        }
}

__kernel void project_to_heads(PROJECTION_ARGS) {
    project_block(PROJECTION_PASS, 0, 1);
}

__kernel void project_to_rows(PROJECTION_ARGS) {
    project_block(PROJECTION_PASS, 1, 0);
}
