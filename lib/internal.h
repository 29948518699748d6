/* Definitions shared by the library's source files; nothing here is exported. */
#ifndef MHFA_INTERNAL_H
#define MHFA_INTERNAL_H

#include "mhfa.h"
#include "plan.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* After the system headers: the tests' fault build routes allocations and OpenCL calls through
 * counting wrappers (nothing in the shipped library). */
#include "fault_hook.h"

/* ---- what the library knows about its device ---- */
typedef struct mhfa_device_info {
    char platform_name[256];
    char device_name[256];
    char driver_version[128];
    char device_version[128];
    cl_device_type type;
    size_t max_work_group_size;
    cl_ulong local_mem_size;
    cl_ulong max_alloc_size;
    cl_ulong global_mem_size;
    cl_uint compute_units;
    int compiler_available;
    int hardware_fma; /* fused multiply-add in hardware: kernels use fma() (MHFA_HARDWARE_FMA) */
    int nv_compute_major; /* NVIDIA's compute capability (0 elsewhere); >= 8: PTX mma.sync TF32 */
} mhfa_device_info;

/* ---- compiled programs, kept for the context's lifetime ---- */
typedef struct mhfa_program_entry {
    char *key; /* source names and build options */
    cl_program program;
    struct mhfa_program_entry *next;
} mhfa_program_entry;

struct mhfa_context {
    cl_context cl_ctx;
    cl_device_id device;
    cl_command_queue queue;
    int out_of_order;
    mhfa_device_info info;
    mhfa_program_entry *programs;
    char *message; /* last failure, owned */
};

/* Records a failure on ctx (printf-style message) and returns status. */
mhfa_status mhfa_fail(const mhfa_context *ctx, mhfa_status status, const char *fmt, ...);
/* Same for an OpenCL error code: names the call and the code; maps allocation codes to
 * MHFA_ERROR_OUT_OF_MEMORY. */
mhfa_status mhfa_fail_cl(const mhfa_context *ctx, cl_int err, const char *what);
void mhfa_clear_error(const mhfa_context *ctx);
void mhfa_release_message(mhfa_context *ctx);
const char *mhfa_cl_error_name(cl_int err);

/* ---- device selection (device_spec.c, context.c) ---- */
typedef struct mhfa_spec_part {
    int is_index; /* 1: index holds the value; 0: text is a substring to look for */
    long index;
    char text[128];
} mhfa_spec_part;
/* Splits "PLATFORM[:DEVICE]"; an empty part means index 0. Returns 0, or -1 on malformed text
 * (a part longer than the buffer, more than one ':'). */
int mhfa_parse_device_spec(const char *spec, mhfa_spec_part *platform, mhfa_spec_part *device);
/* Whether a name matches a part at position i (case-insensitive substring, or the index). */
int mhfa_spec_part_matches(const mhfa_spec_part *part, long i, const char *name);
/* Whether needle occurs in haystack, ignoring ASCII case (an empty needle always does). */
int mhfa_contains_ignoring_case(const char *haystack, const char *needle);
mhfa_status mhfa_query_device_info(cl_device_id device, mhfa_device_info *info);

/* ---- kernel sources (embedded at build time) and programs (programs.c, binary_cache.c) ---- */
/* The embedded text of kernels/NAME.cl, or NULL. */
const char *mhfa_embedded_kernel(const char *name);
/* Builds (or finds in the context's list) the program made of the named .cl files in order,
 * with the given options. A failed build puts its log into the context's message. */
mhfa_status mhfa_get_program(mhfa_context *ctx, const char *const *names, int n_names,
                             const char *options, cl_program *program);
mhfa_status mhfa_create_kernel(mhfa_context *ctx, cl_program program, const char *name,
                               cl_kernel *kernel);
/* Disk cache of program binaries: returns a built program or NULL when there is none. */
cl_program mhfa_binary_cache_load(const mhfa_context *ctx, const char *key_text);
void mhfa_binary_cache_store(const mhfa_context *ctx, const char *key_text, cl_program program);
uint64_t mhfa_hash64(const void *data, size_t size, uint64_t seed);

/* The cache folder (MHFA_CACHE_DIR, else under XDG_CACHE_HOME or HOME); 0 when off or unnamed. */
int mhfa_cache_dir(char *dir, size_t size);

/* ---- the plan (plan.c; its types in plan.h) ---- */
/* The module's kernels for head_dim and storage type on this device: the tuning file, then the
 * built-in table. */
