/* Projections on tensor cores, float32 accurate through 3xTF32 (mma.cl).
 *
 * A work-group of WARPS_M x WARPS_N warps computes a TILE_M x TILE_N block of y through TILE_K-deep
 * slices of x and w_t in local memory; a warp owns WM x WN of it as (WM / 16) x (WN / 8) mma
 * tiles. The slices are stored split into TF32 big and small parts (a plane each), so that every
 * element is split once rather than by each warp that reads it. Work-group: (32 * WARPS_M *
 * WARPS_N, 1). Needs common.cl, mma.cl and project_common.cl. */

#define THREADS   (32 * WARPS_M * WARPS_N)
#define TILE_M    (WARPS_M * WM)
#define TILE_N    (WARPS_N * WN)
#define M_TILES   (WM / 16)
#define N_TILES   (WN / 8)
#define XS_STRIDE (TILE_K + 4) /* lanes (g, t) read rows g, columns t: 32 different banks */
#define WS_STRIDE (TILE_N + 8) /* lanes read rows t, columns g: 32 different banks */
#define MMA_WARPS (WARPS_M * WARPS_N)
#define XS_PLANE  (TILE_M * XS_STRIDE)
#define WS_PLANE  (TILE_K * WS_STRIDE)

#define X_PER_ROW (TILE_K / RUN)
#define W_PER_ROW (TILE_N / RUN)
#define LOADS_X   ((TILE_M * X_PER_ROW + THREADS - 1) / THREADS)
#define LOADS_W   ((TILE_K * W_PER_ROW + THREADS - 1) / THREADS)

/* One run stored at `at` of a pair of planes, split into TF32 big (first plane) and small parts. */
inline void store_split_run(run_t run, __local uint *planes, int plane, int at) {
    uint big, small;
#pragma unroll
    for (int e = 0; e < RUN; e++) {
        split_tf32(RUN_ELEMENT(run, e), &big, &small);
        planes[at + e] = big;
        planes[plane + at + e] = small;
    }
}

/* Stores what fetch_runs fetched, split: x's slice as [2][TILE_M][XS_STRIDE], w_t's as
 * [2][TILE_K][WS_STRIDE]. */
inline void store_split_slices(const run_t *x_part, const run_t *w_part, __local uint *xs,
                               __local uint *ws, int tid) {
#pragma unroll
    for (int j = 0; j < LOADS_X; j++) {
        const int i = tid + j * THREADS, r = i / X_PER_ROW, c = (i - r * X_PER_ROW) * RUN;
        if (i >= TILE_M * X_PER_ROW) break;
        store_split_run(x_part[j], xs, XS_PLANE, r * XS_STRIDE + c);
    }
#pragma unroll
    for (int j = 0; j < LOADS_W; j++) {
        const int i = tid + j * THREADS, r = i / W_PER_ROW, c = (i - r * W_PER_ROW) * RUN;
        if (i >= TILE_K * W_PER_ROW) break;
        store_split_run(w_part[j], ws, WS_PLANE, r * WS_STRIDE + c);
    }
}

/* to += from over a warp tile's C fragments. */
inline void add_tiles(float to[M_TILES][N_TILES][4], float from[M_TILES][N_TILES][4]) {
    MMA_UNROLL
    for (int mi = 0; mi < M_TILES; mi++) {
        MMA_UNROLL
        for (int ni = 0; ni < N_TILES; ni++) {
            MMA_UNROLL
            for (int i = 0; i < 4; i++)
                to[mi][ni][i] += from[mi][ni][i];
        }
    }
}

/* A warp tile's C fragments = 0. */
#define CLEAR_TILES(tiles)                                                                         \
    MMA_UNROLL                                                                                     \
    for (int mi_ = 0; mi_ < M_TILES; mi_++) {                                                      \
        CLEAR_FRAGMENTS((tiles)[mi_], N_TILES);                                                    \
    }

