/* Shared by every mhfa kernel: float rules and the dropout generator.
 *
 * Contraction is off: a fused (a*b - m) in the softmax would subtract the running max from an
 * unrounded product, so the largest score could give exp(> 0) and logits near 1e4 would lose
 * three digits. Multiply-adds that may fuse are written with MAC on purpose: fma() where the
 * device has it in hardware (the host passes MHFA_HARDWARE_FMA from CL_DEVICE_SINGLE_FP_CONFIG). */
#pragma OPENCL FP_CONTRACT OFF

#if defined(FP_FAST_FMAF) || defined(MHFA_HARDWARE_FMA)
#define MAC(a, b, acc) fma((a), (b), (acc))
#else
#define MAC(a, b, acc) ((a) * (b) + (acc))
#endif

/* exp for the softmax. Where the host passes MHFA_NATIVE_EXP (NVIDIA GPUs), native_exp: there it
 * is the ex2.approx instruction (a few ulp; exp(-inf) = 0), against a longer sequence for exp,
 * with the same error against float64. Elsewhere native_exp's accuracy is the
 * implementation's choice, so exp. */
#ifdef MHFA_NATIVE_EXP
#define SOFTMAX_EXP(x) native_exp(x)
#else
#define SOFTMAX_EXP(x) exp(x)
#endif

/* 1 / l for a row's softmax sum: 0 where nothing was attendable (l = 0), NaN where the sum is
 * NaN (a test l > 0 would turn that into 0, a finite row for NaN inputs). */
inline float softmax_inverse(float l) {
    return l == 0.0f ? 0.0f : 1.0f / l;
}

/* The host computes a kernel's local memory before it builds it (to skip a build the device
 * cannot hold) and passes it as LOCAL_BYTES; a kernel with __local arrays checks here, at compile
 * time, that they take exactly that, so the host's formula and the arrays cannot drift apart. */
#define CHECK_LOCAL_BYTES(used)                                                                    \
    typedef char local_arrays_differ_from_the_host_formula[(used) == LOCAL_BYTES ? 1 : -1]

