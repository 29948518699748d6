/* Projections for GPUs: a work-group computes a TILE_M x TILE_N block of y through TILE_K-deep
 * slices of x and w_t staged in local memory; each work-item keeps WPT_M x WPT_N sums in
 * registers, in runs of 4 adjacent rows and columns when WPT_* allow, so that local memory is read
 * 16 bytes at a time. Local memory holds two slices: the next is stored while the current one is
 * read, so one barrier per slice suffices; the slice after is fetched from global memory into
 * registers meanwhile. Ragged edges load zeros and skip their stores.
 * With VECTOR_RUNS (project_common.cl), global memory is read and written 16 bytes at a time.
 * Work-group: (TILE_N / WPT_N, TILE_M / WPT_M). Needs common.cl and project_common.cl. */
#if !defined(HEAD_DIM) || !defined(TILE_M) || !defined(TILE_N) || !defined(TILE_K) ||              \
    !defined(WPT_M) || !defined(WPT_N) || !defined(VECTOR_RUNS)
#error "project_tiled.cl needs -D HEAD_DIM, TILE_M, TILE_N, TILE_K, WPT_M, WPT_N and VECTOR_RUNS"
#endif

#define GROUP_X   (TILE_N / WPT_N)
#define GROUP_Y   (TILE_M / WPT_M)
#define THREADS   (GROUP_X * GROUP_Y)
#define VM        (WPT_M % 4 == 0 ? 4 : 1)
#define VN        (WPT_N % 4 == 0 ? 4 : 1)
#define XS_STRIDE (TILE_M + 4) /* padding keeps 16-byte alignment, spreads banks */
#define WS_STRIDE (TILE_N + 4)
#define XS_SLICE  (TILE_K * XS_STRIDE)
#define WS_SLICE  (TILE_K * WS_STRIDE)

/* The i-th row (j-th column) of a work-item within its tile. */
#define ROW_OF(ty, i) (((i) / VM) * GROUP_Y * VM + (ty)*VM + (i) % VM)
#define COL_OF(tx, j) (((j) / VN) * GROUP_X * VN + (tx)*VN + (j) % VN)

inline void read_run(__local const float *p, float *out, int v) {
    if (v == 4) {
        float4 r = *(__local const float4 *)p;
        out[0] = r.s0, out[1] = r.s1, out[2] = r.s2, out[3] = r.s3;
    } else {
        out[0] = p[0];
    }
}

#define LOADS_X   ((TILE_M * TILE_K / RUN + THREADS - 1) / THREADS)
#define LOADS_W   ((TILE_K * TILE_N / RUN + THREADS - 1) / THREADS)
#define X_PER_ROW (TILE_K / RUN)
#define W_PER_ROW (TILE_N / RUN)

/* Stores what fetch_runs fetched: x's slice transposed, as [TILE_K][XS_STRIDE], so that a
 * work-item reads runs of rows; w_t's as [TILE_K][WS_STRIDE]. */
inline void store_runs(const run_t *x_next, const run_t *w_next, __local float *xs,
                       __local float *ws, int tid) {
#pragma unroll
    for (int t = 0; t < LOADS_X; t++) {
        int i = tid + t * THREADS, r = i / X_PER_ROW, c = (i - r * X_PER_ROW) * RUN;
        if (i >= TILE_M * X_PER_ROW) break;
#pragma unroll
        for (int e = 0; e < RUN; e++)
            xs[(c + e) * XS_STRIDE + r] = RUN_ELEMENT(x_next[t], e);
    }
#pragma unroll
    for (int t = 0; t < LOADS_W; t++) {
        int i = tid + t * THREADS, r = i / W_PER_ROW, c = (i - r * W_PER_ROW) * RUN;
        if (i >= TILE_K * W_PER_ROW) break;
#if RUN == 4
        *(__local float4 *)(ws + r * WS_STRIDE + c) = w_next[t];
#else
        ws[r * WS_STRIDE + c] = w_next[t];
#endif
    }
}

/* y at (row_part, its columns' parts) = acc + bias: runs of 4 columns in one store where they
 * are adjacent in y (VECTOR_RUNS: a run stays within one head and one output). */
inline void store_row(__global stored **y_of, const size_t *col_part, size_t row_part,
                      const float *acc, __global const stored *bias, int has_bias, int col0, int n0,
                      int tx, int out_features) {
#pragma unroll
    for (int j = 0; j < WPT_N; j += (VECTOR_RUNS ? VN : 1)) {
        int col = n0 + COL_OF(tx, j);
        if (col >= out_features) continue;
        __global stored *to = y_of[j] + row_part + col_part[j];
#if VECTOR_RUNS && VN == 4
        float4 value = (float4)(acc[j], acc[j + 1], acc[j + 2], acc[j + 3]);
        if (has_bias) value += READ4(bias, col0 + col);
        WRITE4(value, to, 0);
#else
        WRITE(has_bias ? acc[j] + READ(bias, col0 + col) : acc[j], to, 0);
#endif
    }
}