void mhfa_plan_lookup(const mhfa_context *ctx, int head_dim, mhfa_dtype dtype, mhfa_plan *plan);
/* The tuning file the lookup reads (MHFA_TUNING_FILE, else tuning.txt in the cache folder) into
 * path; 0 when none is named (the cache folder off). The file need not exist. */
int mhfa_plan_tuning_file(char *path, size_t size);
/* Tiled projection size number i (largest first) for where the chosen projection does not fit;
 * 0 past the last. */
int mhfa_plan_tiled_fallback(size_t i, mhfa_tiled_tile *tile);
/* How a forward of these sizes runs on module m (after its kernels are built). */
mhfa_forward_plan mhfa_plan_for_forward(const mhfa_module *m, int n_query, int graph_size,
                                        int masked, int output_may_alias);

/* ---- Philox4x32-10 (philox.c): the generator of init_parameters and dropout ---- */
void mhfa_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);
/* Uniform in [0, 1) from 24 bits of one output word. */
float mhfa_uniform24(uint32_t word);
/* The dropout decision for weight number position (linear index into [B][H][Nq][Nk]): 1 keeps. */
int mhfa_dropout_keeps(uint64_t position, float p, uint64_t seed, uint64_t offset);

/* ---- the module ---- */
typedef struct mhfa_buffer { /* a device buffer that grows on demand */
    cl_mem mem;
    size_t bytes;
} mhfa_buffer;
mhfa_status mhfa_buffer_reserve(mhfa_context *ctx, mhfa_buffer *buf, size_t bytes);
void mhfa_buffer_release(mhfa_buffer *buf);

typedef struct mhfa_attention_kernel {
    cl_kernel kernel; /* the variant's flash kernel, or its _with_weights twin on the manual path */
    mhfa_attention_variant variant;
    size_t block_q;  /* queries per work-group (tiled, wide, mma; not vector) */
    size_t group;    /* work-items per group (tiled, wide, mma) */
    int rows_layout; /* 1: built with ROWS_LAYOUT (common.cl): Q, K, V and output rows-major */
} mhfa_attention_kernel;

typedef struct mhfa_kernels { /* built per module for its head_dim, as its plan says */
    cl_kernel project_to_heads, project_to_rows, mask_to_keep;
    mhfa_attention_kernel attention;
    mhfa_attention_kernel attention_masked; /* for masked forwards where planned apart (else its
                                               kernel is NULL) */
    mhfa_projection_variant projection;     /* the one built */
    cl_kernel project_rows; /* rows-major to rows-major (tiled and mma kernels), else NULL */
    cl_kernel rows_to_heads, heads_to_rows, add_bias; /* around CLBlast's SGEMM */
    size_t projection_local[2]; /* work-group shape (vector: of work-items of a block each) */
    size_t projection_tile[2];  /* outputs (columns, rows) one group (tiled) or item covers */
    cl_kernel decode_partial, decode_merge; /* attention_decode.cl (flash path), or NULL */
    cl_kernel absorbed;    /* attention_absorbed.cl (flash path), or NULL where it does not fit */
    size_t absorbed_group; /* its work-group size */
} mhfa_kernels;

struct mhfa_module {
    mhfa_context *ctx;
    mhfa_config cfg;
    int head_dim;
    float *host_weight[4], *host_bias[4]; /* mirrors of what the device holds */
    cl_mem in_t, in_bias;   /* [input_dim][3 * embed_dim]: W_query^T | W_key^T | W_val^T */
    cl_mem out_t, out_bias; /* [embed_dim][embed_dim]: W_out^T; biases NULL without bias */
    cl_mem key_rows;        /* W_key as given, [embed_dim][input_dim], for the absorbed path */
    mhfa_plan plan;         /* the kernels chosen for it (plan.c) */
    mhfa_kernels kernels;
    int training;
    uint64_t dropout_seed, dropout_offset;
    /* scratch, reused by each forward */
    mhfa_buffer q_heads, k_heads, v_heads, context, keep, weights, gemm_rows, partials;
    mhfa_buffer host_q, host_h, host_mask, host_out; /* staging for mhfa_forward */
    /* the last manual-path forward: weights and its mask (as keep) */
    mhfa_buffer stored_weights, stored_keep;
    int stored_valid, stored_dims[4], stored_mask_ndim, stored_mask_dims[4];
};

