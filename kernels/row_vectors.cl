/* Rows of HEAD_DIM floats handled as DV vectors of VW floats (float4 when HEAD_DIM allows), so
 * that local memory is read 16 bytes at a time; LOAD and STORE move vector i of a row in global
 * memory, in the storage type (common.cl). For attention_tiled.cl and attention_wide.cl. */
#if !defined(HEAD_DIM)
#error "row_vectors.cl is built with -D HEAD_DIM"
#endif
#if HEAD_DIM % 4 == 0
#define VW 4
typedef float4 vec;
#define LOAD(i, p)     READ4((p), 4 * (i))
#define STORE(v, i, p) WRITE4((v), (p), 4 * (i))
#else
#define VW             1
typedef float vec;
#define LOAD(i, p)     READ((p), (i))
#define STORE(v, i, p) WRITE((v), (p), (i))
#endif
#define DV (HEAD_DIM / VW)

/* Whether every element of a row is finite. A query row that is not gives an output row of NaN,
 * as PyTorch's does: its scores are NaN, which fmax would otherwise pass over. */
inline int row_finite(const vec *row) {
    int finite = 1;
    for (int c = 0; c < DV; c++)
#if VW == 4
        finite &= all(isfinite(row[c]));
#else
        finite &= isfinite(row[c]);
#endif
    return finite;
}
