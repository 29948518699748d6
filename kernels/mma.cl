/* Warp-level float32 products on NVIDIA tensor cores (compute capability 8.0 and later), float32
 * accurate through 3xTF32: each operand is split into a TF32 part and a TF32 remainder,
 * big = tf32(v), small = tf32(v - big), and a * b is taken as a_big b_small + a_small b_big +
 * a_big b_big (the dropped a_small b_small is below float32's rounding). The products run as PTX
 * mma.sync.m16n8k8 through inline assembly where the host defines MHFA_PTX_MMA; elsewhere the same
 * warp-level operations go through local memory, so that every device (PoCL in the tests) runs the
 * tiling, fragment and edge logic that the GPU runs.
 *
 * Fragment layouts (PTX ISA, m16n8k8 .tf32): lane = 4 g + t holds A[g][t], A[g + 8][t],
 * A[g][t + 4], A[g + 8][t + 4]; B[t][g], B[t + 4][g]; C[g][2t], C[g][2t + 1], C[g + 8][2t],
 * C[g + 8][2t + 1]. Warps are 32 consecutive work-items of a one-dimensional group.
 * The including kernel defines MMA_WARPS (warps per work-group) first and passes a __local
 * scratch of MMA_SCRATCH floats; without PTX, every work-item of the group must call these
 * functions together (they have barriers). */

#ifdef MHFA_PTX_MMA
#define MMA_SCRATCH 1 /* no scratch needed */
/* Loops over fragment arrays are unrolled, or NVIDIA's compiler keeps the arrays in stack memory.
 * (Not in the emulation: there the barriers of every product would make a CPU runtime compile
 * hundreds of regions.) */
#define MMA_UNROLL   _Pragma("unroll")
#define TF32_BITS(u) (u) /* the tensor cores ignore the low 13 bits */

/* Not volatile: the compiler may interleave independent products (volatile statements would keep
 * their program order and chain every product's latency). */
inline void mma_tf32(float c[4], const uint a[4], const uint b[2], __local float *scratch) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#else
#define MMA_SCRATCH (MMA_WARPS * (16 * 8 + 8 * 8))
#define MMA_UNROLL
#define TF32_BITS(u) ((u)&0xFFFFE000u)

/* The warp's 16x8x8 product through its own scratch: every lane writes its fragments, then
 * computes its four results. The whole work-group calls it together (it has barriers). */
inline void mma_tf32(float c[4], const uint a[4], const uint b[2], __local float *scratch) {
    const int lane = get_local_id(0) & 31, g = lane >> 2, t = lane & 3;
    __local float *as = scratch + (get_local_id(0) >> 5) * (16 * 8 + 8 * 8), *bs = as + 16 * 8;
    as[g * 8 + t] = as_float(a[0]);
    as[(g + 8) * 8 + t] = as_float(a[1]);
    as[g * 8 + t + 4] = as_float(a[2]);
    as[(g + 8) * 8 + t + 4] = as_float(a[3]);
    bs[t * 8 + g] = as_float(b[0]);
    bs[(t + 4) * 8 + g] = as_float(b[1]);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int i = 0; i < 4; i++) {
        const int row = g + (i >> 1) * 8, col = 2 * t + (i & 1);
        float s = c[i];
        for (int k = 0; k < 8; k++)
            s = MAC(as[row * 8 + k], bs[k * 8 + col], s);
        c[i] = s;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}
#endif

/* fragments[0..n)[0..4) = 0 for an array of C fragments (a macro, so that the loops unroll where
 * PTX runs and the array stays in registers). */
#define CLEAR_FRAGMENTS(fragments, n)                                                              \
    MMA_UNROLL                                                                                     \
    for (int f_ = 0; f_ < (n); f_++) {                                                             \
        MMA_UNROLL                                                                                 \
        for (int i_ = 0; i_ < 4; i_++)                                                             \
            (fragments)[f_][i_] = 0.0f;                                                            \
    }

/* v as TF32 big and small parts. big is v rounded to 11 significant bits (TF32's 10 + 1) by
 * Veltkamp's splitting, c = v (2^13 + 1), big = c - (c - v), and small = v - big exactly: four
 * float instructions (Hopper runs float32 at twice its integer rate, so this beats bit masking).
 * The tensor cores read a TF32 operand's top 19 bits and ignore the rest, so small is taken
 * truncated to 10 mantissa bits (TF32_BITS masks it the same way in the emulation), and
 * big + small is within 2^-21 |v| of v. Contraction is off: c - v must not become
 * fma(v, 2^13 + 1, -v). Not for |v| above about 4e34, where c overflows (attention's values and
 * weights stay far below). */
