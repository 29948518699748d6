/* mhfa: PyTorch's MultiHeadFlashAttention layer on any OpenCL device.
 *
 * This header is the reference for every function (docs/api.md gives the overview, and
 * docs/semantics.md what the layer computes). Every function checks its arguments and returns a
 * status; on failure the context's message says why and nothing the call was to change has
 * changed.
 *
 * Threads. The library keeps no shared state that changes: contexts made on different threads, and
 * everything made from them, may be used at the same time with no locking. One context and its
 * modules must be used by one thread at a time (calls on them are not synchronised; a context may
 * move to another thread between calls). Host inputs that a call only reads (weights, q, h, masks)
 * may be read by several threads' calls at once. mhfa_last_create_error is per thread. Several
 * threads and processes may share one kernel-cache folder: its files appear whole or not at all.
 */
#ifndef MHFA_H
#define MHFA_H

#include <stddef.h>
#include <stdint.h>

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#if defined(_WIN32)
#define MHFA_API
#elif defined(MHFA_BUILDING_LIBRARY)
#define MHFA_API __attribute__((visibility("default")))
#else
#define MHFA_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version and status ---- */
#define MHFA_VERSION_MAJOR  0
#define MHFA_VERSION_MINOR  2
#define MHFA_VERSION_PATCH  0
#define MHFA_VERSION_STRING "0.2.0"
MHFA_API const char *mhfa_version_string(void);

typedef enum mhfa_status {
    MHFA_SUCCESS = 0,
    MHFA_ERROR_INVALID_ARGUMENT =
        -1, /* NULL where a value is required, non-positive size, p outside [0,1) */
    MHFA_ERROR_INVALID_SHAPE =
        -2, /* embed_dim % n_heads != 0, mask dims that do not fit, sizes that overflow */
    MHFA_ERROR_DEVICE_NOT_FOUND = -3, /* no OpenCL platform, or the device spec matched nothing */
    MHFA_ERROR_BUILD_FAILED =
        -4, /* a kernel did not compile; the build log is in the context's message */
    MHFA_ERROR_OPENCL =
        -5, /* any other OpenCL call failed; its cl_int is in the context's message */
    MHFA_ERROR_OUT_OF_MEMORY = -6, /* host or device allocation failed */
    MHFA_ERROR_IO = -7,            /* a file could not be opened, read or written */
    MHFA_ERROR_FORMAT = -8,        /* a weights file is malformed or does not fit the module */
    MHFA_ERROR_UNSUPPORTED = -9,   /* the device lacks something this call needs */
    MHFA_ERROR_NOT_AVAILABLE =
        -10 /* nothing stored: last attention asked for before a manual-path forward */
} mhfa_status;
/* Static text for every value, "unknown status" otherwise. */
MHFA_API const char *mhfa_status_string(mhfa_status status);

/* ---- context: one OpenCL device, its queue and compiled kernels ---- */
typedef struct mhfa_context mhfa_context;

/* device_spec: NULL or "" = the environment variable MHFA_DEVICE, and if that is unset the first
 * GPU, else the first device of any kind. Spec syntax "PLATFORM[:DEVICE]": each part an index or a
 * case-insensitive substring of the platform name (resp. device name); an empty part means 0.
 * Examples: "0", "0:1", "pocl", "nvidia:h100", ":1". No match: MHFA_ERROR_DEVICE_NOT_FOUND and a
 * message that lists the devices there are. On failure *ctx is set to NULL; a message is then
 * available through mhfa_last_create_error(). */
MHFA_API mhfa_status mhfa_context_create(const char *device_spec, mhfa_context **ctx);
/* Use the application's own queue (and its context and device); retained, released on destroy.
 * An out-of-order queue is accepted: mhfa orders its own commands with barriers. */
