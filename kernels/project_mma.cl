/* Projections on tensor cores, without local memory: float32 accurate through 3xTF32 (mma.cl),
 * half storage on the stored float16 or bfloat16 values with float32 sums (mma_half.cl). Each
 * warp reads x and w_t from global memory straight into its fragments, so warps never wait for
 * each other.
 *
 * A work-group of WARPS_M x WARPS_N warps covers a TILE_M x TILE_N block of y; a warp owns WM x WN
 * of it as M_TILES x N_TILES mma tiles, through TILE_K-deep slices. Two permutations make every
 * load and store a run of adjacent values (16 bytes of floats, 8 of halves, with VECTOR_RUNS):
 * - k: a sum does not care about the order of its terms, so within each 16 k's, lane (g, t) takes
 *   the four k's 4t .. 4t + 3 of a row of x. For float32 (m16n8k8), k-step 2u + s of a slice reads
 *   them as its logical k's t (physical 4t + 2s) and t + 4 (physical 4t + 2s + 1); for half
 *   storage (m16n8k16) as its logical k's 2t, 2t + 1, 2t + 8, 2t + 9. w_t's rows are taken the
 *   same way.
 * - n: column c of the warp's mma tile ni is the warp's physical column c * N_TILES + ni. B's
 *   lane g then reads physical columns g * N_TILES .. + N_TILES - 1 of a row of w_t, and C's
 *   lane t holds columns 2t * N_TILES .. + 2 N_TILES - 1 of each of its rows.
 * Rows and columns past the edges are clamped when loaded and skipped when stored; k's past
 * in_features load zeros. Work-group: (32 * WARPS_M * WARPS_N, 1). Needs common.cl, mma.cl (and
 * for half storage mma_half.cl) and project_common.cl. */
#if !defined(HEAD_DIM) || !defined(TILE_K) || !defined(WARPS_M) || !defined(WARPS_N) ||            \
    !defined(WM) || !defined(WN) || !defined(VECTOR_RUNS)
#error "project_mma.cl is built with -D HEAD_DIM, TILE_K, WARPS_M, WARPS_N, WM, WN and VECTOR_RUNS"
#endif
#if TILE_K % 16 || WM % 16 || WN % 8
#error "project_mma.cl needs TILE_K and WM multiples of 16, WN a multiple of 8"
#endif

#define TILE_M    (WARPS_M * WM)
#define TILE_N    (WARPS_N * WN)
#define M_TILES   (WM / 16)
#define N_TILES   (WN / 8)
#define MMA_WARPS (WARPS_M * WARPS_N)

/* A warp tile's C fragments = 0. */
#define CLEAR_TILES(tiles)                                                                         \
    MMA_UNROLL                                                                                     \
    for (int mi_ = 0; mi_ < M_TILES; mi_++) {                                                      \
        CLEAR_FRAGMENTS((tiles)[mi_], N_TILES);                                                    \
    }

#if STORAGE == 0
#define K_VALUES (TILE_K / 4) /* of one row per lane and slice */

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

/* acc += the slice's products, k-step by k-step, summed into a fresh sum first (mma_3xtf32). */
inline void multiply_slice(float xv[M_TILES][2][K_VALUES], float wv[K_VALUES][N_TILES],
                           float acc[M_TILES][N_TILES][4], __local float *scratch) {
    float slice[M_TILES][N_TILES][4];
    CLEAR_TILES(slice);
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
    add_tiles(acc, slice);
}

/* The values of one slice, in registers (fetch_slice, multiply_slice). */
#define SLICE_ARRAYS(s) float s##_x[M_TILES][2][K_VALUES], s##_w[K_VALUES][N_TILES]
#define SLICE_PASS(s)   s##_x, s##_w

