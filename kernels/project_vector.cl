/* Projections for CPUs (and any device without fast local memory): each work-item computes
 * ROWS_PER_ITEM rows x 16 columns of y as float16 vectors, streaming one row of w_t per k, with
 * no local memory and no barrier. A column block past the last full 16 falls back to scalars.
 * Grid: (ceil(out_features / 16), ceil(rows / ROWS_PER_ITEM)). Needs common.cl and
 * project_common.cl. */

inline void project_block(PROJECTION_ARGS, int x_heads, int y_heads) {
    const int n0 = get_global_id(0) * 16, m0 = get_global_id(1) * ROWS_PER_ITEM;
    if (n0 >= out_features || m0 >= rows) return;
    size_t x_at[ROWS_PER_ITEM]; /* where each row's element k is: x_at + k (rows) or per k */
    int row_of[ROWS_PER_ITEM];
    for (int r = 0; r < ROWS_PER_ITEM; r++) row_of[r] = min(m0 + r, rows - 1);

    if (n0 + 16 <= out_features) {
        float16 acc[ROWS_PER_ITEM];
        for (int r = 0; r < ROWS_PER_ITEM; r++) acc[r] = (float16)(0.0f);
        if (!x_heads) {
            for (int r = 0; r < ROWS_PER_ITEM; r++) x_at[r] = (size_t)row_of[r] * in_features;
            for (int k = 0; k < in_features; k++) {
                float16 w = vload16(0, w_t + (size_t)k * ld_w + col0 + n0);
                for (int r = 0; r < ROWS_PER_ITEM; r++)
                    acc[r] = MAC((float16)(x[x_at[r] + k]), w, acc[r]);
            }
        } else {
            for (int k = 0; k < in_features; k++) {
                float16 w = vload16(0, w_t + (size_t)k * ld_w + col0 + n0);
                for (int r = 0; r < ROWS_PER_ITEM; r++) {
                    float xv = x[element_offset(1, row_of[r], k, seq_len, in_features)];
                    acc[r] = MAC((float16)(xv), w, acc[r]);
                }
            }
        }
        float16 b = has_bias ? vload16(0, bias + col0 + n0) : (float16)(0.0f);
        __global float *y_of[16]; /* offsets once per column and once per row */
        size_t col_part[16];
        for (int j = 0; j < 16; j++)
            y_of[j] = output_of(y0, y1, y2, n0 + j, out_width, y_heads, seq_len, &col_part[j]);
        for (int r = 0; r < ROWS_PER_ITEM && m0 + r < rows; r++) {
            float out[16];
            vstore16(acc[r] + b, 0, out);
            size_t row_part = row_offset(y_heads, m0 + r, seq_len, out_width);
            for (int j = 0; j < 16; j++) y_of[j][row_part + col_part[j]] = out[j];
        }
        return;
    }
    for (int r = 0; r < ROWS_PER_ITEM && m0 + r < rows; r++)
        for (int col = n0; col < out_features; col++) {
            float sum = 0.0f;
            for (int k = 0; k < in_features; k++)
                sum = MAC(x[element_offset(x_heads, m0 + r, k, seq_len, in_features)],
                          w_t[(size_t)k * ld_w + col0 + col], sum);
            store_output(y0, y1, y2, y_heads, m0 + r, col, out_width, seq_len,
                         has_bias ? sum + bias[col0 + col] : sum);
        }
}

__kernel void project_to_heads(PROJECTION_ARGS) {
    project_block(PROJECTION_PASS, 0, 1);
}

__kernel void project_to_rows(PROJECTION_ARGS) {
    project_block(PROJECTION_PASS, 1, 0);
}
