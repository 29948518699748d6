/* Projections on tensor cores, float32 accurate through 3xTF32 (mma.cl), without local memory:
 * each warp reads x and w_t from global memory straight into its fragments, so warps never wait
 * for each other.
 *
 * A work-group of WARPS_M x WARPS_N warps covers a TILE_M x TILE_N block of y; a warp owns WM x WN
 * of it as M_TILES x N_TILES mma tiles, through TILE_K-deep slices. Two permutations make every
 * load and store a run of adjacent floats (16 bytes with VECTOR_RUNS):
 * - k: a sum does not care about the order of its terms, so within each 16 k's, lane (g, t) takes
 *   the four k's 4t .. 4t + 3 of a row of x: k-step 2u + s of a slice reads them as its logical
 *   k's t (physical 4t + 2s) and t + 4 (physical 4t + 2s + 1). w_t's rows are taken the same way.
 * - n: column c of the warp's mma tile ni is the warp's physical column c * N_TILES + ni. B's
 *   lane g then reads physical columns g * N_TILES .. + N_TILES - 1 of a row of w_t, and C's
 *   lane t holds columns 2t * N_TILES .. + 2 N_TILES - 1 of each of its rows.
 * Rows and columns past the edges are clamped when loaded and skipped when stored; k's past
 * in_features load zeros. Work-group: (32 * WARPS_M * WARPS_N, 1). Needs common.cl, mma.cl and
 * project_common.cl. */
#if !defined(HEAD_DIM) || !defined(TILE_K) || !defined(WARPS_M) || !defined(WARPS_N) ||            \
    !defined(WM) || !defined(WN) || !defined(VECTOR_RUNS)
#error "project_mma.cl is built with -D HEAD_DIM, TILE_K, WARPS_M, WARPS_N, WM, WN and VECTOR_RUNS"
#endif
#if STORAGE != 0 /* the plan takes other kernels for half storage */
#error "project_mma.cl reads and writes float32 only"
#endif

#define TILE_M    (WARPS_M * WM)
#define TILE_N    (WARPS_N * WN)
#define M_TILES   (WM / 16)
#define N_TILES   (WN / 8)
#define MMA_WARPS (WARPS_M * WARPS_N)
#define K_VALUES  (TILE_K / 4) /* of one row per lane and slice */

/* With VECTOR_RUNS a run of 4 floats is 16-byte aligned (project_common.cl), so runs go through
 * LOAD4 and STORE4 (common.cl), which NVIDIA's compiler turns into single 16-byte accesses where
 * vload4/vstore4 became four. */

/* x[row][k .. k + 3] of a row at row_part, zeros from in_features on. */
inline void load_x_run(__global const float *x, size_t row_part, int x_heads, int k,
                       int in_features, int seq_len, float *to) {
#if VECTOR_RUNS
    /* in_features and HEAD_DIM are multiples of 4: the run is whole and within one head. */
    float4 r =
        k < in_features ? LOAD4(x + row_part + col_offset(x_heads, k, seq_len)) : (float4)(0.0f);
    to[0] = r.s0, to[1] = r.s1, to[2] = r.s2, to[3] = r.s3;
#else
    for (int e = 0; e < 4; e++)
        to[e] = k + e < in_features ? x[row_part + col_offset(x_heads, k + e, seq_len)] : 0.0f;
#endif
}

/* w_t[k][col .. col + N_TILES - 1] (columns from col0 on), zeros past the edges. */
inline void load_w_run(__global const float *w_t, int ld_w, int col0, int k, int col,
                       int in_features, int out_features, float *to) {
    __global const float *row = w_t + (size_t)k * ld_w + col0;
#if VECTOR_RUNS
    /* out_features and N_TILES are multiples of 4: each run of 4 is whole. */
    MMA_UNROLL
    for (int v = 0; v < N_TILES; v += 4) {
        float4 r =
            k < in_features && col + v < out_features ? LOAD4(row + col + v) : (float4)(0.0f);
        to[v] = r.s0, to[v + 1] = r.s1, to[v + 2] = r.s2, to[v + 3] = r.s3;
    }
#else
    for (int v = 0; v < N_TILES; v++)
        to[v] = k < in_features && col + v < out_features ? row[col + v] : 0.0f;
#endif
}

