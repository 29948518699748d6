/* Attention for graphs of few keys (routing encoders: N up to a few hundred), one query per
 * work-item, BLOCK_Q queries of one (batch, head) per work-group. Keys and values pass through
 * local memory TILE_KEYS at a time, so that a graph of up to TILE_KEYS nodes is loaded once, with
 * one barrier; a work-item scores its query CHUNK keys at a time in registers (online softmax).
 * The mask is staged per tile as bits, one row of words per query: read from global memory
 * once per group, in runs along the keys.
 *   wide_attention: the flash path's output.
 *   wide_attention_with_weights (manual path): the same pass, then the weights exp(s - m) / l,
 *     recomputed from the queries in local memory and written with adjacent work-items on
 *     adjacent keys of a row. The weights are stored before dropout, the output after it.
 * A query whose keys are all masked keeps m = -inf and l = 0: its weights and output are 0.
 * Layouts as in attention_tiled.cl. Work-group: BLOCK_Q work-items (a multiple of 32, as the
 * weights are written 32 keys a step); TILE_KEYS a multiple of 32. Grid:
 * (ceil(n_query / BLOCK_Q) * BLOCK_Q, batch * n_heads). STORE_WEIGHTS picks the kernel a program
 * holds, so that each checks its own local memory. */
#if !defined(HEAD_DIM) || !defined(BLOCK_Q) || !defined(TILE_KEYS) || !defined(STORE_WEIGHTS)
#error "attention_wide.cl is built with -D HEAD_DIM, BLOCK_Q, TILE_KEYS and STORE_WEIGHTS"
#endif

#define ROW        (DV + 1) /* K's and Q's rows in local memory, in vecs: padded across banks */
#define CHUNK      8        /* keys scored at once in registers; divides 32 */
#define WORDS      (TILE_KEYS / 32)
#define TILE_LOADS ((TILE_KEYS * DV + BLOCK_Q - 1) / BLOCK_Q)
#define LANES      32 /* weights: keys written side by side (a layout, not the warp size) */
/* Keys a work-item holds in registers while it writes weights (more for short rows); a divisor
 * of WORDS, so that a step never reads past the tile. */
#define HELD_MAX (HEAD_DIM <= 16 ? 4 : HEAD_DIM <= 32 ? 2 : 1)
#define HELD     (WORDS % 4 == 0 && HELD_MAX >= 4 ? 4 : WORDS % 2 == 0 && HELD_MAX >= 2 ? 2 : 1)

/* The dot product of two rows, in the same order wherever a score is computed, so that the
 * weights' pass reproduces the first pass's scores exactly. */
inline float dot_row(const vec *a, const vec *b) {
    float s = 0.0f;
    for (int c = 0; c < DV; c++) {
#if VW == 4
        s = MAC(a[c].x, b[c].x, s);
        s = MAC(a[c].y, b[c].y, s);
        s = MAC(a[c].z, b[c].z, s);
        s = MAC(a[c].w, b[c].w, s);
#else
        s = MAC(a[c], b[c], s);
#endif
    }
    return s;
}

inline void read_row(__local const vec *from, vec *to) {
    for (int c = 0; c < DV; c++)
        to[c] = from[c];
}

/* Keys and values [k0, k0 + in_tile) into local memory, zeros past the end (a chunk's keys past
 * the end weigh 0, and 0 * garbage could be NaN). */
inline void load_keys(__local vec *ks, __local vec *vs, __global const stored *k_head,
                      __global const stored *v_head, size_t row_stride, int k0, int in_tile) {
#pragma unroll
    for (int j = 0; j < TILE_LOADS; j++) {
        const int i = get_local_id(0) + j * BLOCK_Q, r = i / DV, c = i - r * DV;
        if (i >= TILE_KEYS * DV) break;
        const size_t at = (size_t)(k0 + r) * row_stride;
        ks[r * ROW + c] = r < in_tile ? LOAD(c, k_head + at) : (vec)(0.0f);
        vs[r * DV + c] = r < in_tile ? LOAD(c, v_head + at) : (vec)(0.0f);
    }
}

/* Bits 0-3 of the result: which of x's 4 bytes are nonzero (byte 0 is bit 0). */
inline uint nonzero_bytes(uint x) {
    const uint top = nonzero_byte_tops(x);
    return ((top >> 7) & 1u) | ((top >> 14) & 2u) | ((top >> 21) & 4u) | ((top >> 28) & 8u);
}

/* bits[q][w], bit b: whether query q0 + q may attend key k0 + 32 w + b (0 past the tile). A
 * work-item makes whole words, reading 4 keep bytes at once where they are adjacent and aligned;
 * rows past n_query repeat the last row. */
