/* The plan: which kernel runs each stage of a forward, with which parameters. plan.c decides all
 * of it, once per module (mhfa_plan_lookup: device, tuning file, built-in table) and once per
 * forward (mhfa_plan_for_forward: shapes, mask, what was built). Included by internal.h. */
#ifndef MHFA_PLAN_H
#define MHFA_PLAN_H

/* Where a choice came from, for whoever asks why (mhfa-info). */
typedef enum mhfa_plan_source {
    MHFA_FROM_TABLE = 0,  /* the built-in table (a device's row or a generic one) */
    MHFA_FROM_TUNING_FILE /* a line of the tuning file */
} mhfa_plan_source;

typedef enum mhfa_projection_variant {
    MHFA_PROJECT_NONE = 0, /* not chosen (a lookup always chooses one) */
    MHFA_PROJECT_TILED,    /* project_tiled.cl: tiles in local memory (GPUs) */
    MHFA_PROJECT_VECTOR,   /* project_vector.cl: float16 register blocks (CPUs) */
    MHFA_PROJECT_CLBLAST,  /* CLBlast's SGEMM, with layout.cl around it */
    MHFA_PROJECT_MMA       /* project_mma.cl: 3xTF32 on tensor cores (NVIDIA) */
} mhfa_projection_variant;

typedef struct mhfa_tiled_tile { /* a group's outputs: tile_m rows, tile_n columns */
    int tile_m, tile_n, tile_k;  /* tile_k: depth of one slice in local memory */
    int wpt_m, wpt_n;            /* outputs per work-item along rows and columns */
} mhfa_tiled_tile;

typedef struct mhfa_mma_tile { /* warps_m x warps_n warps, each wm rows by wn columns */
    int tile_k, warps_m, warps_n, wm, wn;
} mhfa_mma_tile;

typedef struct mhfa_vector_tile {
    int rows_per_item; /* rows of x per work-item */
    int vectors;       /* 16-column vectors of outputs per work-item */
} mhfa_vector_tile;

typedef struct mhfa_projection_choice {
    mhfa_projection_variant variant;
    mhfa_plan_source source;
    mhfa_tiled_tile tiled; /* each used by its variant only */
    mhfa_mma_tile mma;
    mhfa_vector_tile vector;
} mhfa_projection_choice;

typedef enum mhfa_attention_variant {
    MHFA_ATTEND_NONE = 0, /* not chosen: the plan says which choice applies instead */
    MHFA_ATTEND_TILED,    /* attention_tiled.cl: a query per work-item, K/V tiles in local memory */
    MHFA_ATTEND_VECTOR,   /* attention_vector.cl: 16 queries as float16 lanes (CPUs) */
    MHFA_ATTEND_MMA,      /* attention_mma.cl: 3xTF32 tensor cores, flash path only */
    MHFA_ATTEND_WIDE      /* attention_wide.cl: few keys, a whole tile of keys in local memory */
} mhfa_attention_variant;

typedef struct mhfa_attention_choice {
    mhfa_attention_variant variant;
    mhfa_plan_source source;
    int block_q;   /* tiled, wide: queries (work-items) per group */
    int block_k;   /* tiled, vector, mma: keys a step */
    int warps;     /* mma: warps per group */
    int q_tiles;   /* mma: tiles of 16 queries per warp (more than 1 for half storage only) */
    int tile_keys; /* wide: keys per tile in local memory */
    int rows;      /* Q, K, V rows-major (ROWS_LAYOUT) where the projection can write them */
} mhfa_attention_choice;

typedef enum mhfa_absorbed_mode {
    MHFA_ABSORBED_WHEN_CHEAPER = 0, /* where the cost model says it saves work */
    MHFA_ABSORBED_OFF,
    MHFA_ABSORBED_ALWAYS /* every flash-path forward it fits (tests) */
} mhfa_absorbed_mode;

typedef struct mhfa_plan { /* a module's kernels, from mhfa_plan_lookup */
    mhfa_projection_choice projection;
    mhfa_attention_choice flash;        /* the flash path */
    mhfa_attention_choice flash_masked; /* its masked forwards; NONE: the flash choice */
    mhfa_attention_choice manual;       /* the manual path (weights stored); NONE: flash */
    mhfa_attention_choice fallback;     /* where a choice does not fit the device */
    int decode_chunk;                   /* keys per work-item of attention_decode.cl */
    mhfa_plan_source decode_source;
    mhfa_absorbed_mode absorbed_mode;
    int absorbed_group, absorbed_keys; /* attention_absorbed.cl's GROUP and KEYS */
    mhfa_plan_source absorbed_source;  /* the tuning file's: a failed build is then an error */
} mhfa_plan;

/* The per-forward rules (plan.c): one or two queries against at least two chunks of keys take
 * the decode kernels; the absorbed path where it needs at most 1 / MHFA_ABSORBED_MIN_SAVING of
 * the usual multiply-adds. */
enum { MHFA_DECODE_MAX_QUERIES = 2, MHFA_DECODE_MIN_CHUNKS = 2 };
#define MHFA_ABSORBED_MIN_SAVING 2.0

/* What the mask argument of an attention kernel holds; the values are common.cl's MASK_*. */
typedef enum mhfa_mask_kind {
    MHFA_MASK_NONE = 0,
    MHFA_MASK_KEEP = 1, /* the keep mask made by mask.cl: 1 = may attend */
    MHFA_MASK_GIVEN = 2 /* the application's mask as given: nonzero = masked out */
} mhfa_mask_kind;

/* How one forward runs, from mhfa_plan_for_forward. */
typedef enum mhfa_attention_route {
    MHFA_ROUTE_KERNEL,      /* one launch of an attention kernel */
    MHFA_ROUTE_DECODE,      /* attention_decode.cl: chunks of keys in parallel, then a merge */
    MHFA_ROUTE_APPLICATION, /* the application's attention_fn */
    MHFA_ROUTE_ABSORBED     /* the whole forward after the mask in attention_absorbed.cl */
} mhfa_attention_route;

struct mhfa_attention_kernel;
typedef struct mhfa_forward_plan {
    mhfa_attention_route route;
    const struct mhfa_attention_kernel *kernel; /* MHFA_ROUTE_KERNEL's kernel */
    int rows_layout;          /* Q, K, V and the context rows-major (that kernel's layout) */
    mhfa_mask_kind mask_kind; /* how the kernels read the mask */
    int clblast;              /* the projections through CLBlast */
} mhfa_forward_plan;

#endif
