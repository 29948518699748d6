/* Warp-level products of half-precision operands on NVIDIA tensor cores (compute capability 8.0
 * and later): PTX mma.sync.m16n8k16 with float16 (STORAGE 1) or bfloat16 (STORAGE 2) operands and
 * float32 sums, where the host defines MHFA_PTX_MMA; elsewhere the same warp-level operation goes
 * through local memory, as in mma.cl (which comes first: CLEAR_FRAGMENTS, the quad reductions and
 * the scratch are its).
 *
 * An operand register holds two 16-bit values, the lower-numbered element in the low half.
 * Fragment layouts (PTX ISA, m16n8k16 .f16 and .bf16): lane = 4 g + t holds
 * A[g][2t, 2t + 1], A[g + 8][2t, 2t + 1], A[g][2t + 8, 2t + 9], A[g + 8][2t + 8, 2t + 9];
 * B[2t, 2t + 1][g], B[2t + 8, 2t + 9][g]; C[g][2t], C[g][2t + 1], C[g + 8][2t], C[g + 8][2t + 1].
 * The C layout of two adjacent 8-column tiles is the A layout of one 16-deep k-step, so softmax
 * weights pass from Q K^T to P V without leaving their registers. */
#if STORAGE != 1 && STORAGE != 2
#error "mma_half.cl is for half storage (STORAGE 1 or 2)"
#endif

#ifdef MHFA_PTX_MMA
#if STORAGE == 1
#define MMA_HALF_TYPE "f16"
#else
#define MMA_HALF_TYPE "bf16"
#endif

inline void mma_half(float c[4], const uint a[4], const uint b[2], __local float *scratch) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32." MMA_HALF_TYPE "." MMA_HALF_TYPE
        ".f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* lo and hi rounded to the storage type (nearest even), packed. */
inline uint pack_pair(float lo, float hi) {
    uint r;
    asm("cvt.rn." MMA_HALF_TYPE "x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
#else
/* Element i of a run of packed pairs in local memory as a float (little-endian: the low half of
 * a word is its first element, as on every OpenCL device this runs on). */
inline float half_at(__local const uint *words, int i) {
#if STORAGE == 1
    return vload_half(i, (__local const half *)words);
#else
    return as_float((uint)((__local const ushort *)words)[i] << 16);
#endif
}

/* The warp's 16x8x16 product through its own scratch (mma.cl's 192 words per warp: A as 16 rows
 * of 8 words, B as 8 columns of 8 words): every lane writes its fragments, then computes its four
 * results. The whole work-group calls it together (it has barriers). */
inline void mma_half(float c[4], const uint a[4], const uint b[2], __local float *scratch) {
    const int lane = get_local_id(0) & 31, g = lane >> 2, t = lane & 3;
    __local uint *as = (__local uint *)(scratch + (get_local_id(0) >> 5) * (16 * 8 + 8 * 8));
    __local uint *bs = as + 16 * 8;
    as[g * 8 + t] = a[0];
    as[(g + 8) * 8 + t] = a[1];
    as[g * 8 + t + 4] = a[2];
    as[(g + 8) * 8 + t + 4] = a[3];
    bs[g * 8 + t] = b[0];
    bs[g * 8 + t + 4] = b[1];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int i = 0; i < 4; i++) {
        const int row = g + (i >> 1) * 8, col = 2 * t + (i & 1);
        float s = c[i];
        for (int k = 0; k < 16; k++)
            s = MAC(half_at(as, row * 16 + k), half_at(bs, col * 16 + k), s);
        c[i] = s;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

inline uint pack_pair(float lo, float hi) {
#if STORAGE == 1
    ushort bits[2];
    vstore_half2_rte((float2)(lo, hi), 0, (half *)bits);
    return (uint)bits[0] | (uint)bits[1] << 16;
#else
    const uint2 u = as_uint2((float2)(lo, hi));
    const uint2 b = BFLOAT16_BITS(u, isnan((float2)(lo, hi)));
    return b.x | b.y << 16;
#endif
}
#endif

/* The two values of a packed pair as floats. */
inline float2 unpack_pair(uint w) {
#if STORAGE == 2
    return (float2)(as_float(w << 16), as_float(w & 0xFFFF0000u));
#elif defined(MHFA_PTX_MMA)
    float lo, hi;
    asm("{.reg .f16 l, h;\n\tmov.b32 {l, h}, %2;\n\tcvt.f32.f16 %0, l;\n\tcvt.f32.f16 %1, h;}"
        : "=f"(lo), "=f"(hi)
        : "r"(w));
    return (float2)(lo, hi);
#else
    return vload_half2(0, (const half *)&w);
#endif
}

/* Whether both values of a packed pair are finite: exponent bits not all set. */
inline int pair_finite(uint w) {
#if STORAGE == 1
    const uint exponent = 0x7C00u;
#else
    const uint exponent = 0x7F80u;
#endif
    return (w & exponent) != exponent && ((w >> 16) & exponent) != exponent;
}