inline void project_tile(PROJECTION_ARGS, int x_heads, int y_heads, __local uint *xs,
                         __local uint *ws, __local long *x_rows, __local float *scratch) {
    const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int wm0 = (warp / WARPS_N) * WM, wn0 = (warp % WARPS_N) * WN;
    const int m0 = get_group_id(1) * TILE_M, n0 = get_group_id(0) * TILE_N;
    float acc[M_TILES][N_TILES][4];
    CLEAR_TILES(acc);
    fill_row_offsets(x_rows, x_heads, m0, rows, seq_len, in_features, tid, TILE_M, THREADS);
    barrier(CLK_LOCAL_MEM_FENCE);

    /* The next slices are fetched into registers while the current ones are multiplied. */
    run_t x_next[LOADS_X], w_next[LOADS_W];
    fetch_runs(x, x_rows, x_heads, w_t, ld_w, col0, in_features, out_features, seq_len, n0, 0, tid,
               TILE_M, TILE_N, TILE_K, THREADS, LOADS_X, LOADS_W, x_next, w_next);
    for (int k0 = 0; k0 < in_features; k0 += TILE_K) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous slices are no longer read */
        store_split_slices(x_next, w_next, xs, ws, tid);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (k0 + TILE_K < in_features)
            fetch_runs(x, x_rows, x_heads, w_t, ld_w, col0, in_features, out_features, seq_len, n0,
                       k0 + TILE_K, tid, TILE_M, TILE_N, TILE_K, THREADS, LOADS_X, LOADS_W, x_next,
                       w_next);
        /* The slice's products go into a fresh sum, added to acc in float32 (mma_3xtf32). */
        float slice[M_TILES][N_TILES][4];
        CLEAR_TILES(slice);
        for (int kk = 0; kk < TILE_K; kk += 8) {
            uint a_big[M_TILES][4], a_small[M_TILES][4];
            MMA_UNROLL
            for (int mi = 0; mi < M_TILES; mi++) {
                __local const uint *a = xs + (wm0 + mi * 16 + g) * XS_STRIDE + kk + t;
                MMA_UNROLL
                for (int i = 0; i < 4; i++) { /* rows g, g + 8; columns t, t + 4 */
                    const int at = (i & 1) * 8 * XS_STRIDE + (i >> 1) * 4;
                    a_big[mi][i] = a[at];
                    a_small[mi][i] = a[XS_PLANE + at];
                }
            }
            uint b_big[N_TILES][2], b_small[N_TILES][2];
            MMA_UNROLL
            for (int ni = 0; ni < N_TILES; ni++) {
                __local const uint *b = ws + (kk + t) * WS_STRIDE + wn0 + ni * 8 + g;
                MMA_UNROLL
                for (int i = 0; i < 2; i++) { /* rows t, t + 4 */
                    b_big[ni][i] = b[i * 4 * WS_STRIDE];
                    b_small[ni][i] = b[WS_PLANE + i * 4 * WS_STRIDE];
                }
            }
            MMA_UNROLL
            for (int mi = 0; mi < M_TILES; mi++) {
                MMA_UNROLL
                for (int ni = 0; ni < N_TILES; ni++)
                    mma_3xtf32(slice[mi][ni], a_big[mi], a_small[mi], b_big[ni], b_small[ni],
                               scratch);
            }
        }
        add_tiles(acc, slice);
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
    __local uint xs[2 * XS_PLANE], ws[2 * WS_PLANE];
    __local float scratch[MMA_SCRATCH];
    __local long x_rows[TILE_M];
    project_tile(PROJECTION_PASS, 0, 1, xs, ws, x_rows, scratch);
}

__kernel void project_to_rows(PROJECTION_ARGS) {
    __local uint xs[2 * XS_PLANE], ws[2 * WS_PLANE];
    __local float scratch[MMA_SCRATCH];
    __local long x_rows[TILE_M];
    project_tile(PROJECTION_PASS, 1, 0, xs, ws, x_rows, scratch);
}
