/* Projections on tensor cores, float32 accurate through 3xTF32 (mma.cl).
 *
 * A work-group of WARPS_M x WARPS_N warps computes a TILE_M x TILE_N block of y through TILE_K-deep
 * slices of x and w_t in local memory (the next slices fetched into registers meanwhile); a warp
 * owns WM x WN of it as (WM / 16) x (WN / 8) mma tiles.
 * Work-group: (32 * WARPS_M * WARPS_N, 1). Needs common.cl, mma.cl and project_common.cl. */

#define THREADS   (32 * WARPS_M * WARPS_N)
#define TILE_M    (WARPS_M * WM)
#define TILE_N    (WARPS_N * WN)
#define M_TILES   (WM / 16)
#define N_TILES   (WN / 8)
#define XS_STRIDE (TILE_K + 4) /* lanes (g, t) read rows g, columns t: 32 different banks */
#define WS_STRIDE (TILE_N + 8) /* lanes read rows t, columns g: 32 different banks */
#define LOADS_X   ((TILE_M * TILE_K + THREADS - 1) / THREADS)
#define LOADS_W   ((TILE_N * TILE_K + THREADS - 1) / THREADS)
#define MMA_WARPS (WARPS_M * WARPS_N)

inline void project_tile(PROJECTION_ARGS, int x_heads, int y_heads, __local float *xs,
                         __local float *ws, __local float *scratch) {
    const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int wm0 = (warp / WARPS_N) * WM, wn0 = (warp % WARPS_N) * WN;
    const int m0 = get_group_id(1) * TILE_M, n0 = get_group_id(0) * TILE_N;
    float acc[M_TILES][N_TILES][4];
    MMA_UNROLL
    for (int mi = 0; mi < M_TILES; mi++) {
        MMA_UNROLL
        for (int ni = 0; ni < N_TILES; ni++) {
            MMA_UNROLL
            for (int i = 0; i < 4; i++)
                acc[mi][ni][i] = 0.0f;
        }
    }

    float x_next[LOADS_X], w_next[LOADS_W];
    fetch_slices(x, x_heads, w_t, ld_w, col0, rows, in_features, out_features, seq_len, m0, n0, 0,
                 tid, TILE_M, TILE_N, TILE_K, THREADS, LOADS_X, LOADS_W, x_next, w_next);
    for (int k0 = 0; k0 < in_features; k0 += TILE_K) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous slices are no longer read */
        store_slices(x_next, w_next, xs, ws, tid, TILE_M, TILE_N, TILE_K, THREADS, LOADS_X, LOADS_W,
                     XS_STRIDE, WS_STRIDE, 0);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (k0 + TILE_K < in_features)
            fetch_slices(x, x_heads, w_t, ld_w, col0, rows, in_features, out_features, seq_len, m0,
                         n0, k0 + TILE_K, tid, TILE_M, TILE_N, TILE_K, THREADS, LOADS_X, LOADS_W,
                         x_next, w_next);
        for (int kk = 0; kk < TILE_K; kk += 8) {
            uint a_big[M_TILES][4], a_small[M_TILES][4];
            MMA_UNROLL
            for (int mi = 0; mi < M_TILES; mi++) {
                __local const float *a = xs + (wm0 + mi * 16 + g) * XS_STRIDE + kk + t;
                split_tf32(a[0], &a_big[mi][0], &a_small[mi][0]);
                split_tf32(a[8 * XS_STRIDE], &a_big[mi][1], &a_small[mi][1]);
                split_tf32(a[4], &a_big[mi][2], &a_small[mi][2]);
                split_tf32(a[8 * XS_STRIDE + 4], &a_big[mi][3], &a_small[mi][3]);
            }
            uint b_big[N_TILES][2], b_small[N_TILES][2];
            MMA_UNROLL
            for (int ni = 0; ni < N_TILES; ni++) {
                __local const float *b = ws + (kk + t) * WS_STRIDE + wn0 + ni * 8 + g;
                split_tf32(b[0], &b_big[ni][0], &b_small[ni][0]);
                split_tf32(b[4 * WS_STRIDE], &b_big[ni][1], &b_small[ni][1]);
            }
            /* Independent tiles side by side in each step, so that products overlap. */
            MMA_UNROLL
            for (int mi = 0; mi < M_TILES; mi++) {
                MMA_UNROLL
                for (int ni = 0; ni < N_TILES; ni++)
                    mma_tf32(acc[mi][ni], a_big[mi], b_small[ni], scratch);
            }
            MMA_UNROLL
            for (int mi = 0; mi < M_TILES; mi++) {
                MMA_UNROLL
                for (int ni = 0; ni < N_TILES; ni++)
                    mma_tf32(acc[mi][ni], a_small[mi], b_big[ni], scratch);
            }
            MMA_UNROLL
            for (int mi = 0; mi < M_TILES; mi++) {
                MMA_UNROLL
                for (int ni = 0; ni < N_TILES; ni++)
                    mma_tf32(acc[mi][ni], a_big[mi], b_big[ni], scratch);
            }
        }
    }

    /* Offsets once per column and once per row, then one add per element. */
    __global float *y_of[N_TILES][2];
    size_t col_part[N_TILES][2];
    MMA_UNROLL
    for (int ni = 0; ni < N_TILES; ni++) {
        MMA_UNROLL
        for (int q = 0; q < 2; q++) {
            int col = min(n0 + wn0 + ni * 8 + 2 * t + q, out_features - 1);
            y_of[ni][q] = output_of(y0, y1, y2, col, out_width, y_heads, seq_len, &col_part[ni][q]);
        }
    }
    MMA_UNROLL
    for (int mi = 0; mi < M_TILES; mi++) {
        MMA_UNROLL
        for (int upper = 0; upper < 2; upper++) {
            int row = m0 + wm0 + mi * 16 + upper * 8 + g;
            if (row >= rows) continue;
            size_t row_part = row_offset(y_heads, row, seq_len, out_width);
            MMA_UNROLL
            for (int ni = 0; ni < N_TILES; ni++) {
                MMA_UNROLL
                for (int q = 0; q < 2; q++) {
                    int col = n0 + wn0 + ni * 8 + 2 * t + q;
                    if (col >= out_features) continue;
                    float v = acc[mi][ni][upper * 2 + q];
                    y_of[ni][q][row_part + col_part[ni][q]] = has_bias ? v + bias[col0 + col] : v;
                }
            }
        }
    }
}

__kernel void project_to_heads(PROJECTION_ARGS) {
    __local float xs[TILE_M * XS_STRIDE], ws[TILE_K * WS_STRIDE], scratch[MMA_SCRATCH];
    project_tile(PROJECTION_PASS, 0, 1, xs, ws, scratch);
}

__kernel void project_to_rows(PROJECTION_ARGS) {
    __local float xs[TILE_M * XS_STRIDE], ws[TILE_K * WS_STRIDE], scratch[MMA_SCRATCH];
    project_tile(PROJECTION_PASS, 1, 0, xs, ws, scratch);
}
