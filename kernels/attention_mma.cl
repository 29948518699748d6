/* Flash attention on tensor cores (3xTF32 through mma.cl), for HEAD_DIM a multiple of 8: each warp
 * owns 16 queries of one (batch, head); K and V pass through local memory BLOCK_K keys at a time,
 * split into TF32 parts as they are stored.
 * Per tile, S = Q K^T in C fragments (16 x BLOCK_K), the online softmax on them (a row's max over
 * the quad's lanes), then O += P V with P taken straight from S's registers: the keys of each
 * 8-column block of S are permuted (column c holds key sigma(c) = c / 2 + 4 (c % 2)), so that the
 * two columns a lane holds, 2t and 2t + 1, are keys t and t + 4, which is where the A fragment of
 * P V wants them. A query whose keys are all masked keeps m = -inf and l = 0: its output is 0.
 * Local memory holds two tiles: the next is stored while the current one is read, so one barrier
 * per tile suffices and warps need not wait for each other between the products. The next tile
 * is stored first thing (its split and stores overlap the products of Q K^T), from registers
 * fetched a tile earlier: loads run two tiles ahead.
 * Layouts as in attention_tiled.cl. Work-group: 32 * WARPS work-items; grid:
 * (ceil(n_query / (16 * WARPS)) * 32 * WARPS, batch * n_heads). */
#if !defined(HEAD_DIM) || !defined(WARPS) || !defined(BLOCK_K)
#error "attention_mma.cl is built with -D HEAD_DIM, WARPS and BLOCK_K"
#endif
#if STORAGE != 0 /* the plan takes other kernels for half storage */
#error "attention_mma.cl reads and writes float32 only"
#endif

#define MMA_WARPS WARPS
#define THREADS   (32 * WARPS)
#define D_STEPS   (HEAD_DIM / 8) /* k-steps of Q K^T, n-tiles of P V */
#define K_TILES   (BLOCK_K / 8)  /* n-tiles of Q K^T, k-steps of P V */
#define KS_STRIDE (HEAD_DIM + 4) /* lanes read rows sigma(g), columns t: 32 different banks */
#define VS_STRIDE (HEAD_DIM + 8) /* lanes read rows t, columns g: 32 different banks */
#define KS_PLANE  (BLOCK_K * KS_STRIDE)
#define VS_PLANE  (BLOCK_K * VS_STRIDE)
#define KS_TILE   (2 * KS_PLANE) /* big and small planes */
#define VS_TILE   (2 * VS_PLANE)
#define TILE_RUNS (BLOCK_K * HEAD_DIM / 4) /* runs of 4 floats in a tile of keys or values */
#define RUN_LOADS ((TILE_RUNS + THREADS - 1) / THREADS)

/* A run of 4 floats is 16-byte aligned here (HEAD_DIM is a multiple of 8, and so are the heads'
 * offsets, the row strides and the planes' rows), so runs go through LOAD4 (common.cl) and the
 * local twin of STORE4: one 16-byte load and two 16-byte stores per run instead of four and
 * eight of 4 bytes. */
#define STORE4_LOCAL(v, p) (*(__local uint4 *)(p) = (v))

/* This work-item's share of the tile of keys and values from key0 on: BLOCK_K rows of HEAD_DIM
 * floats each, zeros past the end. Fixed trip count: all loads in flight. */
inline void fetch_tile(__global const float *k_head, __global const float *v_head,
                       size_t row_stride, int key0, int graph_size, float4 *k_next,
                       float4 *v_next) {
#pragma unroll
    for (int j = 0; j < RUN_LOADS; j++) {
        const int i = get_local_id(0) + j * THREADS, r = i / (HEAD_DIM / 4);
        const int present = i < TILE_RUNS && key0 + r < graph_size;
#if ROWS_LAYOUT
        const size_t at = (size_t)(key0 + r) * row_stride + (i - r * (HEAD_DIM / 4)) * 4;
#else
        const size_t at = (size_t)key0 * HEAD_DIM + i * 4; /* the tile is one run */
#endif
        k_next[j] = present ? LOAD4(k_head + at) : (float4)(0.0f);
        v_next[j] = present ? LOAD4(v_head + at) : (float4)(0.0f);
    }
}

/* v's four floats as TF32 big and small parts. */
inline void split_run(float4 v, uint4 *big, uint4 *small) {
    uint b[4], s[4];
    split_tf32(v.x, &b[0], &s[0]);
    split_tf32(v.y, &b[1], &s[1]);
    split_tf32(v.z, &b[2], &s[2]);
    split_tf32(v.w, &b[3], &s[3]);
    *big = (uint4)(b[0], b[1], b[2], b[3]);
    *small = (uint4)(s[0], s[1], s[2], s[3]);
}