/* ---- forward_limits.c: the device memory a forward needs ---- */
typedef struct mhfa_scratch_sizes { /* bytes per scratch buffer; 0: not needed */
    size_t q_heads, k_heads, v_heads, context, keep, weights;
} mhfa_scratch_sizes;
mhfa_scratch_sizes mhfa_scratch_sizes_for(const mhfa_module *m, int batch, int n_query,
                                          int graph_size, size_t mask_count, int values_elsewhere);
/* MHFA_ERROR_OUT_OF_MEMORY, with the size asked and the limit, where a buffer the forward needs
 * (host_copies: also mhfa_forward's staging copies) exceeds CL_DEVICE_MAX_MEM_ALLOC_SIZE or the
 * module would then hold more than CL_DEVICE_GLOBAL_MEM_SIZE; checked before any allocation. */
mhfa_status mhfa_check_forward_limits(const mhfa_module *m, int batch, int n_query, int graph_size,
                                      size_t mask_count, int host_copies);

/* Builds the kernels the module's plan names (module_kernels.c). */
mhfa_status mhfa_build_module_kernels(mhfa_module *m);
void mhfa_release_module_kernels(mhfa_kernels *k);

/* ---- building kernels (kernel_build.c) ---- */
enum { MHFA_MAX_SOURCES = 4 }; /* kernel sources of one program, after common.cl */
/* Builds common.cl + the named sources (at most MHFA_MAX_SOURCES) with options, and creates the
 * named kernels. */
mhfa_status mhfa_build_kernels(mhfa_context *ctx, const char *const *sources, int n_sources,
                               const char *options, const char *const *names,
                               cl_kernel *const *kernels, int n_kernels);
/* Whether a work-group of group_size items using local_bytes of local memory fits the device
 * (checked before building), and whether it fits the built kernel's own limits. */
int mhfa_group_fits_device(const mhfa_context *ctx, size_t group_size, size_t local_bytes);
int mhfa_kernel_fits(const mhfa_context *ctx, cl_kernel kernel, size_t group_size);
void mhfa_release_kernel(cl_kernel *kernel); /* and sets it to NULL */

typedef struct mhfa_kernel_build { /* kernels of one program, to be launched in groups of group */
    const char *sources[MHFA_MAX_SOURCES]; /* after common.cl */
    int n_sources;
    const char *options;
    const char *names[3];
    cl_kernel *kernels[3];
    int n_kernels;
    size_t group;       /* work-items per group */
    size_t local_bytes; /* the local memory a group uses, by the kernel's formula */
} mhfa_kernel_build;
/* Builds b's kernels where its group and local memory fit the device, and keeps them where the
 * group fits every kernel's own limit: *fits says so. Not fitting is no failure; a failed build
 * is. */
mhfa_status mhfa_build_if_fits(mhfa_context *ctx, const mhfa_kernel_build *b, int *fits);

/* The application's attention_fn replaces the built-in core, except on the manual path. */
static inline int mhfa_uses_application_core(const mhfa_config *cfg) {
    return cfg->attention_fn && !cfg->store_attn_weights;
}

/* The built-in flash core (not the manual path, not the application's). */
static inline int mhfa_uses_flash_core(const mhfa_config *cfg) {
    return !cfg->attention_fn && !cfg->store_attn_weights;
}

/* Tensor-core products through inline PTX (project_mma.cl with MHFA_PTX_MMA). */
static inline int mhfa_has_ptx_mma(const mhfa_context *ctx) {
    return ctx->info.nv_compute_major >= 8;
}

/* Whether native_exp is NVIDIA's ex2.approx (a few ulp, exp(-inf) = 0): any NVIDIA GPU. */
static inline int mhfa_has_native_exp(const mhfa_context *ctx) {
    return ctx->info.nv_compute_major > 0;
}

static inline int mhfa_is_cpu(const mhfa_context *ctx) {
    return (ctx->info.type & CL_DEVICE_TYPE_CPU) != 0;
}

/* "W_query", "W_key", "W_val" or "W_out": PyTorch's attribute names. */
const char *mhfa_projection_name(mhfa_projection which);
/* Sets all four projections (biases NULL without bias), or on failure none: the device copies are
 * rewritten from the host mirrors. */
mhfa_status mhfa_module_replace_weights(mhfa_module *m, const float *const weight[4],
                                        const float *const bias[4]);

/* ---- the weights as the kernels read them (device_weights.c) ---- */
mhfa_status mhfa_device_weights_alloc(mhfa_module *m);
void mhfa_device_weights_release(mhfa_module *m);
size_t mhfa_device_weights_bytes(const mhfa_module *m);
mhfa_status mhfa_device_weights_write(mhfa_module *m, mhfa_projection which, const float *weight,
                                      const float *bias);