MHFA_API mhfa_status mhfa_context_create_from_queue(cl_command_queue queue, mhfa_context **ctx);
MHFA_API void mhfa_context_destroy(mhfa_context *ctx); /* NULL is a no-op */
MHFA_API const char *mhfa_context_device_name(const mhfa_context *ctx);
MHFA_API cl_command_queue mhfa_context_queue(const mhfa_context *ctx);
MHFA_API cl_context mhfa_context_cl_context(const mhfa_context *ctx);
MHFA_API cl_device_id mhfa_context_device(const mhfa_context *ctx);
/* Text of the last failure on this context (OpenCL code, build log, what was wrong with an
 * argument). Owned by the context, valid until its next call; "" before any failure. */
MHFA_API const char *mhfa_context_error_message(const mhfa_context *ctx);
/* Why the last mhfa_context_create* on this thread failed (there is no context to hold it). */
MHFA_API const char *mhfa_last_create_error(void);

/* ---- module: one MultiHeadFlashAttention layer ---- */
typedef struct mhfa_module mhfa_module;

/* How weights, activations and the buffers of mhfa_forward_enqueue are stored. Arithmetic is
 * float32 in every case; half storage halves the bytes moved. */
typedef enum mhfa_dtype { MHFA_FLOAT32 = 0, MHFA_FLOAT16 = 1, MHFA_BFLOAT16 = 2 } mhfa_dtype;

typedef struct mhfa_attention_args { /* what a replacement attention core receives */
    cl_mem q, k, v;   /* [batch][n_heads][len][head_dim] in the module's dtype, contiguous */
    cl_mem keep;      /* NULL, or uchar, 1 = may attend, laid out [keep_dims[0]]..[keep_dims[3]] */
    int keep_dims[4]; /* each equals batch, n_heads, n_query, graph_size resp., or 1 (broadcast) */
    cl_mem out;       /* [batch][n_heads][n_query][head_dim] in the dtype, to be written */
    int batch, n_heads, n_query, graph_size, head_dim;
    float scale;     /* 1/sqrt(head_dim) */
    float dropout_p; /* 0 unless training */
    uint64_t dropout_seed, dropout_offset;
    mhfa_dtype dtype; /* the module's: how q, k, v and out are stored */
} mhfa_attention_args;
/* A replacement core enqueues its work on queue (in order after mhfa's own commands; an
 * out-of-order queue is fenced by mhfa before and after the call) and returns MHFA_SUCCESS, or a
 * status that mhfa_forward passes on. */
typedef mhfa_status (*mhfa_attention_fn)(void *user_data, cl_command_queue queue,
                                         const mhfa_attention_args *args);

typedef struct mhfa_config {
    int n_heads, input_dim, embed_dim;
    int val_dim, key_dim;    /* compatibility only, ignored */
    int bias;                /* nonzero: the four projections have a bias */
    float attention_dropout; /* in [0, 1) */
    int store_attn_weights;  /* nonzero: manual path, keeps the last attention weights */
    mhfa_attention_fn
        attention_fn; /* NULL: the built-in flash kernel (unused on the manual path) */
    void *attention_fn_data;
    mhfa_dtype dtype;       /* storage of weights, activations and the cl_mem buffers of
                               mhfa_forward_enqueue (default MHFA_FLOAT32); mhfa_forward's host arrays
                               stay float32 whatever the dtype (converted on the way in and out) */
    int allow_reduced_math; /* 0 (default): products exact to float32, sums in float32. Nonzero:
                               products may be in the storage type (TF32 for MHFA_FLOAT32), as
                               PyTorch's reduced-precision paths do */
} mhfa_config;
/* The constructor's defaults: bias 1, dropout 0, store 0, no replacement core, float32 storage,
 * no reduced math. */
MHFA_API mhfa_config mhfa_config_default(int n_heads, int input_dim, int embed_dim);

/* Checks the config, allocates the weights on the device and initialises them as
 * mhfa_module_init_parameters(module, 0) would. The context must outlive the module. */
MHFA_API mhfa_status mhfa_module_create(mhfa_context *ctx, const mhfa_config *cfg,
                                        mhfa_module **module);