inline void load_keep_bits(__local uint *bits, __global const uchar *keep, int mask_kind,
                           int4 stride, int batch, int head, int q0, int n_query, int k0,
                           int in_tile) {
    for (int i = get_local_id(0); i < BLOCK_Q * WORDS; i += BLOCK_Q) {
        const int q = i / WORDS, w = i - q * WORDS, first = 32 * w;
        const int present = clamp(in_tile - first, 0, 32);
        uint word = present == 32 ? 0xffffffffu : (1u << present) - 1u;
        if (mask_kind != MASK_NONE) {
            const int query = min(q0 + q, n_query - 1);
            const size_t at = keep_offset(stride, batch, head, query, k0 + first);
            uint nonzero = 0;
            int b = 0;
            if (stride.w == 1 && at % 4 == 0)
                for (; b + 4 <= present; b += 4)
                    nonzero |= nonzero_bytes(*(__global const uint *)(keep + at + b)) << b;
            for (; b < present; b++)
                nonzero |= (keep[at + (size_t)b * stride.w] != 0 ? 1u : 0u) << b;
            /* as may_attend (common.cl) reads it */
            word &= mask_kind == MASK_KEEP ? nonzero : ~nonzero;
        }
        bits[i] = word;
    }
}

/* One query against the tile in local memory: the online softmax over chunks of keys. */
inline void attend_tile(const vec *qr, __local const vec *ks, __local const vec *vs,
                        __local const uint *my_bits, int in_tile, vec *acc, float *m, float *l,
                        int dropout, float dropout_p, ulong dropout_seed, ulong dropout_offset,
                        ulong first_weight) {
    for (int c0 = 0; c0 < in_tile; c0 += CHUNK) {
        const uint allowed = my_bits[c0 / 32] >> (c0 % 32);
        float s[CHUNK], chunk_max = -INFINITY;
        int any_nan = 0; /* fmax passes over NaN: attendable NaN scores must give NaN */
        for (int r = 0; r < CHUNK; r++) {
            vec kr[DV];
            read_row(ks + (c0 + r) * ROW, kr);
            const float score = dot_row(qr, kr);
            s[r] = (allowed >> r) & 1u ? score : -INFINITY;
            chunk_max = fmax(chunk_max, s[r]);
            any_nan |= isnan(s[r]);
        }
        const float m_new = any_nan ? NAN : fmax(*m, chunk_max); /* NaN: l and acc NaN */
        if (m_new == -INFINITY) continue; /* nothing attendable yet: exp(-inf - -inf) is NaN */
        const float correction = SOFTMAX_EXP(*m - m_new);
        *l *= correction;
        for (int c = 0; c < DV; c++)
            acc[c] *= correction;
        for (int r = 0; r < CHUNK; r++) { /* masked and past the end: s = -inf, p = 0 */
            float p = SOFTMAX_EXP(s[r] - m_new);
            *l += p;
            if (dropout && c0 + r < in_tile &&
                !dropout_keeps(first_weight + c0 + r, dropout_p, dropout_seed, dropout_offset))
                p = 0.0f;
            for (int c = 0; c < DV; c++)
                acc[c] = MAC((vec)(p), vs[(c0 + r) * DV + c], acc[c]);
        }
        *m = m_new;
    }
}

/* This work-item's query, scaled, into qr; with keep_rows the group's queries also into qs.
 * With ROWS_LAYOUT a query's row is a short piece every n_heads * HEAD_DIM floats, and the group
 * reads them into qs together, adjacent work-items on a row's adjacent vectors. Rows past n_query
 * are zeros: the last row is overwritten by its output (the output is written over Q), and no
 * fence orders that store after these loads. */
inline void read_queries(vec *qr, __local vec *qs, int keep_rows, __global const stored *q_head,
                         size_t row_stride, int q0, int n_query, float scale) {
    const int lid = get_local_id(0);
#if ROWS_LAYOUT
    for (int i = lid; i < BLOCK_Q * DV; i += BLOCK_Q) {
        const int r = i / DV, c = i - r * DV;
        qs[r * ROW + c] = q0 + r < n_query ? LOAD(c, q_head + (size_t)(q0 + r) * row_stride) * scale
                                           : (vec)(0.0f);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    read_row(qs + lid * ROW, qr);
#else
    const size_t at = (size_t)(q0 + lid) * row_stride;
    for (int c = 0; c < DV; c++) {
        qr[c] = q0 + lid < n_query ? LOAD(c, q_head + at) * scale : (vec)(0.0f);
        if (keep_rows) qs[lid * ROW + c] = qr[c];
    }
#endif
}

/* The group's outputs acc / l (and / (1 - p) with dropout), none past n_query. With ROWS_LAYOUT
 * they go through os (local memory no longer read, os_row vectors a row) and out together, as
 * read_queries reads. */
inline void write_outputs(const vec *acc, float l, int dropout, float dropout_p, __local vec *os,
                          int os_row, __global stored *out_head, size_t row_stride, int q0,
                          int n_query) {
    const int lid = get_local_id(0);
    float inv = softmax_inverse(l);
    if (dropout) inv /= 1.0f - dropout_p;
#if ROWS_LAYOUT
    barrier(CLK_LOCAL_MEM_FENCE); /* os is no longer read */
    for (int c = 0; c < DV; c++)
        os[lid * os_row + c] = acc[c] * inv;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int i = lid; i < min(BLOCK_Q, n_query - q0) * DV; i += BLOCK_Q) {
        const int r = i / DV, c = i - r * DV;
        STORE(os[r * os_row + c], c, out_head + (size_t)(q0 + r) * row_stride);
    }
#else
    if (q0 + lid >= n_query) return;
    for (int c = 0; c < DV; c++)
        STORE(acc[c] * inv, c, out_head + (size_t)(q0 + lid) * row_stride);
#endif
}