inline void project_tile(PROJECTION_ARGS, int x_heads, int y_heads, __local float *xs,
                         __local float *ws, __local long *x_rows) {
    const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * GROUP_X + tx;
    const int m0 = get_group_id(1) * TILE_M, n0 = get_group_id(0) * TILE_N;
    float acc[WPT_M][WPT_N];
    for (int i = 0; i < WPT_M; i++)
        for (int j = 0; j < WPT_N; j++)
            acc[i][j] = 0.0f;

    fill_row_offsets(x_rows, x_heads, m0, rows, seq_len, in_features, tid, TILE_M, THREADS);
    barrier(CLK_LOCAL_MEM_FENCE);
    run_t x_next[LOADS_X], w_next[LOADS_W];
    fetch_runs(x, x_rows, x_heads, w_t, ld_w, col0, in_features, out_features, seq_len, n0, 0, tid,
               TILE_M, TILE_N, TILE_K, THREADS, LOADS_X, LOADS_W, x_next, w_next);
    store_runs(x_next, w_next, xs, ws, tid);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k0 = 0, slice = 0; k0 < in_features; k0 += TILE_K, slice ^= 1) {
        const int more = k0 + TILE_K < in_features;
        if (more)
            fetch_runs(x, x_rows, x_heads, w_t, ld_w, col0, in_features, out_features, seq_len, n0,
                       k0 + TILE_K, tid, TILE_M, TILE_N, TILE_K, THREADS, LOADS_X, LOADS_W, x_next,
                       w_next);
        __local const float *xk = xs + slice * XS_SLICE, *wk = ws + slice * WS_SLICE;
        for (int k = 0; k < TILE_K; k++) {
            float a[WPT_M], b[WPT_N];
            for (int i = 0; i < WPT_M; i += VM)
                read_run(xk + k * XS_STRIDE + ROW_OF(ty, i), a + i, VM);
            for (int j = 0; j < WPT_N; j += VN)
                read_run(wk + k * WS_STRIDE + COL_OF(tx, j), b + j, VN);
            for (int i = 0; i < WPT_M; i++)
                for (int j = 0; j < WPT_N; j++)
                    acc[i][j] = MAC(a[i], b[j], acc[i][j]);
        }
        /* The other slice was last read before the previous barrier: free to overwrite. */
        if (more)
            store_runs(x_next, w_next, xs + (slice ^ 1) * XS_SLICE, ws + (slice ^ 1) * WS_SLICE,
                       tid);
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    /* Offsets once per column and once per row, then one add per element (or run). */
    __global stored *y_of[WPT_N];
    size_t col_part[WPT_N];
    for (int j = 0; j < WPT_N; j++) {
        int col = min(n0 + COL_OF(tx, j), out_features - 1);
        y_of[j] = output_of(y0, y1, y2, col, out_width, y_heads, seq_len, &col_part[j]);
    }
    for (int i = 0; i < WPT_M; i++) {
        int row = m0 + ROW_OF(ty, i);
        if (row >= rows) continue;
        store_row(y_of, col_part, row_offset(y_heads, row, seq_len, out_width), acc[i], bias,
                  has_bias, col0, n0, tx, out_features);
    }
}

/* Declared as float4 so that the 16-byte reads are aligned (a float array need not be). */
#define XS_VECTORS ((2 * XS_SLICE + 3) / 4)
#define WS_VECTORS ((2 * WS_SLICE + 3) / 4)

__kernel void project_to_heads(PROJECTION_ARGS) {
    __local float4 xs[XS_VECTORS], ws[WS_VECTORS];
    __local long x_rows[TILE_M];
    CHECK_LOCAL_BYTES(sizeof xs + sizeof ws + sizeof x_rows);
    project_tile(PROJECTION_PASS, 0, 1, (__local float *)xs, (__local float *)ws, x_rows);
}

/* Both sides rows-major: the input projections for an attention kernel built with ROWS_LAYOUT
 * (common.cl), and the output projection after it. */
__kernel void project_rows(PROJECTION_ARGS) {
    __local float4 xs[XS_VECTORS], ws[WS_VECTORS];
    __local long x_rows[TILE_M];
    CHECK_LOCAL_BYTES(sizeof xs + sizeof ws + sizeof x_rows);
    project_tile(PROJECTION_PASS, 0, 0, (__local float *)xs, (__local float *)ws, x_rows);
}

__kernel void project_to_rows(PROJECTION_ARGS) {
    __local float4 xs[XS_VECTORS], ws[WS_VECTORS];
    __local long x_rows[TILE_M];
    CHECK_LOCAL_BYTES(sizeof xs + sizeof ws + sizeof x_rows);
    project_tile(PROJECTION_PASS, 1, 0, (__local float *)xs, (__local float *)ws, x_rows);
}