/* Philox4x32-10; lib/philox.c is its host twin and must give the same numbers. */
inline uint4 philox4x32_10(uint4 c, uint2 k) {
    for (int round = 0; round < 10; round++) {
        uint hi0 = mul_hi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        uint hi1 = mul_hi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
        k += (uint2)(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

/* Whether dropout keeps weight number `position` of [B][H][Nq][Nk] (1) or zeroes it (0). */
inline int dropout_keeps(ulong position, float p, ulong seed, ulong offset) {
    ulong block = position >> 2;
    uint4 r =
        philox4x32_10((uint4)((uint)block, (uint)(block >> 32), (uint)offset, (uint)(offset >> 32)),
                      (uint2)((uint)seed, (uint)(seed >> 32)));
    /* Oclgrind keeps whole bytes when it truncates an integer, so the switch on two bits that the
     * compiler made of a four-way ?: chain took the wrong words there: two two-way choices. */
    const uint lane = (uint)(position & 3);
    const uint2 pair = lane < 2 ? r.xy : r.zw;
    const uint word = (lane & 1) != 0 ? pair.y : pair.x;
    return (float)(word >> 8) * (1.0f / 16777216.0f) >= p;
}

/* How weights and activations are stored in global memory (-D STORAGE; lib/storage.c is the
 * host's twin): 0 float32; 1 float16 through vload_half and vstore_half, which need no
 * cl_khr_fp16; 2 bfloat16, the top 16 bits of a float32, in a ushort. Arithmetic and local memory
 * are float32 in every case. READ*(p, i) give the floats at elements i.. of p; WRITE*(v, p, i)
 * store them there, rounded to nearest even (NaN stays NaN, overflow gives infinity). */
#ifndef STORAGE
#define STORAGE 0
#endif
#if STORAGE == 0
typedef float stored;
#define READ(p, i)       ((p)[i])
#define READ4(p, i)      vload4(0, (p) + (i))
#define READ16(p, i)     vload16(0, (p) + (i))
#define WRITE(v, p, i)   ((p)[i] = (v))
#define WRITE4(v, p, i)  vstore4((v), 0, (p) + (i))
#define WRITE16(v, p, i) vstore16((v), 0, (p) + (i))
#elif STORAGE == 1
typedef half stored;
#define READ(p, i)       vload_half(0, (p) + (i))
#define READ4(p, i)      vload_half4(0, (p) + (i))
#define READ16(p, i)     vload_half16(0, (p) + (i))
#define WRITE(v, p, i)   vstore_half_rte((v), 0, (p) + (i))
#define WRITE4(v, p, i)  vstore_half4_rte((v), 0, (p) + (i))
#define WRITE16(v, p, i) vstore_half16_rte((v), 0, (p) + (i))
#elif STORAGE == 2
typedef ushort stored;
/* The bfloat16 bits of float bits u: rounded to nearest even, or where nan (a NaN) its top half
 * made quiet. For uint and uintN alike (nan: isnan's int or intN). */
#define BFLOAT16_BITS(u, nan)                                                                      \
    select(((u) + 0x7fffu + (((u) >> 16) & 1u)) >> 16, ((u) >> 16) | 0x40u, nan)
#define READ(p, i)      as_float((uint)(p)[i] << 16)
#define READ4(p, i)     as_float4(convert_uint4(vload4(0, (p) + (i))) << 16)
#define READ16(p, i)    as_float16(convert_uint16(vload16(0, (p) + (i))) << 16)
#define WRITE(v, p, i)  ((p)[i] = (ushort)BFLOAT16_BITS(as_uint(v), isnan(v)))
#define WRITE4(v, p, i) vstore4(convert_ushort4(BFLOAT16_BITS(as_uint4(v), isnan(v))), 0, (p) + (i))
#define WRITE16(v, p, i)                                                                           \
    vstore16(convert_ushort16(BFLOAT16_BITS(as_uint16(v), isnan(v))), 0, (p) + (i))
#else
#error "STORAGE is 0 (float32), 1 (float16) or 2 (bfloat16)"
#endif

/* Four floats at p, where the caller knows p is 16-byte aligned: the vector pointer says so,
 * which vload4 and vstore4 may not assume (NVIDIA's compiler made each of those four 4-byte
 * accesses; project_mma.cl and attention_mma.cl say what the 16-byte ones saved). */
#define LOAD4(p)     (*(__global const float4 *)(p))
#define STORE4(v, p) (*(__global float4 *)(p) = (v))
/* The four values at element i of p, where the caller knows the run is aligned to its size:
 * LOAD4 and STORE4 for float32, READ4 and WRITE4 otherwise. */
#if STORAGE == 0
#define READ4_ALIGNED(p, i)     LOAD4((p) + (i))
#define WRITE4_ALIGNED(v, p, i) STORE4((v), (p) + (i))
#else
#define READ4_ALIGNED(p, i)     READ4((p), (i))
#define WRITE4_ALIGNED(v, p, i) WRITE4((v), (p), (i))
#endif

/* Each byte of x as its top bit: set where the byte is nonzero (the low 7 bits carry into it),
 * all other bits clear. Four mask bytes tested at once (mask.cl, attention_wide.cl). */
inline uint nonzero_byte_tops(uint x) {
    return (((x & 0x7f7f7f7fu) + 0x7f7f7f7fu) | x) & 0x80808080u;
}

/* The mask's byte for query `query` and key `key` of (batch, head). */
inline size_t keep_offset(int4 stride, int batch, int head, int query, int key) {
    return (size_t)batch * stride.x + (size_t)head * stride.y + (size_t)query * stride.z +
           (size_t)key * stride.w;
}

/* What an attention kernel's mask argument holds (mhfa_mask_kind on the host): nothing, the keep
 * mask (1 = may attend), or the application's mask as given (nonzero = masked out). */
#define MASK_NONE  0
#define MASK_KEEP  1
#define MASK_GIVEN 2

/* Whether key `key` may be attended by query `query` of (batch, head). The strides are 0 along
 * broadcast dimensions. */
inline int may_attend(__global const uchar *keep, int mask_kind, int4 stride, int batch, int head,
                      int query, int key) {
    if (mask_kind == MASK_NONE) return 1;
    const int nonzero = keep[keep_offset(stride, batch, head, query, key)] != 0;
    return mask_kind == MASK_KEEP ? nonzero : !nonzero;
}

/* The per-head tensors (q, k, v and the attention's output) are [batch][n_heads][len][HEAD_DIM],
 * or with ROWS_LAYOUT [batch][len][n_heads][HEAD_DIM], each position's heads side by side: the
 * tiled projection wrote that faster at head_dim 16, but kernels that load a head's rows at once
 * read it slower, so a tuning line chooses it per kernel. HEAD_ROWS is a head's
 * first row and ROW_STRIDE the step from one of its rows to the next; both need n_heads. */
#ifndef ROWS_LAYOUT
#define ROWS_LAYOUT 0
#endif
#if ROWS_LAYOUT
#define ROW_STRIDE ((size_t)n_heads * HEAD_DIM)
#define HEAD_ROWS(p, batch, head, len)                                                             \
    ((p) + ((size_t)(batch) * (size_t)(len)*n_heads + (size_t)(head)) * HEAD_DIM)
#else
#define ROW_STRIDE ((size_t)HEAD_DIM)
#define HEAD_ROWS(p, batch, head, len)                                                             \
    ((p) + ((size_t)(batch)*n_heads + (size_t)(head)) * (size_t)(len)*HEAD_DIM)
#endif

/* The argument list every attention kernel starts with (attention_tiled.cl, attention_vector.cl;
 * lib/attention.c sets them): q, k, v as HEAD_ROWS lays them out, the keep mask, the output. */
#define ATTENTION_ARGS                                                                             \
    __global const stored *q, __global const stored *k, __global const stored *v,                  \
        __global const uchar *keep, int mask_kind, int4 keep_stride, __global stored *out,         \
        int n_heads, int n_query, int graph_size, float scale, float dropout_p,                    \
        ulong dropout_seed, ulong dropout_offset
