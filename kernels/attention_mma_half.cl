/* Flash attention on tensor cores for half storage (mma_half.cl), HEAD_DIM a multiple of 16.
 *
 * Each warp owns Q_TILES tiles of 16 queries of one (batch, head), so that every K and V fragment
 * it loads serves Q_TILES products. K and V pass through local memory BLOCK_K keys at a time, K
 * as stored (rows of packed pairs) and V transposed (a row per dimension), so that every fragment
 * is one 32-bit load.
 *
 * Per tile: S = Q K^T in C fragments (16 x BLOCK_K, float32), scaled; the online softmax on them
 * (a row's max over the quad's lanes); O rescaled; then O += P V with P taken from S's registers
 * (two 8-key tiles of S are one k-step of P V, mma_half.cl).
 *
 * The weights enter P V in P_PARTS parts of the storage type, p = p_1 + p_2 + ..., each the
 * rounded remainder of the ones before: 1 rounds p once (allow_reduced_math); 2 (float16's 11
 * bits twice) and 3 (bfloat16's 8 thrice) keep it to float32's precision. A query whose keys are
 * all masked keeps m = -inf and l = 0: its output is 0.
 *
 * Local memory holds two tiles: the next is stored while the current one is read, one barrier
 * per tile; loads run two tiles ahead (as in attention_mma.cl). Layouts as in attention_tiled.cl.
 * Work-group: 32 * WARPS work-items; grid:
 * (ceil(n_query / (16 * Q_TILES * WARPS)) * 32 * WARPS, batch * n_heads). */
#if !defined(HEAD_DIM) || !defined(WARPS) || !defined(Q_TILES) || !defined(BLOCK_K) ||             \
    !defined(P_PARTS)
#error "attention_mma_half.cl is built with -D HEAD_DIM, WARPS, Q_TILES, BLOCK_K and P_PARTS"
#endif
#if HEAD_DIM % 16 || BLOCK_K % 16
#error "attention_mma_half.cl needs HEAD_DIM and BLOCK_K multiples of 16"
#endif

#define MMA_WARPS WARPS
#define THREADS   (32 * WARPS)
#define Q_STEPS   (HEAD_DIM / 16) /* k-steps of Q K^T */
#define D_TILES   (HEAD_DIM / 8)  /* n-tiles of P V */
#define K_TILES   (BLOCK_K / 8)   /* n-tiles of Q K^T */
#define P_STEPS   (BLOCK_K / 16)  /* k-steps of P V */
/* Row strides in words. 4 words of padding: the lanes of a fragment load (rows g, words t) hit
 * 32 different banks, and a row stays 16-byte aligned. */
#define KS_STRIDE (HEAD_DIM / 2 + 4)
#define VT_STRIDE (BLOCK_K / 2 + 4)
#define KS_TILE   (BLOCK_K * KS_STRIDE)
#define VT_TILE   (HEAD_DIM * VT_STRIDE)
#define TILE_RUNS (BLOCK_K * HEAD_DIM / 8) /* runs of 8 values (16 bytes) in a tile */
#define RUN_LOADS ((TILE_RUNS + THREADS - 1) / THREADS)

/* This work-item's share of the tile of keys and values from key0 on: BLOCK_K rows of HEAD_DIM
 * values each, zeros past the end. A run of 8 values is 16-byte aligned (HEAD_DIM is a multiple
 * of 16, and so are the heads' offsets and the row strides). */
inline void fetch_tile(__global const stored *k_head, __global const stored *v_head,
                       size_t row_stride, int key0, int graph_size, uint4 *k_next, uint4 *v_next) {
#pragma unroll
    for (int j = 0; j < RUN_LOADS; j++) {
        const int i = get_local_id(0) + j * THREADS, r = i / (HEAD_DIM / 8);
        const int present = i < TILE_RUNS && key0 + r < graph_size;
#if ROWS_LAYOUT
        const size_t at = (size_t)(key0 + r) * row_stride + (i - r * (HEAD_DIM / 8)) * 8;
#else
        const size_t at = (size_t)key0 * HEAD_DIM + i * 8; /* the tile is one run */
#endif
        k_next[j] = present ? *(__global const uint4 *)(k_head + at) : (uint4)(0);
        v_next[j] = present ? *(__global const uint4 *)(v_head + at) : (uint4)(0);
    }
}

/* Stores what fetch_tile fetched: K's runs as they are, V's values one by one into their
 * dimensions' rows. */
inline void store_tile(const uint4 *k_next, const uint4 *v_next, __local uint *ks,
                       __local uint *vt) {
    __local ushort *vt_values = (__local ushort *)vt;
#pragma unroll
    for (int j = 0; j < RUN_LOADS; j++) {
        const int i = get_local_id(0) + j * THREADS, r = i / (HEAD_DIM / 8);
        const int c = (i - r * (HEAD_DIM / 8)) * 8;
        if (i >= TILE_RUNS) break;
        *(__local uint4 *)(ks + r * KS_STRIDE + c / 2) = k_next[j];
        const uint words[4] = {v_next[j].x, v_next[j].y, v_next[j].z, v_next[j].w};
#pragma unroll
        for (int e = 0; e < 8; e++)
            vt_values[(c + e) * 2 * VT_STRIDE + r] = (ushort)(words[e / 2] >> (16 * (e % 2)));
    }
}