/* Where one work-item's query lies: its place in the group, the group's first query, the
 * (batch, head), its row's first weight, and the head's keys and values. */
typedef struct wide_place {
    int lid, q0, bh, batch, head;
    int finite; /* the scaled query row is: else the output row is NaN */
    ulong weight_row;
    size_t row_stride; /* ROW_STRIDE, which needs n_heads */
    __global const stored *k_head, *v_head;
} wide_place;

/* The setup both kernels share: the place, the scaled query in qr (with keep_rows the group's
 * queries in qs too), acc cleared. */
inline wide_place setup_wide(__global const stored *q, __global const stored *k,
                             __global const stored *v, int n_heads, int n_query, int graph_size,
                             float scale, __local vec *qs, int keep_rows, vec *qr, vec *acc) {
    wide_place at;
    at.lid = get_local_id(0);
    at.q0 = get_group_id(0) * BLOCK_Q;
    at.bh = get_group_id(1);
    at.batch = at.bh / n_heads;
    at.head = at.bh - at.batch * n_heads;
    const int row = min(at.q0 + at.lid, n_query - 1); /* idle work-items: the last row */
    at.weight_row = ((ulong)at.bh * n_query + row) * graph_size;
    at.row_stride = ROW_STRIDE;
    at.k_head = HEAD_ROWS(k, at.batch, at.head, graph_size);
    at.v_head = HEAD_ROWS(v, at.batch, at.head, graph_size);
    read_queries(qr, qs, keep_rows, HEAD_ROWS(q, at.batch, at.head, n_query), ROW_STRIDE, at.q0,
                 n_query, scale);
    for (int c = 0; c < DV; c++)
        acc[c] = (vec)(0.0f);
    at.finite = row_finite(qr);
    return at;
}

/* Every tile of keys through attend_tile; the last stays in local memory. */
inline void attend_all_tiles(wide_place at, __local vec *ks, __local vec *vs, __local uint *bits,
                             __global const uchar *keep, int mask_kind, int4 keep_stride,
                             int n_query, int graph_size, const vec *qr, vec *acc, float *m,
                             float *l, float dropout_p, ulong dropout_seed, ulong dropout_offset) {
    const int dropout = dropout_p > 0.0f;
    for (int k0 = 0; k0 < graph_size; k0 += TILE_KEYS) {
        const int in_tile = min(TILE_KEYS, graph_size - k0);
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is no longer read */
        load_keys(ks, vs, at.k_head, at.v_head, at.row_stride, k0, in_tile);
        load_keep_bits(bits, keep, mask_kind, keep_stride, at.batch, at.head, at.q0, n_query, k0,
                       in_tile);
        barrier(CLK_LOCAL_MEM_FENCE);
        attend_tile(qr, ks, vs, bits + at.lid * WORDS, in_tile, acc, m, l, dropout, dropout_p,
                    dropout_seed, dropout_offset, at.weight_row + k0);
    }
}

#if !STORE_WEIGHTS
__kernel void wide_attention(ATTENTION_ARGS) {
    __local vec ks[TILE_KEYS * ROW], vs[TILE_KEYS * DV], qs[ROWS_LAYOUT ? BLOCK_Q * ROW : 1];
    __local uint bits[BLOCK_Q * WORDS];
    /* qs of one vector where unused: the host counts none */
    CHECK_LOCAL_BYTES(sizeof ks + sizeof vs + (ROWS_LAYOUT ? sizeof qs : 0) + sizeof bits);
    vec qr[DV], acc[DV];
    float m = -INFINITY, l = 0.0f;
    const int dropout = dropout_p > 0.0f;
    const wide_place at =
        setup_wide(q, k, v, n_heads, n_query, graph_size, scale, qs, ROWS_LAYOUT, qr, acc);
    attend_all_tiles(at, ks, vs, bits, keep, mask_kind, keep_stride, n_query, graph_size, qr, acc,
                     &m, &l, dropout_p, dropout_seed, dropout_offset);
    if (!at.finite) l = NAN;
    write_outputs(acc, l, dropout, dropout_p, qs, ROW, HEAD_ROWS(out, at.batch, at.head, n_query),
                  ROW_STRIDE, at.q0, n_query);
}