/* A mask checked against the forward's shape: keep dims and element strides (0 = broadcast).
 * Only for a mask that was given: ndim must be 2, 3 or 4. */
typedef struct mhfa_mask_layout {
    int ndim;    /* as given: 0 none, 2, 3, 4 */
    int dims[4]; /* as given */
    int keep_dims[4];
    int strides[4];
    size_t count;        /* elements in the given mask */
    mhfa_mask_kind kind; /* how the kernels read it (the forward's plan says) */
} mhfa_mask_layout;
mhfa_status mhfa_mask_layout_make(const mhfa_context *ctx, int ndim, const int *dims, int batch,
                                  int n_heads, int n_query, int graph_size,
                                  mhfa_mask_layout *layout);

/* ---- enqueueing (enqueue.c) ---- */
/* Enqueues an NDRange and, on an out-of-order queue, a barrier after it. */
mhfa_status mhfa_enqueue(mhfa_context *ctx, cl_kernel kernel, cl_uint dims, const size_t *global,
                         const size_t *local, const char *what);
/* Sets the kernel's arguments in order; each pair is (size, pointer). */
mhfa_status mhfa_set_args(mhfa_context *ctx, cl_kernel kernel, const char *what, int count, ...);
#define MHFA_ARG(x) sizeof(x), (const void *)&(x)
size_t mhfa_round_up(size_t n, size_t multiple);

/* ---- the forward's stages (attention.c, projection_clblast.c) ---- */
/* Projections through CLBlast (projection_clblast.c). */
int mhfa_clblast_available(void);
mhfa_status mhfa_clblast_project_inputs(mhfa_module *m, int batch, int n_query, int graph_size,
                                        cl_mem q, cl_mem h);
mhfa_status mhfa_clblast_project_output(mhfa_module *m, int batch, int n_query, cl_mem context,
                                        cl_mem out);

/* The absorbed path (absorbed.c): the kernel's build as the plan sizes it, and the forward
 * (everything after the mask; key_in is the query input for self-attention). */
mhfa_status mhfa_build_absorbed(mhfa_module *m);
mhfa_status mhfa_absorbed_forward(mhfa_module *m, const mhfa_attention_args *a,
                                  const mhfa_mask_layout *mask, cl_mem query_in, cl_mem key_in,
                                  cl_mem out);

/* The mask arguments every attention kernel takes (ATTENTION_ARGS in common.cl, and the absorbed
 * kernel): the buffer (a valid one when there is no mask), how to read it and the element
 * strides. */
typedef struct mhfa_keep_args {
    cl_mem keep;
    cl_int mask_kind; /* mhfa_mask_kind */
    cl_int4 stride;
} mhfa_keep_args;
mhfa_keep_args mhfa_keep_args_of(const mhfa_module *m, const mhfa_attention_args *a,
                                 const mhfa_mask_layout *mask);
/* Enqueues the built-in core the forward's plan names (a kernel or the decode kernels); weights
 * NULL: the flash path, else the manual path writing them there. */
mhfa_status mhfa_attention(mhfa_module *m, const mhfa_forward_plan *plan,
                           const mhfa_attention_args *a, const mhfa_mask_layout *mask,
                           cl_mem weights);

/* ---- safetensors weights files (safetensors_read.c, safetensors_write.c, float_formats.c) ---- */
typedef enum mhfa_st_dtype {
    MHFA_ST_F32,
    MHFA_ST_F16,
    MHFA_ST_BF16,
    MHFA_ST_F64,
    MHFA_ST_OTHER /* a dtype the format knows (its size checked) that mhfa cannot convert */
} mhfa_st_dtype;

typedef struct mhfa_st_tensor {    /* one entry of a checked header */
    const char *name, *dtype_name; /* point into the parsed header */
    mhfa_st_dtype dtype;
    int ndim; /* the shape's length; only the first 4 dims are kept */
    uint64_t shape[4];
    uint64_t begin, end; /* byte offsets in the data area, begin <= end <= its size */
} mhfa_st_tensor;

typedef struct mhfa_st_file { /* an open file whose whole header has been checked */
    FILE *stream;
    const char *path;
    uint64_t data_start, data_size;
    struct cJSON *header;
    const struct cJSON *metadata; /* the "__metadata__" object, or NULL */
    mhfa_st_tensor *tensors;      /* sorted by name */
    size_t n_tensors;
} mhfa_st_file;