/* Stores what fetch_tile fetched into one tile's planes, split into TF32 parts. */
inline void store_tile(const float4 *k_next, const float4 *v_next, __local uint *ks,
                       __local uint *vs) {
#pragma unroll
    for (int j = 0; j < RUN_LOADS; j++) {
        const int i = get_local_id(0) + j * THREADS, r = i / (HEAD_DIM / 4);
        const int c = (i - r * (HEAD_DIM / 4)) * 4;
        if (i >= TILE_RUNS) break;
        uint4 big, small;
        split_run(k_next[j], &big, &small);
        STORE4_LOCAL(big, ks + r * KS_STRIDE + c);
        STORE4_LOCAL(small, ks + KS_PLANE + r * KS_STRIDE + c);
        split_run(v_next[j], &big, &small);
        STORE4_LOCAL(big, vs + r * VS_STRIDE + c);
        STORE4_LOCAL(small, vs + VS_PLANE + r * VS_STRIDE + c);
    }
}

__kernel void mma_attention(ATTENTION_ARGS) {
    /* K and V split into TF32 big and small planes, each element once for all warps */
    __local uint ks_tiles[2 * KS_TILE] __attribute__((aligned(16)));
    __local uint vs_tiles[2 * VS_TILE] __attribute__((aligned(16)));
    __local float scratch[MMA_SCRATCH];
    CHECK_LOCAL_BYTES(sizeof ks_tiles + sizeof vs_tiles + sizeof scratch);
    const int tid = get_local_id(0), lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int bh = get_group_id(1), batch = bh / n_heads, head = bh - batch * n_heads;
    const int row0 = get_group_id(0) * 16 * WARPS + (tid >> 5) * 16 + g, row1 = row0 + 8;
    const int dropout = dropout_p > 0.0f;
    __global const float *q_head = HEAD_ROWS(q, batch, head, n_query);
    __global const float *k_head = HEAD_ROWS(k, batch, head, graph_size);
    __global const float *v_head = HEAD_ROWS(v, batch, head, graph_size);

    /* This lane's A fragments of the scaled queries (rows past the end: 0). The scale includes
     * log2(e): scores, and so m, are in base 2, and the weights are 2^(s - m). */
    const float q_scale = scale * M_LOG2E_F;
    uint q_big[D_STEPS][4], q_small[D_STEPS][4];
    int q_finite[2] = {1, 1}; /* this lane's part of rows row0, row1 */
    MMA_UNROLL
    for (int s = 0; s < D_STEPS; s++) {
        MMA_UNROLL
        for (int i = 0; i < 4; i++) {
            const int row = i & 1 ? row1 : row0, dim = s * 8 + t + (i >> 1) * 4;
            const float value = row < n_query ? q_head[row * ROW_STRIDE + dim] * q_scale : 0.0f;
            q_finite[i & 1] &= isfinite(value);
            split_tf32(value, &q_big[s][i], &q_small[s][i]);
        }
    }
    float o[D_STEPS][4];
    CLEAR_FRAGMENTS(o, D_STEPS);
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}; /* l: this lane's share */

    /* Tile 0 stored, tile 1 in registers; each pass stores the next tile and fetches the one
     * after. */
    float4 k_next[RUN_LOADS], v_next[RUN_LOADS];
    fetch_tile(k_head, v_head, ROW_STRIDE, 0, graph_size, k_next, v_next);
    store_tile(k_next, v_next, ks_tiles, vs_tiles);
    if (BLOCK_K < graph_size)
        fetch_tile(k_head, v_head, ROW_STRIDE, BLOCK_K, graph_size, k_next, v_next);
    /* Global too, once: the output is written over Q, lanes storing elements of a row that other
     * lanes read above. */
    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
    for (int key0 = 0, tile = 0; key0 < graph_size; key0 += BLOCK_K, tile ^= 1) {
        /* The other tile was last read before the previous barrier: free to overwrite. */
        if (key0 + BLOCK_K < graph_size) {
            store_tile(k_next, v_next, ks_tiles + (tile ^ 1) * KS_TILE,
                       vs_tiles + (tile ^ 1) * VS_TILE);
            if (key0 + 2 * BLOCK_K < graph_size)
                fetch_tile(k_head, v_head, ROW_STRIDE, key0 + 2 * BLOCK_K, graph_size, k_next,
                           v_next);
        }
        __local const uint *ks = ks_tiles + tile * KS_TILE, *vs = vs_tiles + tile * VS_TILE;

        /* S = Q K^T; column c of each 8-block holds key sigma(c). */
        float s[K_TILES][4];
        CLEAR_FRAGMENTS(s, K_TILES);
        const int key_of_g = (g >> 1) + 4 * (g & 1);
        MMA_UNROLL
        for (int d = 0; d < D_STEPS; d++) {
            uint k_big[K_TILES][2], k_small[K_TILES][2];
            MMA_UNROLL
            for (int n = 0; n < K_TILES; n++) {
                __local const uint *kr = ks + (n * 8 + key_of_g) * KS_STRIDE + d * 8 + t;
                k_big[n][0] = kr[0];
                k_big[n][1] = kr[4];
                k_small[n][0] = kr[KS_PLANE];
                k_small[n][1] = kr[KS_PLANE + 4];
            }
            MMA_UNROLL
            for (int n = 0; n < K_TILES; n++)
                mma_3xtf32(s[n], q_big[d], q_small[d], k_big[n], k_small[n], scratch);
        }

        /* Element i of block n: row i < 2 ? row0 : row1, key key0 + 8 n + t + 4 (i % 2). Only
         * the last tile and masked forwards need the checks: rows past the end score 0 against
         * their zero queries and are never stored. */
        const int check = mask_kind != MASK_NONE || key0 + BLOCK_K > graph_size;
        /* One branch per tile here and one per 8 keys for dropout below, not one per score:
         * per-score branches and their reconvergence points slowed the whole loop. */
        if (check) {
            MMA_UNROLL
            for (int n = 0; n < K_TILES; n++) {
                MMA_UNROLL
                for (int i = 0; i < 4; i++) {
                    const int row = i < 2 ? row0 : row1, key = key0 + n * 8 + t + 4 * (i & 1);
                    if (!(key < graph_size && row < n_query &&
                          may_attend(keep, mask_kind, keep_stride, batch, head, row, key)))
                        s[n][i] = -INFINITY;
                }
            }
        }
        float tile_max[2] = {-INFINITY, -INFINITY};
        MMA_UNROLL
        for (int n = 0; n < K_TILES; n++) {
            MMA_UNROLL
            for (int i = 0; i < 4; i++)
                tile_max[i >> 1] = fmax(tile_max[i >> 1], s[n][i]);
        }
        float correction[2];
        softmax_rescale(tile_max, m, l, correction, scratch);

        /* P (dropped out where training) as the A fragments of P V, one per 8 keys. The tile's
         * P V goes into a fresh sum, added to o in float32 (mma_3xtf32). */
        float pv[D_STEPS][4];
        CLEAR_FRAGMENTS(pv, D_STEPS);
        MMA_UNROLL
        for (int n = 0; n < K_TILES; n++) {
            float p[4];
            MMA_UNROLL
            for (int i = 0; i < 4; i++) {
                /* Without checks every score, and so m, is finite: exp needs no guard. */
                p[i] = check && s[n][i] == -INFINITY ? 0.0f : softmax_exp2(s[n][i] - m[i >> 1]);
                l[i >> 1] += p[i];
            }
            if (dropout) {
                MMA_UNROLL
                for (int i = 0; i < 4; i++) {
                    const int row = i < 2 ? row0 : row1, key = key0 + n * 8 + t + 4 * (i & 1);
                    if (p[i] > 0.0f &&
                        !dropout_keeps(((size_t)bh * n_query + row) * graph_size + key, dropout_p,
                                       dropout_seed, dropout_offset))
                        p[i] = 0.0f;
                }
            }
            /* C element i (row i / 2, key t + 4 (i % 2)) is A element i / 2 + 2 (i % 2). */
            uint p_big[4], p_small[4];
            MMA_UNROLL
            for (int i = 0; i < 4; i++)
                split_tf32_truncating(p[i], &p_big[(i >> 1) + 2 * (i & 1)],
                                      &p_small[(i >> 1) + 2 * (i & 1)]);
            uint v_big[D_STEPS][2], v_small[D_STEPS][2];
            MMA_UNROLL
            for (int d = 0; d < D_STEPS; d++) {
                __local const uint *vr = vs + (n * 8 + t) * VS_STRIDE + d * 8 + g;
                v_big[d][0] = vr[0];
                v_big[d][1] = vr[4 * VS_STRIDE];
                v_small[d][0] = vr[VS_PLANE];
                v_small[d][1] = vr[VS_PLANE + 4 * VS_STRIDE];
            }
            MMA_UNROLL
            for (int d = 0; d < D_STEPS; d++)
                mma_3xtf32(pv[d], p_big, p_small, v_big[d], v_small[d], scratch);
        }
        MMA_UNROLL
        for (int d = 0; d < D_STEPS; d++) {
            MMA_UNROLL
            for (int i = 0; i < 4; i++)
                o[d][i] = MAC(o[d][i], correction[i >> 1], pv[d][i]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    MMA_UNROLL
    for (int r = 0; r < 2; r++) {
        const float inv = row_output_scale(l[r], q_finite[r], dropout_p, scratch);
        const int row = r ? row1 : row0;
        if (row >= n_query) continue;
        __global float *to = HEAD_ROWS(out, batch, head, n_query) + row * ROW_STRIDE + 2 * t;
        MMA_UNROLL
        for (int d = 0; d < D_STEPS; d++) {
            to[d * 8] = o[d][2 * r] * inv;
            to[d * 8 + 1] = o[d][2 * r + 1] * inv;
        }
    }
}