/* to = from, element by element (unrolled: the arrays stay in registers). */
inline void copy_slice(float from_x[M_TILES][2][K_VALUES], float from_w[K_VALUES][N_TILES],
                       float to_x[M_TILES][2][K_VALUES], float to_w[K_VALUES][N_TILES]) {
    MMA_UNROLL
    for (int j = 0; j < K_VALUES; j++) {
        MMA_UNROLL
        for (int mi = 0; mi < M_TILES; mi++)
            to_x[mi][0][j] = from_x[mi][0][j], to_x[mi][1][j] = from_x[mi][1][j];
        MMA_UNROLL
        for (int ni = 0; ni < N_TILES; ni++)
            to_w[j][ni] = from_w[j][ni];
    }
}
#else
#define K_STEPS (TILE_K / 16)
/* Half values move as their 16-bit patterns (zero bits are 0.0 in both types). */
#define BITS(p) ((__global const ushort *)(p))

/* x[row][k .. k + 3] of a row at row_part as two pairs, zeros from in_features on. */
inline uint2 load_x_pairs(__global const stored *x, size_t row_part, int x_heads, int k,
                          int in_features, int seq_len) {
#if VECTOR_RUNS
    /* in_features and HEAD_DIM are multiples of 4: the run is whole, 8-byte aligned and within
     * one head. */
    return k < in_features
               ? *(__global const uint2 *)(BITS(x) + row_part + col_offset(x_heads, k, seq_len))
               : (uint2)(0);
#else
    uint v[4];
    for (int e = 0; e < 4; e++)
        v[e] = k + e < in_features ? BITS(x)[row_part + col_offset(x_heads, k + e, seq_len)] : 0;
    return (uint2)(v[0] | v[1] << 16, v[2] | v[3] << 16);
#endif
}

/* w_t[k][col .. col + N_TILES - 1] (columns from col0 on) as 16-bit patterns, zeros past the
 * edges. */
inline void load_w_run(__global const stored *w_t, int ld_w, int col0, int k, int col,
                       int in_features, int out_features, ushort *to) {
    __global const ushort *row = BITS(w_t) + (size_t)k * ld_w + col0;
#if VECTOR_RUNS
    /* out_features and N_TILES are multiples of 4: each run of 4 is whole and 8-byte aligned. */
    MMA_UNROLL
    for (int v = 0; v < N_TILES; v += 4) {
        const ushort4 r = k < in_features && col + v < out_features
                              ? *(__global const ushort4 *)(row + col + v)
                              : (ushort4)(0);
        to[v] = r.s0, to[v + 1] = r.s1, to[v + 2] = r.s2, to[v + 3] = r.s3;
    }
#else
    for (int v = 0; v < N_TILES; v++)
        to[v] = k < in_features && col + v < out_features ? row[col + v] : 0;
#endif
}

/* The lane's fragments of the slice from k0 on: xa[mi][u] the A fragment of mma tile mi and
 * k-step u; wv[u][e][ni] the value of physical k k0 + 16 u + 4 t + e for tile ni's column. */
inline void fetch_slice(__global const stored *x, const size_t x_row[M_TILES][2], int x_heads,
                        __global const stored *w_t, int ld_w, int col0, int w_col, int k0, int t,
                        int in_features, int out_features, int seq_len,
                        uint xa[M_TILES][K_STEPS][4], ushort wv[K_STEPS][4][N_TILES]) {
    MMA_UNROLL
    for (int u = 0; u < K_STEPS; u++) {
        const int k = k0 + 16 * u + 4 * t;
        MMA_UNROLL
        for (int mi = 0; mi < M_TILES; mi++) {
            MMA_UNROLL
            for (int h = 0; h < 2; h++) { /* rows g, g + 8: registers h and h + 2 */
                const uint2 pairs = load_x_pairs(x, x_row[mi][h], x_heads, k, in_features, seq_len);
                xa[mi][u][h] = pairs.x, xa[mi][u][h + 2] = pairs.y;
            }
        }
        MMA_UNROLL
        for (int e = 0; e < 4; e++)
            load_w_run(w_t, ld_w, col0, k + e, w_col, in_features, out_features, wv[u][e]);
    }
}

/* acc += the slice's products, k-step by k-step. */
inline void multiply_slice(uint xa[M_TILES][K_STEPS][4], ushort wv[K_STEPS][4][N_TILES],
                           float acc[M_TILES][N_TILES][4], __local float *scratch) {
    MMA_UNROLL
    for (int u = 0; u < K_STEPS; u++) {
        MMA_UNROLL
        for (int ni = 0; ni < N_TILES; ni++) {
            const uint b[2] = {(uint)wv[u][0][ni] | (uint)wv[u][1][ni] << 16,
                               (uint)wv[u][2][ni] | (uint)wv[u][3][ni] << 16};
            MMA_UNROLL
            for (int mi = 0; mi < M_TILES; mi++)
                mma_half(acc[mi][ni], xa[mi][u], b, scratch);
        }
    }
}