/* The lane's share of the slice from k0 on: xv[mi][h] for rows g (h = 0) and g + 8 (h = 1) of
 * mma tile mi, wv[j] for the lane's columns; value j is physical k k0 + 16 (j / 4) + 4t + j % 4. */
inline void fetch_slice(__global const float *x, const size_t x_row[M_TILES][2], int x_heads,
                        __global const float *w_t, int ld_w, int col0, int w_col, int k0, int t,
                        int in_features, int out_features, int seq_len,
                        float xv[M_TILES][2][K_VALUES], float wv[K_VALUES][N_TILES]) {
    MMA_UNROLL
    for (int u = 0; u < TILE_K / 16; u++) {
        const int k = k0 + 16 * u + 4 * t;
        MMA_UNROLL
        for (int mi = 0; mi < M_TILES; mi++) {
            MMA_UNROLL
            for (int h = 0; h < 2; h++)
                load_x_run(x, x_row[mi][h], x_heads, k, in_features, seq_len, &xv[mi][h][4 * u]);
        }
        MMA_UNROLL
        for (int e = 0; e < 4; e++)
            load_w_run(w_t, ld_w, col0, k + e, w_col, in_features, out_features, wv[4 * u + e]);
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

/* slice += the slice's products, k-step by k-step. */
inline void multiply_slice(float xv[M_TILES][2][K_VALUES], float wv[K_VALUES][N_TILES],
                           float slice[M_TILES][N_TILES][4], __local float *scratch) {
    MMA_UNROLL
    for (int s = 0; s < TILE_K / 8; s++) {
        uint a_big[M_TILES][4], a_small[M_TILES][4];
        MMA_UNROLL
        for (int mi = 0; mi < M_TILES; mi++) {
            MMA_UNROLL
            for (int i = 0; i < 4; i++) /* rows g, g + 8; logical k's t, t + 4 */
                split_tf32(xv[mi][i & 1][2 * s + (i >> 1)], &a_big[mi][i], &a_small[mi][i]);
        }
        MMA_UNROLL
        for (int ni = 0; ni < N_TILES; ni++) {
            uint b_big[2], b_small[2];
            MMA_UNROLL
            for (int i = 0; i < 2; i++) /* logical k's t, t + 4 */
                split_tf32(wv[2 * s + i][ni], &b_big[i], &b_small[i]);
            MMA_UNROLL
            for (int mi = 0; mi < M_TILES; mi++)
                mma_3xtf32(slice[mi][ni], a_big[mi], a_small[mi], b_big, b_small, scratch);
        }
    }
}

/* Stores row `row` of the warp tile: physical columns col .. col + 2 N_TILES - 1, the lane's
 * elements (q = 0, 1) of each mma tile ni in order q * N_TILES + ni. */
inline void store_row(float acc[M_TILES][N_TILES][4], int mi, int h, int row, int col,
                      __global const float *bias, int has_bias, int col0, __global float *y0,
                      __global float *y1, __global float *y2, int y_heads, int out_features,
                      int out_width, int seq_len) {
    const size_t row_part = row_offset(y_heads, row, seq_len, out_width);
#if VECTOR_RUNS
    /* N_TILES, out_width and HEAD_DIM are multiples of 4: a run stays within one output and one
     * head. */
    MMA_UNROLL
    for (int j = 0; j < 2 * N_TILES; j += 4) {
        if (col + j >= out_features) break;
        float4 v = (float4)(acc[mi][j % N_TILES][2 * h + j / N_TILES],
                            acc[mi][(j + 1) % N_TILES][2 * h + (j + 1) / N_TILES],
                            acc[mi][(j + 2) % N_TILES][2 * h + (j + 2) / N_TILES],
                            acc[mi][(j + 3) % N_TILES][2 * h + (j + 3) / N_TILES]);
        if (has_bias) v += LOAD4(bias + col0 + col + j);
        size_t col_part;
        __global float *y = output_of(y0, y1, y2, col + j, out_width, y_heads, seq_len, &col_part);
        STORE4(v, y + row_part + col_part);
    }
#else
    for (int j = 0; j < 2 * N_TILES; j++) {
        if (col + j >= out_features) break;
        float v = acc[mi][j % N_TILES][2 * h + j / N_TILES];
        size_t col_part;
        __global float *y = output_of(y0, y1, y2, col + j, out_width, y_heads, seq_len, &col_part);
        y[row_part + col_part] = has_bias ? v + bias[col0 + col + j] : v;
    }
#endif
}

inline void project_tile(PROJECTION_ARGS, int x_heads, int y_heads, __local float *scratch) {
    const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    /* Unsigned (warp >= 0): for the signed pair of / and % LLVM inserts a freeze, an instruction
     * Oclgrind 21.10 cannot run. */
    const int m0 = get_group_id(1) * TILE_M + ((uint)warp / WARPS_N) * WM;
    const int n0 = get_group_id(0) * TILE_N + ((uint)warp % WARPS_N) * WN;

    /* The lane's rows of x, clamped to the last (whose sums are then not stored). */
    size_t x_row[M_TILES][2];
    MMA_UNROLL
    for (int mi = 0; mi < M_TILES; mi++) {
        MMA_UNROLL
        for (int h = 0; h < 2; h++)
            x_row[mi][h] =
                row_offset(x_heads, min(m0 + mi * 16 + h * 8 + g, rows - 1), seq_len, in_features);
    }
    const int w_col = n0 + g * N_TILES;

    float acc[M_TILES][N_TILES][4];
    CLEAR_TILES(acc);
    /* The next slice is fetched into registers while this one is multiplied. */
    float xv[M_TILES][2][K_VALUES], wv[K_VALUES][N_TILES];
    fetch_slice(x, x_row, x_heads, w_t, ld_w, col0, w_col, 0, t, in_features, out_features, seq_len,
                xv, wv);
    for (int k0 = 0; k0 < in_features; k0 += TILE_K) {
        float x_next[M_TILES][2][K_VALUES], w_next[K_VALUES][N_TILES];
        fetch_slice(x, x_row, x_heads, w_t, ld_w, col0, w_col, k0 + TILE_K, t, in_features,
                    out_features, seq_len, x_next, w_next);
        /* The slice's products go into a fresh sum, added to acc in float32 (mma_3xtf32). */
        float slice[M_TILES][N_TILES][4];
        CLEAR_TILES(slice);
        multiply_slice(xv, wv, slice, scratch);
        add_tiles(acc, slice);
        MMA_UNROLL
        for (int j = 0; j < K_VALUES; j++) {
            MMA_UNROLL
            for (int mi = 0; mi < M_TILES; mi++)
                xv[mi][0][j] = x_next[mi][0][j], xv[mi][1][j] = x_next[mi][1][j];
            MMA_UNROLL
            for (int ni = 0; ni < N_TILES; ni++)
                wv[j][ni] = w_next[j][ni];
        }
    }

    MMA_UNROLL
    for (int mi = 0; mi < M_TILES; mi++) {
        MMA_UNROLL
        for (int h = 0; h < 2; h++) {
            const int row = m0 + mi * 16 + h * 8 + g;
            if (row < rows)
                store_row(acc, mi, h, row, n0 + 2 * t * N_TILES, bias, has_bias, col0, y0, y1, y2,
                          y_heads, out_features, out_width, seq_len);
        }
    }
}

MMA_PROJECTION_KERNELS