inline void split_tf32(float v, uint *big, uint *small) {
#pragma OPENCL FP_CONTRACT OFF
    const float c = v * 8193.0f, b = c - (c - v);
    *big = as_uint(b);
    *small = TF32_BITS(as_uint(v - b));
}

/* The same parts in two instructions instead of four: big is v truncated to TF32 (its low 13
 * bits cleared), small = v - big exactly (the cleared bits), taken truncated as above; big + small
 * is again within 2^-21 |v| of v, but always on zero's side of v. Used only where the softmax
 * weights are split, in the flash kernel's hottest loop. Not for Q, K and V: the scores would
 * lean to one side, doubling the error against float64 (BENCHMARKS.md). */
inline void split_tf32_truncating(float v, uint *big, uint *small) {
    *big = as_uint(v) & 0xFFFFE000u;
    *small = TF32_BITS(as_uint(v - as_float(*big)));
}

/* c += a * b through the three TF32 products, the small ones first. The tensor cores truncate
 * their sums toward zero, so a long run of products into one c errs all one way, by an amount that
 * grows with the run (seen: 2.7e-5 off on outputs of at most 0.23, over 16384 keys). Callers
 * therefore sum each slice of a few k-steps into a fresh c and add that to their total in
 * float32: each slice's small error then falls either way. */
inline void mma_3xtf32(float c[4], const uint a_big[4], const uint a_small[4], const uint b_big[2],
                       const uint b_small[2], __local float *scratch) {
    mma_tf32(c, a_small, b_big, scratch);
    mma_tf32(c, a_big, b_small, scratch);
    mma_tf32(c, a_big, b_big, scratch);
}

/* The max and the sum over the four lanes of a quad (same g): a row of a C fragment. */
#ifdef MHFA_PTX_MMA
inline float quad_shuffle(float v, int lane_mask) {
    uint r;
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;"
                 : "=r"(r)
                 : "r"(as_uint(v)), "r"(lane_mask));
    return as_float(r);
}

inline float quad_max(float v, __local float *scratch) {
    v = fmax(v, quad_shuffle(v, 1));
    return fmax(v, quad_shuffle(v, 2));
}

inline float quad_sum(float v, __local float *scratch) {
    v += quad_shuffle(v, 1);
    return v + quad_shuffle(v, 2);
}
#else
/* The quad's four values through the warp's scratch, summed (or maxed) in lane order. */
inline float quad_reduce(float v, int take_max, __local float *scratch) {
    const int lane = get_local_id(0) & 31;
    __local float *w = scratch + (get_local_id(0) >> 5) * (16 * 8 + 8 * 8);
    w[lane] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    __local float *quad = w + (lane & ~3);
    float r = take_max ? fmax(fmax(quad[0], quad[1]), fmax(quad[2], quad[3]))
                       : (quad[0] + quad[1]) + (quad[2] + quad[3]);
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

inline float quad_max(float v, __local float *scratch) {
    return quad_reduce(v, 1, scratch);
}

inline float quad_sum(float v, __local float *scratch) {
    return quad_reduce(v, 0, scratch);
}
#endif

/* 2^x for the softmax. Where PTX runs (NVIDIA), the ex2.approx.ftz instruction alone: results
 * below 2^-126 flush to 0 (weights that small do not count), where native_exp adds a multiply by
 * log2(e) and a rescue of such results, four instructions more per weight. */
#ifdef MHFA_PTX_MMA
inline float softmax_exp2(float x) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}
#else
#define softmax_exp2(x) exp2(x)
#endif

/* The online softmax's step for a C fragment's two rows (attention_mma.cl, attention_mma_half.cl):
 * m[r] becomes the max of m[r] and the row's tile max over the quad, l[r] is rescaled to it, and
 * correction[r] is what the row's output sum must be multiplied by (1 while nothing counted). */
inline void softmax_rescale(const float tile_max[2], float m[2], float l[2], float correction[2],
                            __local float *scratch) {
    MMA_UNROLL
    for (int r = 0; r < 2; r++) {
        const float m_new = fmax(m[r], quad_max(tile_max[r], scratch));
        correction[r] = m_new == -INFINITY ? 1.0f : softmax_exp2(m[r] - m_new);
        m[r] = m_new;
        l[r] *= correction[r];
    }
}

/* What a row's output sum is multiplied by at the end: 1 / its quad's total weight (0 for a row
 * with nothing attendable), NaN for a query row that was not finite, as in PyTorch (its scores are
 * NaN, which fmax passed over); with dropout also 1 / (1 - p). */
inline float row_output_scale(float l, int query_finite, float dropout_p, __local float *scratch) {
    const float inv = softmax_inverse(quad_sum(query_finite ? l : NAN, scratch));
    return dropout_p > 0.0f ? inv / (1.0f - dropout_p) : inv;
}