/* The values of one slice, in registers (fetch_slice, multiply_slice). */
#define SLICE_ARRAYS(s)                                                                            \
    uint s##_x[M_TILES][K_STEPS][4];                                                               \
    ushort s##_w[K_STEPS][4][N_TILES]
#define SLICE_PASS(s) s##_x, s##_w

/* to = from, element by element (unrolled: the arrays stay in registers). */
inline void copy_slice(uint from_x[M_TILES][K_STEPS][4], ushort from_w[K_STEPS][4][N_TILES],
                       uint to_x[M_TILES][K_STEPS][4], ushort to_w[K_STEPS][4][N_TILES]) {
    MMA_UNROLL
    for (int u = 0; u < K_STEPS; u++) {
        MMA_UNROLL
        for (int mi = 0; mi < M_TILES; mi++) {
            MMA_UNROLL
            for (int i = 0; i < 4; i++)
                to_x[mi][u][i] = from_x[mi][u][i];
        }
        MMA_UNROLL
        for (int e = 0; e < 4; e++) {
            MMA_UNROLL
            for (int ni = 0; ni < N_TILES; ni++)
                to_w[u][e][ni] = from_w[u][e][ni];
        }
    }
}
#endif

/* Stores row `row` of the warp tile: physical columns col .. col + 2 N_TILES - 1, the lane's
 * elements (q = 0, 1) of each mma tile ni in order q * N_TILES + ni. */
inline void store_row(float acc[M_TILES][N_TILES][4], int mi, int h, int row, int col,
                      __global const stored *bias, int has_bias, int col0, __global stored *y0,
                      __global stored *y1, __global stored *y2, int y_heads, int out_features,
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
        if (has_bias) v += READ4_ALIGNED(bias, col0 + col + j);
        size_t col_part;
        __global stored *y = output_of(y0, y1, y2, col + j, out_width, y_heads, seq_len, &col_part);
        WRITE4_ALIGNED(v, y, row_part + col_part);
    }
#else
    for (int j = 0; j < 2 * N_TILES; j++) {
        if (col + j >= out_features) break;
        float v = acc[mi][j % N_TILES][2 * h + j / N_TILES];
        size_t col_part;
        __global stored *y = output_of(y0, y1, y2, col + j, out_width, y_heads, seq_len, &col_part);
        WRITE(has_bias ? v + READ(bias, col0 + col + j) : v, y, row_part + col_part);
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
    SLICE_ARRAYS(now);
    fetch_slice(x, x_row, x_heads, w_t, ld_w, col0, w_col, 0, t, in_features, out_features, seq_len,
                SLICE_PASS(now));
    for (int k0 = 0; k0 < in_features; k0 += TILE_K) {
        SLICE_ARRAYS(next);
        fetch_slice(x, x_row, x_heads, w_t, ld_w, col0, w_col, k0 + TILE_K, t, in_features,
                    out_features, seq_len, SLICE_PASS(next));
        multiply_slice(SLICE_PASS(now), acc, scratch);
        copy_slice(SLICE_PASS(next), SLICE_PASS(now));
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

__kernel void project_to_heads(PROJECTION_ARGS) {
    __local float scratch[MMA_SCRATCH];
    CHECK_LOCAL_BYTES(sizeof scratch);
    project_tile(PROJECTION_PASS, 0, 1, scratch);
}

__kernel void project_to_rows(PROJECTION_ARGS) {
    __local float scratch[MMA_SCRATCH];
    CHECK_LOCAL_BYTES(sizeof scratch);
    project_tile(PROJECTION_PASS, 1, 0, scratch);
}

__kernel void project_rows(PROJECTION_ARGS) {
    __local float scratch[MMA_SCRATCH];
    CHECK_LOCAL_BYTES(sizeof scratch);
    project_tile(PROJECTION_PASS, 0, 0, scratch);
}