MHFA_API void mhfa_module_destroy(mhfa_module *module); /* NULL is a no-op */
MHFA_API mhfa_status mhfa_module_init_parameters(mhfa_module *module, uint64_t seed);
/* Bytes of device memory the module holds now: weights plus the scratch its forwards grew (the
 * most a forward of the sizes seen so far needs; inputs and outputs of mhfa_forward_enqueue are
 * the application's and not counted). */
MHFA_API mhfa_status mhfa_module_device_bytes(const mhfa_module *m, size_t *bytes);
/* Copies out the configuration the module was created with. */
MHFA_API mhfa_status mhfa_module_get_config(const mhfa_module *m, mhfa_config *cfg);

typedef enum mhfa_projection { MHFA_W_QUERY, MHFA_W_KEY, MHFA_W_VAL, MHFA_W_OUT } mhfa_projection;
/* weight: [out_features][in_features] row-major, as PyTorch nn.Linear stores it; bias:
 * [out_features], must be NULL when the module has no bias and non-NULL when it has. get copies out
 * the same layout: the values the module holds, rounded to its dtype (to nearest, ties to even). */
MHFA_API mhfa_status mhfa_module_set_projection(mhfa_module *m, mhfa_projection which,
                                                const float *weight, const float *bias);
MHFA_API mhfa_status mhfa_module_get_projection(const mhfa_module *m, mhfa_projection which,
                                                float *weight, float *bias);

/* ---- weights files (safetensors, as PyTorch's safetensors package writes them) ---- */
/* Reads the four projections from a safetensors file: tensors named prefix + "W_query.weight",
 * prefix + "W_query.bias", ... prefix + "W_out.bias" (prefix NULL or "" for none, or a state_dict
 * path such as "encoder.layers.0.attn."). dtype F32, F16, BF16 or F64, converted to float32;
 * shapes [embed_dim][input_dim] for W_query, W_key, W_val, [embed_dim][embed_dim] for W_out,
 * [embed_dim] for each bias, present exactly when the module has a bias. Other tensors are
 * ignored. NaN and infinite weights are taken as they are (PyTorch takes them too). A missing or
 * misshapen tensor or a malformed file: MHFA_ERROR_FORMAT, the message naming the tensor or the
 * fault; a file that cannot be opened or read: MHFA_ERROR_IO. On failure the module is unchanged.
 */
MHFA_API mhfa_status mhfa_module_load(mhfa_module *m, const char *path, const char *prefix);
/* Writes the four projections as F32 tensors under those names, with __metadata__ {"format":
 * "mhfa", "n_heads", "input_dim", "embed_dim", "bias"} (decimal strings). The file appears whole
 * or not at all: it is written to a temporary file beside path, then renamed over path. */
MHFA_API mhfa_status mhfa_module_save(const mhfa_module *m, const char *path, const char *prefix);
/* A module whose config comes from the file: n_heads from __metadata__ (required: without it,
 * MHFA_ERROR_FORMAT, and the message says to create the module and call mhfa_module_load),
 * input_dim and embed_dim from the tensors' shapes, bias from whether the biases are there; the
 * other fields as mhfa_config_default sets them. Then loaded as mhfa_module_load would. On
 * failure *module is NULL. */
MHFA_API mhfa_status mhfa_module_create_from_file(mhfa_context *ctx, const char *path,
                                                  const char *prefix, mhfa_module **module);

/* training: nonzero enables dropout (when p > 0). seed: the dropout stream; each forward in
 * training mode advances an offset, so two forwards differ and the same seed replays the same
 * sequence. */
MHFA_API mhfa_status mhfa_module_set_training(mhfa_module *m, int training, uint64_t seed);

/* ---- forward ---- */
typedef struct mhfa_mask {
    const unsigned char *data; /* nonzero = masked out, as the PyTorch module's boolean mask */
    int ndim;                  /* 2: [batch][graph_size]; 3: [batch][n_query][graph_size];
                                  4: [batch][n_heads][n_query][graph_size], a dim of 1 broadcasts */
    int dims[4];               /* the first ndim entries are used */
} mhfa_mask;

