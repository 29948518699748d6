/* Rows of HEAD_DIM floats handled as DV vectors of VW floats (float4 when HEAD_DIM allows), so
 * that local memory is read 16 bytes at a time. For attention_tiled.cl and attention_wide.cl. */
#if !defined(HEAD_DIM)
#error "row_vectors.cl is built with -D HEAD_DIM"
#endif
#if HEAD_DIM % 4 == 0
#define VW 4
typedef float4 vec;
#define LOAD(i, p)     vload4((i), (p))
#define STORE(v, i, p) vstore4((v), (i), (p))
#else
#define VW             1
typedef float vec;
#define LOAD(i, p)     ((p)[i])
#define STORE(v, i, p) ((p)[i] = (v))
#endif
#define DV (HEAD_DIM / VW)