/* p in P_PARTS packed parts (see the top of the file). */
inline void split_pair(float lo, float hi, uint parts[P_PARTS]) {
    MMA_UNROLL
    for (int i = 0; i < P_PARTS; i++) {
        parts[i] = pack_pair(lo, hi);
        if (i + 1 < P_PARTS) {
            const float2 taken = unpack_pair(parts[i]);
            lo -= taken.x, hi -= taken.y;
        }
    }
}

__kernel void mma_attention(ATTENTION_ARGS) {
    __local uint ks_tiles[2 * KS_TILE] __attribute__((aligned(16)));
    __local uint vt_tiles[2 * VT_TILE] __attribute__((aligned(16)));
    __local float scratch[MMA_SCRATCH];
    CHECK_LOCAL_BYTES(sizeof ks_tiles + sizeof vt_tiles + sizeof scratch);
    const int tid = get_local_id(0), lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int bh = get_group_id(1), batch = bh / n_heads, head = bh - batch * n_heads;
    /* Row r of this lane's query tile qt: rows[qt][0] (r = 0, C elements 0 and 1) or rows[qt][1].
     */
    const int first = (get_group_id(0) * WARPS + (tid >> 5)) * 16 * Q_TILES + g;
    int rows[Q_TILES][2];
    MMA_UNROLL
    for (int qt = 0; qt < Q_TILES; qt++)
        rows[qt][0] = first + 16 * qt, rows[qt][1] = first + 16 * qt + 8;
    const int dropout = dropout_p > 0.0f;
    __global const stored *q_head = HEAD_ROWS(q, batch, head, n_query);
    __global const stored *k_head = HEAD_ROWS(k, batch, head, graph_size);
    __global const stored *v_head = HEAD_ROWS(v, batch, head, graph_size);

    /* This lane's A fragments of the queries as stored (rows past the end: 0). The scale, with
     * log2(e) so that scores and m are in base 2, is applied to S in float32. */
    const float q_scale = scale * M_LOG2E_F;
    uint qf[Q_TILES][Q_STEPS][4];
    int q_finite[Q_TILES][2]; /* this lane's part of its rows */
    MMA_UNROLL
    for (int qt = 0; qt < Q_TILES; qt++) {
        q_finite[qt][0] = q_finite[qt][1] = 1;
        MMA_UNROLL
        for (int s = 0; s < Q_STEPS; s++) {
            MMA_UNROLL
            for (int i = 0; i < 4; i++) {
                const int row = rows[qt][i & 1], dim = s * 16 + 2 * t + (i >> 1) * 8;
                qf[qt][s][i] =
                    row < n_query ? *(__global const uint *)(q_head + row * ROW_STRIDE + dim) : 0u;
                q_finite[qt][i & 1] &= pair_finite(qf[qt][s][i]);
            }
        }
    }
    float o[Q_TILES][D_TILES][4];
    float m[Q_TILES][2], l[Q_TILES][2]; /* l: this lane's share */
    MMA_UNROLL
    for (int qt = 0; qt < Q_TILES; qt++) {
        CLEAR_FRAGMENTS(o[qt], D_TILES);
        m[qt][0] = m[qt][1] = -INFINITY;
        l[qt][0] = l[qt][1] = 0.0f;
    }

    uint4 k_next[RUN_LOADS], v_next[RUN_LOADS];
    fetch_tile(k_head, v_head, ROW_STRIDE, 0, graph_size, k_next, v_next);
    store_tile(k_next, v_next, ks_tiles, vt_tiles);
    if (BLOCK_K < graph_size)
        fetch_tile(k_head, v_head, ROW_STRIDE, BLOCK_K, graph_size, k_next, v_next);
    /* Global too, once: the output is written over Q, lanes storing elements of a row that other
     * lanes read above. */
    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
    for (int key0 = 0, tile = 0; key0 < graph_size; key0 += BLOCK_K, tile ^= 1) {
        /* The other tile was last read before the previous barrier: free to overwrite. */
        if (key0 + BLOCK_K < graph_size) {
            store_tile(k_next, v_next, ks_tiles + (tile ^ 1) * KS_TILE,
                       vt_tiles + (tile ^ 1) * VT_TILE);
            if (key0 + 2 * BLOCK_K < graph_size)
                fetch_tile(k_head, v_head, ROW_STRIDE, key0 + 2 * BLOCK_K, graph_size, k_next,
                           v_next);
        }
        __local const uint *ks = ks_tiles + tile * KS_TILE, *vt = vt_tiles + tile * VT_TILE;

        /* S = Q K^T: element i of tile n is row rows[qt][i / 2], key key0 + 8 n + 2 t + i % 2.
         * Each K fragment serves every query tile. */
        float s[Q_TILES][K_TILES][4];
        MMA_UNROLL
        for (int qt = 0; qt < Q_TILES; qt++) {
            CLEAR_FRAGMENTS(s[qt], K_TILES);
        }
        MMA_UNROLL
        for (int d = 0; d < Q_STEPS; d++) {
            MMA_UNROLL
            for (int n = 0; n < K_TILES; n++) {
                __local const uint *kr = ks + (n * 8 + g) * KS_STRIDE + d * 8 + t;
                const uint kf[2] = {kr[0], kr[4]};
                MMA_UNROLL
                for (int qt = 0; qt < Q_TILES; qt++)
                    mma_half(s[qt][n], qf[qt][d], kf, scratch);
            }
        }

        /* Only the last tile and masked forwards need the checks: rows past the end score 0
         * against their zero queries and are never stored. */
        const int check = mask_kind != MASK_NONE || key0 + BLOCK_K > graph_size;
        MMA_UNROLL
        for (int qt = 0; qt < Q_TILES; qt++) {
            float tile_max[2] = {-INFINITY, -INFINITY};
            MMA_UNROLL
            for (int n = 0; n < K_TILES; n++) {
                MMA_UNROLL
                for (int i = 0; i < 4; i++) {
                    const int row = rows[qt][i >> 1], key = key0 + n * 8 + 2 * t + (i & 1);
                    s[qt][n][i] *= q_scale;
                    if (check && !(key < graph_size && row < n_query &&
                                   may_attend(keep, mask_kind, keep_stride, batch, head, row, key)))
                        s[qt][n][i] = -INFINITY;
                    tile_max[i >> 1] = fmax(tile_max[i >> 1], s[qt][n][i]);
                }
            }
            float correction[2];
            softmax_rescale(tile_max, m[qt], l[qt], correction, scratch);
            MMA_UNROLL
            for (int d = 0; d < D_TILES; d++) {
                MMA_UNROLL
                for (int i = 0; i < 4; i++)
                    o[qt][d][i] *= correction[i >> 1];
            }
        }

        /* O += P V (P dropped out where training), 16 keys a k-step. */
        MMA_UNROLL
        for (int j = 0; j < P_STEPS; j++) {
            /* A register r of query tile qt: rows g (r even) or g + 8, keys 2t (r < 2) or
             * 2t + 8; in P_PARTS parts. */
            uint parts[Q_TILES][4][P_PARTS];
            MMA_UNROLL
            for (int qt = 0; qt < Q_TILES; qt++) {
                float p[2][4]; /* tiles 2j and 2j + 1 of S */
                MMA_UNROLL
                for (int h = 0; h < 2; h++) {
                    MMA_UNROLL
                    for (int i = 0; i < 4; i++) {
                        const float sv = s[qt][2 * j + h][i];
                        /* Without checks every score, and so m, is finite: exp needs no guard. */
                        p[h][i] =
                            check && sv == -INFINITY ? 0.0f : softmax_exp2(sv - m[qt][i >> 1]);
                        l[qt][i >> 1] += p[h][i];
                    }
                }
                if (dropout) { /* one branch per 16 keys, not one per weight */
                    MMA_UNROLL
                    for (int h = 0; h < 2; h++) {
                        MMA_UNROLL
                        for (int i = 0; i < 4; i++) {
                            const int row = rows[qt][i >> 1];
                            const int key = key0 + (2 * j + h) * 8 + 2 * t + (i & 1);
                            if (p[h][i] > 0.0f &&
                                !dropout_keeps(((size_t)bh * n_query + row) * graph_size + key,
                                               dropout_p, dropout_seed, dropout_offset))
                                p[h][i] = 0.0f;
                        }
                    }
                }
                MMA_UNROLL
                for (int r = 0; r < 4; r++)
                    split_pair(p[r >> 1][2 * (r & 1)], p[r >> 1][2 * (r & 1) + 1], parts[qt][r]);
            }
            MMA_UNROLL
            for (int d = 0; d < D_TILES; d++) {
                __local const uint *vr = vt + (d * 8 + g) * VT_STRIDE + j * 8 + t;
                const uint vf[2] = {vr[0], vr[4]};
                MMA_UNROLL
                for (int qt = 0; qt < Q_TILES; qt++) {
                    MMA_UNROLL
                    for (int part = P_PARTS - 1; part >= 0; part--) { /* small parts first */
                        const uint pf[4] = {parts[qt][0][part], parts[qt][1][part],
                                            parts[qt][2][part], parts[qt][3][part]};
                        mma_half(o[qt][d], pf, vf, scratch);
                    }
                }
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    MMA_UNROLL
    for (int qt = 0; qt < Q_TILES; qt++) {
        MMA_UNROLL
        for (int r = 0; r < 2; r++) {
            const float inv = row_output_scale(l[qt][r], q_finite[qt][r], dropout_p, scratch);
            const int row = rows[qt][r];
            if (row >= n_query) continue;
            __global uint *to =
                (__global uint *)(HEAD_ROWS(out, batch, head, n_query) + row * ROW_STRIDE + 2 * t);
            MMA_UNROLL
            for (int d = 0; d < D_TILES; d++)
                to[d * 4] = pack_pair(o[qt][d][2 * r] * inv, o[qt][d][2 * r + 1] * inv);
        }
    }
}