/* Blocking, on host arrays (row-major float32):
 * q [batch][n_query][input_dim]; h [batch][graph_size][input_dim] or NULL for self-attention
 * (then graph_size must equal n_query); mask NULL for none; out [batch][n_query][embed_dim].
 * With half storage, q and h are rounded to the dtype on the way in, as the device stores them. */
MHFA_API mhfa_status mhfa_forward(mhfa_module *m, int batch, int n_query, int graph_size,
                                  const float *q, const float *h, const mhfa_mask *mask,
                                  float *out);

/* The same mask on the device: data is a buffer of uchar (nonzero = masked out) laid out as in
 * mhfa_mask, read during the forward. */
typedef struct mhfa_mask_buffer {
    cl_mem data;
    int ndim;
    int dims[4];
} mhfa_mask_buffer;

/* Non-blocking forward on the application's buffers, in the context's queue (same layouts as
 * mhfa_forward, in the module's dtype: float32, or 16-bit float16 or bfloat16 elements; offset
 * 0): q, h (NULL for self-attention), mask (NULL for none), out.
 * The forward starts after the num_wait events in wait_list; if event is not NULL it receives an
 * event that completes with the forward (release it with clReleaseEvent). The buffers must stay
 * alive and unchanged until then, and out is not to be read before: the forward may keep
 * intermediate values there (out may be q itself, for a forward in place). The module's scratch
 * buffers are reused by the next forward on the same module, so forwards on one module are
 * ordered by the queue. On failure no event is made and the module is unchanged, but commands
 * enqueued before the failure may still run: out's contents are then unspecified (the other
 * buffers are only read). */
MHFA_API mhfa_status mhfa_forward_enqueue(mhfa_module *m, int batch, int n_query, int graph_size,
                                          cl_mem q, cl_mem h, const mhfa_mask_buffer *mask,
                                          cl_mem out, cl_uint num_wait, const cl_event *wait_list,
                                          cl_event *event);

/* ---- storage types on the host ---- */
/* For mhfa_forward_enqueue's buffers: count float32 values as dtype stores them (MHFA_FLOAT16 and
 * MHFA_BFLOAT16: 2 bytes each, in the host's byte order, rounded to nearest even, NaN kept as a
 * quiet NaN; MHFA_FLOAT32: copied), and back. MHFA_ERROR_INVALID_ARGUMENT for another dtype or a
 * NULL array when count > 0 (there is no context for a message). */
MHFA_API mhfa_status mhfa_dtype_encode(mhfa_dtype dtype, const float *values, size_t count,
                                       void *stored);
MHFA_API mhfa_status mhfa_dtype_decode(mhfa_dtype dtype, const void *stored, size_t count,
                                       float *values);
/* Bytes per element of dtype (4 or 2), 0 for a value that is no dtype. */
MHFA_API size_t mhfa_dtype_bytes(mhfa_dtype dtype);

/* ---- last attention (manual path) ---- */
/* dims receives {batch, n_heads, n_query, graph_size} of the last forward; weights (may be NULL to
 * ask for dims only) receives [batch][n_heads][n_query][graph_size] float32 if capacity (in floats)
 * suffices, else MHFA_ERROR_INVALID_ARGUMENT. MHFA_ERROR_NOT_AVAILABLE when no manual-path forward
 * has run. */
MHFA_API mhfa_status mhfa_module_last_attention(const mhfa_module *m, int dims[4], float *weights,
                                                size_t capacity);
/* The mask of that forward, as it was given: *ndim receives 0 when it had none, else 2, 3 or 4 and
 * dims its first *ndim sizes; data (may be NULL) receives the product of those sizes in bytes
 * (1 = masked out) if capacity suffices, else MHFA_ERROR_INVALID_ARGUMENT. MHFA_ERROR_NOT_AVAILABLE
 * when no manual-path forward has run. */
MHFA_API mhfa_status mhfa_module_last_mask(const mhfa_module *m, int *ndim, int dims[4],
                                           unsigned char *data, size_t capacity);

#ifdef __cplusplus
}
#endif

#endif /* MHFA_H */