#else
/* weights: [batch][n_heads][n_query][graph_size]. The outputs are written before the weights
 * (keeping them in registers through the weights' loop cost registers), with ROWS_LAYOUT
 * through the values' tile, which the weights do not read, where it holds BLOCK_Q rows; else
 * last, through qs. */
#define OUTPUTS_FIRST (!ROWS_LAYOUT || TILE_KEYS >= BLOCK_Q)

__kernel void wide_attention_with_weights(ATTENTION_ARGS, __global float *weights) {
    __local vec ks[TILE_KEYS * ROW], vs[TILE_KEYS * DV], qs[BLOCK_Q * ROW];
    __local uint bits[BLOCK_Q * WORDS];
    vec qr[DV], acc[DV];
    float m = -INFINITY, l = 0.0f;
    const int dropout = dropout_p > 0.0f;
    const wide_place at = setup_wide(q, k, v, n_heads, n_query, graph_size, scale, qs, 1, qr, acc);
    __local float row_max[BLOCK_Q], row_inv[BLOCK_Q];
    CHECK_LOCAL_BYTES(sizeof ks + sizeof vs + sizeof qs + sizeof bits + sizeof row_max +
                      sizeof row_inv);
    attend_all_tiles(at, ks, vs, bits, keep, mask_kind, keep_stride, n_query, graph_size, qr, acc,
                     &m, &l, dropout_p, dropout_seed, dropout_offset);
    if (!at.finite) m = l = NAN; /* the weights and the output NaN */
    row_max[at.lid] = m;
    row_inv[at.lid] = softmax_inverse(l);
    if (OUTPUTS_FIRST)
        write_outputs(acc, l, dropout, dropout_p, vs, DV,
                      HEAD_ROWS(out, at.batch, at.head, n_query), ROW_STRIDE, at.q0, n_query);

    /* The weights, tile by tile (the last is still in local memory): work-item (group, lane)
     * holds keys kb + lane + LANES h (h < HELD) and writes them for queries group,
     * group + BLOCK_Q / LANES, ... */
    /* Unsigned (lid >= 0): for the signed pair of / and % LLVM inserts a freeze, an instruction
     * Oclgrind 21.10 cannot run. */
    const int lane = (uint)at.lid % LANES, group = (uint)at.lid / LANES;
    const int rows = min(BLOCK_Q, n_query - at.q0);
    const int tiles = (graph_size + TILE_KEYS - 1) / TILE_KEYS;
    __global float *block = weights + ((size_t)at.bh * n_query + at.q0) * graph_size;
    for (int t = 0; t < tiles; t++) {
        const int k0 = t * TILE_KEYS, in_tile = min(TILE_KEYS, graph_size - k0);
        barrier(CLK_LOCAL_MEM_FENCE); /* row_max, row_inv written; the tile no longer read */
        if (tiles > 1) {
            load_keys(ks, vs, at.k_head, at.v_head, ROW_STRIDE, k0, in_tile);
            load_keep_bits(bits, keep, mask_kind, keep_stride, at.batch, at.head, at.q0, n_query,
                           k0, in_tile);
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        for (int kb = 0; kb < in_tile; kb += LANES * HELD) {
            vec kr[HELD][DV];
            for (int h = 0; h < HELD; h++)
                read_row(ks + (kb + h * LANES + lane) * ROW, kr[h]);
            for (int qi = group; qi < rows; qi += BLOCK_Q / LANES) {
                vec qv[DV];
                read_row(qs + qi * ROW, qv);
                const float top = row_max[qi], inv = row_inv[qi];
                __global float *to = block + (size_t)qi * graph_size + k0 + kb + lane;
                for (int h = 0; h < HELD; h++) {
                    const int key = kb + h * LANES + lane;
                    if (key >= in_tile) break;
                    const int allowed = (bits[qi * WORDS + key / 32] >> lane) & 1u;
                    const float s = dot_row(qv, kr[h]);
                    to[h * LANES] = allowed && top != -INFINITY ? SOFTMAX_EXP(s - top) * inv : 0.0f;
                }
            }
        }
    }
    if (!OUTPUTS_FIRST)
        write_outputs(acc, l, dropout, dropout_p, qs, ROW,
                      HEAD_ROWS(out, at.batch, at.head, n_query), ROW_STRIDE, at.q0, n_query);
}
#endif