/* Opens path and checks its header: sizes, JSON syntax, every entry's dtype, shape and offsets
 * (inside the data area, matching the shape's size, no two tensors sharing a byte), no
 * duplicate names. MHFA_ERROR_IO if it cannot be opened or read, MHFA_ERROR_FORMAT otherwise;
 * on failure nothing stays open. */
mhfa_status mhfa_st_open(const mhfa_context *ctx, const char *path, mhfa_st_file *file);
/* The same for a stream open for reading (a file, or memory through fmemopen) of size bytes; name
 * stands for it in messages and must outlive the file. The file takes the stream: closed on
 * failure or by mhfa_st_close. */
mhfa_status mhfa_st_open_stream(const mhfa_context *ctx, FILE *stream, uint64_t size,
                                const char *name, mhfa_st_file *file);
void mhfa_st_close(mhfa_st_file *file);
const mhfa_st_tensor *mhfa_st_find(const mhfa_st_file *file, const char *name);
/* The metadata's string value for key, or NULL when absent or not a string. */
const char *mhfa_st_metadata(const mhfa_st_file *file, const char *key);
/* Reads a tensor of a convertible dtype as float32 into out (numel floats). */
mhfa_status mhfa_st_read_floats(const mhfa_context *ctx, const mhfa_st_file *file,
                                const mhfa_st_tensor *tensor, float *out);

typedef struct mhfa_st_output { /* a float32 tensor to write */
    const char *name;
    const float *data;
    int ndim; /* 1 or 2 */
    uint64_t shape[2];
} mhfa_st_output;
/* Writes the tensors (in that order, contiguous) and string metadata pairs {key, value} to path
 * through a temporary file renamed over it: path changes whole or not at all. */
mhfa_status mhfa_st_write(const mhfa_context *ctx, const char *path, const mhfa_st_output *tensors,
                          int n_tensors, const char *const (*metadata)[2], int n_metadata);

typedef struct mhfa_host_weights { /* the four projections read from a file */
    float *weight[4], *bias[4];    /* biases NULL without bias */
} mhfa_host_weights;
/* Reads and checks the four projections of a weights file under prefix (weights_file.c), for
 * the config *cfg or, with config_from_file, the one the file describes (then written to *cfg).
 * Touches no device; on failure w holds nothing. */
mhfa_status mhfa_weights_file_read(const mhfa_context *ctx, const char *path, const char *prefix,
                                   int config_from_file, mhfa_config *cfg, mhfa_host_weights *w);
void mhfa_host_weights_free(mhfa_host_weights *w); /* (init_parameters.c) */
/* The weights mhfa_module_init_parameters(m, seed) gives a module of config cfg
 * (init_parameters.c); MHFA_ERROR_OUT_OF_MEMORY, with w holding nothing, if they do not fit. */
mhfa_status mhfa_initial_weights(const mhfa_config *cfg, uint64_t seed, mhfa_host_weights *w);

float mhfa_half_to_float(uint16_t h);
float mhfa_bfloat16_to_float(uint16_t b);
/* Rounded to nearest, ties to even; overflow gives infinity, NaN stays NaN (quiet). */
uint16_t mhfa_float_to_half(float f);
uint16_t mhfa_float_to_bfloat16(float f);
/* count values of dtype from little-endian bytes into float32. */
void mhfa_decode_floats(mhfa_st_dtype dtype, const unsigned char *bytes, size_t count, float *out);
void mhfa_encode_float32_le(const float *values, size_t count, unsigned char *bytes);

/* ---- the storage type on the host (storage.c) ---- */
/* The build option that picks common.cl's storage type (STORAGE), with a trailing space; "" for
 * float32. First in every kernel build's options. */
const char *mhfa_storage_option(mhfa_dtype dtype);
void mhfa_to_storage(mhfa_dtype dtype, const float *from, size_t count, void *to);
void mhfa_from_storage(mhfa_dtype dtype, const void *from, size_t count, float *to);
void mhfa_round_to_storage(mhfa_dtype dtype, float *values, size_t count); /* in place */
/* count floats as the dtype stores them: from itself for float32 (*owned NULL), else a new array,
 * also in *owned for the caller to free; NULL when out of host memory. */
const void *mhfa_storage_copy(mhfa_dtype dtype, const float *from, size_t count, void **owned);

#endif
