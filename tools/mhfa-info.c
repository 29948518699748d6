/* mhfa-info: every OpenCL platform and device, the MHFA_DEVICE spec that selects each, its limits
 * and features, which device the default picks, and the kernels the library's plan chooses there
 * for a routing-sized layer. --check also runs a second of forwards per device against the
 * float64 reference (tests/reference.c); --json prints one JSON document instead of text. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include "random_data.h"
#include "reference.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The layer the plan is shown for: a routing encoder's attention (head_dim 16). */
enum { HEADS = 8, INPUT_DIM = 128, EMBED_DIM = 128 };
static const double CHECK_SECONDS = 1.0, CHECK_TOLERANCE = 1e-5;

/* OpenCL 2.1's CL_DEVICE_MAX_NUM_SUB_GROUPS (the headers are used at version 1.2). */
#define DEVICE_MAX_NUM_SUB_GROUPS 0x105C

typedef struct options {
    int json, check;
    const char *device_spec; /* NULL: every device */
} options;

typedef struct kernel_choice {
    char kind[16];   /* "" where there is none */
    char words[320]; /* what the kernel is and its sizes */
} kernel_choice;

typedef struct plan_summary {
    int head_dim;
    kernel_choice projection, attention, attention_masked, decode, absorbed;
} plan_summary;

typedef struct check_result {
    int passed;
    double max_error; /* max |out - ref| / max(1, max |ref|) over the forwards run */
    int forwards;
    double seconds;
    char failure[1024]; /* "" when passed */
} check_result;

typedef struct device_report {
    char spec[32];
    char name[256], vendor[256], device_version[256], driver_version[256], c_version[256];
    char type[64], subgroups[64]; /* subgroups: how they are offered, "" when not */
    cl_uint compute_units;
    cl_ulong global_mem, local_mem, max_alloc;
    size_t max_work_group;
    int fp16, fp64, is_default;
    int spec_selects_it; /* mhfa_context_create(spec) gave this very device */
    char error[2048];    /* why there is no plan ("" when there is one) */
    int has_plan, checked;
    plan_summary plan;
    check_result check;
} device_report;

typedef struct totals {
    int devices;
    int failures; /* checks that failed, and devices the tool could not inspect (out of memory) */
} totals;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---- what OpenCL says about a device ---- */

static void query_device_text(cl_device_id id, cl_device_info what, char *text, size_t size) {
    if (clGetDeviceInfo(id, what, size, text, NULL) != CL_SUCCESS) snprintf(text, size, "?");
    text[size - 1] = '\0';
}

/* A number; 0 where the query fails (printed as such). */
static void query_device_value(cl_device_id id, cl_device_info what, size_t size, void *value) {
    if (clGetDeviceInfo(id, what, size, value, NULL) != CL_SUCCESS) memset(value, 0, size);
}

static void query_platform_text(cl_platform_id id, cl_platform_info what, char *text, size_t size) {
    if (clGetPlatformInfo(id, what, size, text, NULL) != CL_SUCCESS) snprintf(text, size, "?");
    text[size - 1] = '\0';
}

/* The extension list, allocated ("" when it cannot be read); NULL only when out of memory. */
static char *device_extensions(cl_device_id id) {
    size_t size = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, 0, NULL, &size) != CL_SUCCESS) size = 0;
    char *text = malloc(size + 1);
    if (!text) return NULL;
    if (size == 0 || clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, size, text, NULL) != CL_SUCCESS)
        size = 0;
    text[size] = '\0';
    return text;
}

/* Whether the space-separated list holds the name as a whole word. */
static int has_extension(const char *list, const char *name) {
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len) {
        int starts = p == list || p[-1] == ' ';
        int ends = p[len] == '\0' || p[len] == ' ';
        if (starts && ends) return 1;
    }
    return 0;
}

static void describe_type(cl_device_type type, char *text, size_t size) {
    static const struct {
        cl_device_type bit;
        const char *name;
    } names[] = {{CL_DEVICE_TYPE_CPU, "CPU"},
                 {CL_DEVICE_TYPE_GPU, "GPU"},
                 {CL_DEVICE_TYPE_ACCELERATOR, "accelerator"},
                 {CL_DEVICE_TYPE_CUSTOM, "custom"}};
    text[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(type & names[i].bit)) continue;
        size_t used = strlen(text);
        snprintf(text + used, size - used, "%s%s", used ? "+" : "", names[i].name);
    }
    if (!text[0]) snprintf(text, size, "other (0x%llx)", (unsigned long long)type);
}

/* Subgroups through an extension, or in core from OpenCL 2.1 where the device has any. */
static void describe_subgroups(cl_device_id id, const char *extensions, const char *version,
                               char *text, size_t size) {
    int major = 0, minor = 0;
    cl_uint most = 0;
    text[0] = '\0';
    if (has_extension(extensions, "cl_khr_subgroups")) {
        snprintf(text, size, "cl_khr_subgroups");
    } else if (has_extension(extensions, "cl_intel_subgroups")) {
        snprintf(text, size, "cl_intel_subgroups");
    } else if (sscanf(version, "OpenCL %d.%d", &major, &minor) == 2 &&
               (major > 2 || (major == 2 && minor >= 1)) &&
               clGetDeviceInfo(id, DEVICE_MAX_NUM_SUB_GROUPS, sizeof most, &most, NULL) ==
                   CL_SUCCESS &&
               most > 0) {
        snprintf(text, size, "core, up to %u a work-group", most);
    }
}

static void read_device_properties(cl_device_id id, device_report *r) {
    query_device_text(id, CL_DEVICE_NAME, r->name, sizeof r->name);
    query_device_text(id, CL_DEVICE_VENDOR, r->vendor, sizeof r->vendor);
    query_device_text(id, CL_DEVICE_VERSION, r->device_version, sizeof r->device_version);
    query_device_text(id, CL_DRIVER_VERSION, r->driver_version, sizeof r->driver_version);
    query_device_text(id, CL_DEVICE_OPENCL_C_VERSION, r->c_version, sizeof r->c_version);
    cl_device_type type = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof type, &type, NULL) != CL_SUCCESS) type = 0;
    describe_type(type, r->type, sizeof r->type);
    query_device_value(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof r->compute_units, &r->compute_units);
    query_device_value(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof r->global_mem, &r->global_mem);
    query_device_value(id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof r->local_mem, &r->local_mem);
    query_device_value(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof r->max_alloc, &r->max_alloc);
    query_device_value(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof r->max_work_group,
                       &r->max_work_group);
    cl_device_fp_config fp64 = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL) != CL_SUCCESS)
        fp64 = 0;
    char *extensions = device_extensions(id);
    const char *list = extensions ? extensions : "";
    r->fp16 = has_extension(list, "cl_khr_fp16");
    r->fp64 = fp64 != 0 || has_extension(list, "cl_khr_fp64");
    describe_subgroups(id, list, r->device_version, r->subgroups, sizeof r->subgroups);
    free(extensions);
}

/* ---- what the library makes of a device ---- */

static void trim_trailing_space(char *text) {
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
}

/* The device mhfa_context_create(spec) picks (NULL spec: the default rule); NULL on failure, with
 * the reason in error. */
static cl_device_id device_chosen_by(const char *spec, char *error, size_t size) {
    mhfa_context *ctx = NULL;
    mhfa_status s = mhfa_context_create(spec, &ctx);
    if (s != MHFA_SUCCESS) {
        snprintf(error, size, "%s: %s", mhfa_status_string(s), mhfa_last_create_error());
        trim_trailing_space(error); /* the list of devices ends in a newline */
        return NULL;
    }
    cl_device_id id = mhfa_context_device(ctx);
    mhfa_context_destroy(ctx);
    return id;
}

/* The "PLATFORM:DEVICE" index spec of a device; 0 when it is on no platform's list. */
static int index_spec_of(cl_device_id device, char *spec, size_t size) {
    cl_platform_id platforms[64];
    cl_uint n_platforms = 0;
    if (clGetPlatformIDs(64, platforms, &n_platforms) != CL_SUCCESS) return 0;
    for (cl_uint p = 0; p < n_platforms && p < 64; p++) {
        cl_device_id ids[256];
        cl_uint n = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 256, ids, &n) != CL_SUCCESS) continue;
        for (cl_uint d = 0; d < n && d < 256; d++) {
            if (ids[d] != device) continue;
            snprintf(spec, size, "%u:%u", p, d);
            return 1;
        }
    }
    return 0;
}

/* ---- the kernels the plan chose (read from a built module) ---- */

/* The key (sources and -D options) of the program a kernel came from, from the context's list
 * of built programs; "" when not found. */
static const char *kernel_build_key(const mhfa_context *ctx, cl_kernel kernel) {
    cl_program program = NULL;
    if (!kernel ||
        clGetKernelInfo(kernel, CL_KERNEL_PROGRAM, sizeof program, &program, NULL) != CL_SUCCESS)
        return "";
    for (const mhfa_program_entry *e = ctx->programs; e; e = e->next)
        if (e->program == program) return e->key;
    return "";
}

/* The value of "-D NAME=value" in a build key, or -1. */
static int build_define(const char *key, const char *name) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "-D %s=", name);
    const char *at = strstr(key, pattern);
    return at ? atoi(at + strlen(pattern)) : -1;
}

static void kernel_function_name(cl_kernel kernel, char *name, size_t size) {
    if (!kernel || clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, size, name, NULL) != CL_SUCCESS)
        snprintf(name, size, "?");
    name[size - 1] = '\0';
}

static void set_choice(kernel_choice *c, const char *kind, const char *fmt, ...) {
    snprintf(c->kind, sizeof c->kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->words, sizeof c->words, fmt, ap);
    va_end(ap);
}

static void describe_projection(const mhfa_module *m, kernel_choice *c) {
    const mhfa_kernels *k = &m->kernels;
    const char *key = kernel_build_key(m->ctx, k->project_to_heads);
    if (k->projection == MHFA_PROJECT_CLBLAST) {
        set_choice(c, "clblast", "CLBlast's SGEMM, layout.cl moving its rows to heads");
    } else if (k->projection == MHFA_PROJECT_VECTOR) {
        set_choice(c, "vector",
                   "project_vector.cl: float16 register blocks, %zu rows x %zu columns per "
                   "work-item, %zu work-items a group",
                   k->projection_tile[1], k->projection_tile[0], k->projection_local[1]);
    } else if (k->projection == MHFA_PROJECT_MMA) {
        set_choice(c, "mma",
                   "project_mma.cl: 3xTF32 tensor-core products (%s), %dx%d warps of %dx%d "
                   "outputs, %d deep",
                   mhfa_has_ptx_mma(m->ctx) ? "PTX mma.sync" : "emulated in local memory",
                   build_define(key, "WARPS_M"), build_define(key, "WARPS_N"),
                   build_define(key, "WM"), build_define(key, "WN"), build_define(key, "TILE_K"));
    } else {
        set_choice(c, "tiled",
                   "project_tiled.cl: %dx%d tiles in local memory, %d deep, %dx%d outputs per "
                   "work-item%s",
                   build_define(key, "TILE_M"), build_define(key, "TILE_N"),
                   build_define(key, "TILE_K"), build_define(key, "WPT_M"),
                   build_define(key, "WPT_N"),
                   build_define(key, "VECTOR_RUNS") == 1 ? ", 16-byte runs" : "");
    }
}

static void describe_attention(const mhfa_module *m, const mhfa_attention_kernel *a,
                               kernel_choice *c) {
    char name[128];
    kernel_function_name(a->kernel, name, sizeof name);
    const char *key = kernel_build_key(m->ctx, a->kernel);
    const char *layout = a->rows_layout ? "Q, K, V rows-major" : "Q, K, V per head";
    if (a->variant == MHFA_ATTEND_VECTOR)
        set_choice(c, "vector",
                   "attention_vector.cl (%s): 16 queries as float16 lanes per work-item, %d keys "
                   "a step; %s",
                   name, build_define(key, "BLOCK_K"), layout);
    else if (a->variant == MHFA_ATTEND_MMA)
        set_choice(c, "mma",
                   "attention_mma.cl (%s): 3xTF32 tensor cores, %d warps of 16 queries, %d keys a "
                   "tile; %s",
                   name, build_define(key, "WARPS"), build_define(key, "BLOCK_K"), layout);
    else if (a->variant == MHFA_ATTEND_WIDE)
        set_choice(c, "wide",
                   "attention_wide.cl (%s): %zu queries a group, tiles of %d keys in local "
                   "memory, the mask as bits; %s",
                   name, a->block_q, build_define(key, "TILE_KEYS"), layout);
    else
        set_choice(c, "tiled",
                   "attention_tiled.cl (%s): one query per work-item, %zu a group, K and V tiles "
                   "of %d keys in local memory; %s",
                   name, a->block_q, build_define(key, "BLOCK_K"), layout);
}

/* What the module's kernels are, in words: the one place that reads the plan's outcome. */
static void describe_plan(const mhfa_module *m, plan_summary *plan) {
    const mhfa_kernels *k = &m->kernels;
    memset(plan, 0, sizeof *plan);
    plan->head_dim = m->head_dim;
    describe_projection(m, &plan->projection);
    describe_attention(m, &k->attention, &plan->attention);
    if (k->attention_masked.kernel)
        describe_attention(m, &k->attention_masked, &plan->attention_masked);
    else
        set_choice(&plan->attention_masked, "", "the unmasked kernel");
    if (k->decode_partial)
        set_choice(&plan->decode, "decode",
                   "attention_decode.cl: chunks of %d key%s in parallel, then a merge (for 1 or 2 "
                   "queries against %d keys or more)",
                   m->plan.decode_chunk, m->plan.decode_chunk == 1 ? "" : "s",
                   2 * m->plan.decode_chunk);
    else
        set_choice(&plan->decode, "", "none");
    const char *absorbed_key = kernel_build_key(m->ctx, k->absorbed);
    const int always = m->plan.absorbed_mode == MHFA_ABSORBED_ALWAYS;
    if (k->absorbed)
        set_choice(&plan->absorbed, always ? "always" : "auto",
                   "attention_absorbed.cl: groups of %zu work-item%s, %d keys a step; %s",
                   k->absorbed_group, k->absorbed_group == 1 ? "" : "s",
                   build_define(absorbed_key, "KEYS"),
                   always ? "every forward (tuning: always)"
                          : "where it saves work (few queries, many keys)");
    else
        set_choice(&plan->absorbed, "", "not built (off in the tuning, or it does not fit)");
}

/* ---- --check: forwards against the float64 reference ---- */

/* Self-attention shapes {batch, nodes}: sizes off every block and tile size, one query alone, and
 * more keys than one wide tile holds. */
static const int check_shapes[][2] = {{3, 37}, {2, 100}, {1, 1}, {4, 17}, {2, 5}, {1, 130}};
enum { N_CHECK_SHAPES = sizeof check_shapes / sizeof check_shapes[0] };

typedef struct check_data {
    float *weight[4], *bias[4]; /* as the module holds them, for the reference */
    float *x, *out;
    double *ref;
    unsigned char *mask;
} check_data;

static size_t largest_check_rows(void) {
    size_t most = 0;
    for (int i = 0; i < N_CHECK_SHAPES; i++) {
        size_t rows = (size_t)check_shapes[i][0] * (size_t)check_shapes[i][1];
        if (rows > most) most = rows;
    }
    return most;
}

static void free_check_data(check_data *d) {
    for (int i = 0; i < 4; i++)
        free(d->weight[i]), free(d->bias[i]);
    free(d->x), free(d->out), free(d->ref), free(d->mask);
}

static int alloc_check_data(check_data *d) {
    memset(d, 0, sizeof *d);
    size_t rows = largest_check_rows();
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        size_t in = i == MHFA_W_OUT ? EMBED_DIM : INPUT_DIM;
        d->weight[i] = malloc((size_t)EMBED_DIM * in * sizeof(float));
        d->bias[i] = malloc((size_t)EMBED_DIM * sizeof(float));
        ok = ok && d->weight[i] && d->bias[i];
    }
    d->x = malloc(rows * INPUT_DIM * sizeof(float));
    d->out = malloc(rows * EMBED_DIM * sizeof(float));
    d->ref = malloc(rows * EMBED_DIM * sizeof(double));
    d->mask = malloc(rows);
    ok = ok && d->x && d->out && d->ref && d->mask;
    if (!ok) free_check_data(d);
    return ok;
}

static void fill_uniform(uint64_t *state, float *x, size_t n, double bound) {
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((2.0 * uniform01(state) - 1.0) * bound);
}

/* PyTorch's nn.Linear range, U(-1/sqrt(in), 1/sqrt(in)), keeps the softmax well conditioned. */
static mhfa_status set_random_weights(mhfa_module *m, check_data *d, uint64_t *state) {
    mhfa_status s = MHFA_SUCCESS;
    for (int i = 0; i < 4 && s == MHFA_SUCCESS; i++) {
        size_t in = i == MHFA_W_OUT ? EMBED_DIM : INPUT_DIM;
        double bound = 1.0 / sqrt((double)in);
        fill_uniform(state, d->weight[i], (size_t)EMBED_DIM * in, bound);
        fill_uniform(state, d->bias[i], EMBED_DIM, bound);
        s = mhfa_module_set_projection(m, (mhfa_projection)i, d->weight[i], d->bias[i]);
    }
    return s;
}

/* A mask of [batch][nodes], about a third masked; the last instance of a batch of several has
 * every key masked (its output must be W_out's bias). */
static void fill_random_mask(uint64_t *state, unsigned char *mask, int batch, int nodes) {
    for (int b = 0; b < batch; b++)
        for (int j = 0; j < nodes; j++)
            mask[(size_t)b * nodes + j] = (batch > 1 && b == batch - 1) || uniform01(state) < 0.3;
}

/* max |out - ref| / max(1, max |ref|); a NaN anywhere gives INFINITY. */
static double normalized_error(const float *out, const double *ref, size_t n) {
    double worst = 0.0, scale = 1.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)out[i] - ref[i]);
        worst = isnan(e) ? INFINITY : fmax(worst, e);
        scale = fmax(scale, fabs(ref[i]));
    }
    return worst / scale;
}

/* One masked self-attention forward of a fresh input; its error goes to *error. */
static int check_one_forward(mhfa_module *m, check_data *d, int batch, int nodes, uint64_t *state,
                             double *error, char *failure, size_t size) {
    size_t rows = (size_t)batch * nodes, n_out = rows * EMBED_DIM;
    fill_normal(state, d->x, rows * INPUT_DIM);
    fill_random_mask(state, d->mask, batch, nodes);
    for (size_t i = 0; i < n_out; i++)
        d->out[i] = NAN; /* what the forward does not write stays NaN and fails */
    mhfa_mask mask = {d->mask, 2, {batch, nodes, 0, 0}};
    mhfa_status s = mhfa_forward(m, batch, nodes, nodes, d->x, NULL, &mask, d->out);
    if (s != MHFA_SUCCESS) {
        snprintf(failure, size, "forward (batch %d, %d nodes): %s: %s", batch, nodes,
                 mhfa_status_string(s), mhfa_context_error_message(m->ctx));
        return 0;
    }
    ref_problem p = {.batch = batch,
                     .n_query = nodes,
                     .graph_size = nodes,
                     .input_dim = INPUT_DIM,
                     .embed_dim = EMBED_DIM,
                     .n_heads = HEADS,
                     .weight = {d->weight[0], d->weight[1], d->weight[2], d->weight[3]},
                     .bias = {d->bias[0], d->bias[1], d->bias[2], d->bias[3]},
                     .q = d->x,
                     .h = NULL,
                     .mask = d->mask,
                     .mask_ndim = 2,
                     .mask_dims = {batch, nodes, 0, 0}};
    if (ref_forward(&p, d->ref, NULL, NULL) != 0) {
        snprintf(failure, size, "the float64 reference ran out of memory");
        return 0;
    }
    *error = normalized_error(d->out, d->ref, n_out);
    if (!(*error <= CHECK_TOLERANCE)) {
        snprintf(failure, size, "batch %d, %d nodes: error %.3g > %.0e", batch, nodes, *error,
                 CHECK_TOLERANCE);
        return 0;
    }
    return 1;
}

/* Forwards through every shape, then on until CHECK_SECONDS have passed or one fails. */
static void run_check(mhfa_module *m, check_result *c) {
    memset(c, 0, sizeof *c);
    check_data d;
    if (!alloc_check_data(&d)) {
        snprintf(c->failure, sizeof c->failure, "out of host memory");
        return;
    }
    uint64_t state = 20240601;
    mhfa_status s = set_random_weights(m, &d, &state);
    if (s != MHFA_SUCCESS) {
        snprintf(c->failure, sizeof c->failure, "setting the weights: %s: %s",
                 mhfa_status_string(s), mhfa_context_error_message(m->ctx));
        free_check_data(&d);
        return;
    }
    double start = now_seconds();
    int ok = 1;
    for (int i = 0; ok && (i < N_CHECK_SHAPES || now_seconds() - start < CHECK_SECONDS); i++) {
        const int *shape = check_shapes[i % N_CHECK_SHAPES];
        double error = 0.0;
        ok = check_one_forward(m, &d, shape[0], shape[1], &state, &error, c->failure,
                               sizeof c->failure);
        c->forwards += ok;
        if (ok || !isnan(error)) c->max_error = fmax(c->max_error, error);
    }
    c->seconds = now_seconds() - start;
    c->passed = ok;
    free_check_data(&d);
}

/* ---- one device, through the library ---- */

/* A context made by the device's index spec; NULL, with the reason in r->error, when that fails
 * or selects another device. */
static mhfa_context *context_by_spec(cl_device_id id, device_report *r) {
    mhfa_context *ctx = NULL;
    mhfa_status s = mhfa_context_create(r->spec, &ctx);
    if (s != MHFA_SUCCESS) {
        snprintf(r->error, sizeof r->error, "mhfa_context_create(\"%s\"): %s: %s", r->spec,
                 mhfa_status_string(s), mhfa_last_create_error());
        return NULL;
    }
    r->spec_selects_it = mhfa_context_device(ctx) == id;
    if (r->spec_selects_it) return ctx;
    snprintf(r->error, sizeof r->error, "spec \"%s\" selects another device (%s)", r->spec,
             mhfa_context_device_name(ctx));
    mhfa_context_destroy(ctx);
    return NULL;
}

/* Builds the plan's module on the device and runs the check where asked; every failure lands in
 * r->error or r->check. */
static void inspect_through_library(cl_device_id id, const options *opt, device_report *r) {
    mhfa_context *ctx = context_by_spec(id, r);
    mhfa_module *m = NULL;
    if (ctx) {
        mhfa_config cfg = mhfa_config_default(HEADS, INPUT_DIM, EMBED_DIM);
        mhfa_status s = mhfa_module_create(ctx, &cfg, &m);
        if (s != MHFA_SUCCESS)
            snprintf(r->error, sizeof r->error, "building the kernels: %s: %s",
                     mhfa_status_string(s), mhfa_context_error_message(ctx));
    }
    trim_trailing_space(r->error);
    if (m) {
        r->has_plan = 1;
        describe_plan(m, &r->plan);
    }
    if (opt->check) {
        r->checked = 1;
        if (m)
            run_check(m, &r->check);
        else
            snprintf(r->check.failure, sizeof r->check.failure, "no module on this device");
        trim_trailing_space(r->check.failure);
    }
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);
}

/* ---- text output ---- */

static void format_bytes(cl_ulong bytes, char *text, size_t size) {
    static const char *const units[] = {"GiB", "MiB", "KiB"};
    for (int i = 0; i < 3; i++) {
        double unit = (double)(1ull << (10 * (3 - i)));
        if ((double)bytes >= unit) {
            snprintf(text, size, "%.1f %s", (double)bytes / unit, units[i]);
            return;
        }
    }
    snprintf(text, size, "%llu bytes", (unsigned long long)bytes);
}

static const char *yes_no(int value) {
    return value ? "yes" : "no";
}

static void print_properties_text(const device_report *r) {
    char global[32], local[32], alloc[32];
    format_bytes(r->global_mem, global, sizeof global);
    format_bytes(r->local_mem, local, sizeof local);
    format_bytes(r->max_alloc, alloc, sizeof alloc);
    printf("  device %s: %s%s\n", r->spec, r->name, r->is_default ? "   [default]" : "");
    printf("    %-16s %s, %u compute units, work-groups up to %zu\n", "type", r->type,
           r->compute_units, r->max_work_group);
    printf("    %-16s global %s, local %s, largest allocation %s\n", "memory", global, local,
           alloc);
    printf("    %-16s %s; %s; driver %s\n", "OpenCL", r->device_version, r->c_version,
           r->driver_version);
    printf("    %-16s fp16 %s, fp64 %s, subgroups %s\n", "features", yes_no(r->fp16),
           yes_no(r->fp64), r->subgroups[0] ? r->subgroups : "no");
    fflush(stdout);
}

static void print_choice_text(const char *label, const kernel_choice *c) {
    printf("      %-14s %s\n", label, c->words); /* the kind is the file's name there */
}

static void print_library_view_text(const device_report *r) {
    if (r->spec_selects_it) printf("    %-16s MHFA_DEVICE=%s selects it\n", "spec", r->spec);
    if (r->error[0]) printf("    %-16s %s\n", "error", r->error);
    if (r->has_plan) {
        printf("    plan for %d heads, input %d, embed %d (head_dim %d):\n", HEADS, INPUT_DIM,
               EMBED_DIM, r->plan.head_dim);
        print_choice_text("projection", &r->plan.projection);
        print_choice_text("attention", &r->plan.attention);
        print_choice_text("masked", &r->plan.attention_masked);
        print_choice_text("decode", &r->plan.decode);
        print_choice_text("absorbed", &r->plan.absorbed);
    }
    if (r->checked && r->check.passed)
        printf("    %-16s pass: error %.2e <= %.0e over %d forwards in %.2f s\n", "check",
               r->check.max_error, CHECK_TOLERANCE, r->check.forwards, r->check.seconds);
    else if (r->checked)
        printf("    %-16s FAIL: %s\n", "check", r->check.failure);
    fflush(stdout);
}

/* ---- JSON output ---- */

static int json_failed; /* an allocation for the JSON document failed */

static cJSON *json_checked(cJSON *item) {
    if (!item) json_failed = 1;
    return item;
}

static void json_choice(cJSON *parent, const char *name, const kernel_choice *c) {
    cJSON *o = json_checked(cJSON_AddObjectToObject(parent, name));
    if (c->kind[0])
        json_checked(cJSON_AddStringToObject(o, "kind", c->kind));
    else
        json_checked(cJSON_AddNullToObject(o, "kind"));
    json_checked(cJSON_AddStringToObject(o, "description", c->words));
}

static void json_plan(cJSON *parent, const plan_summary *plan) {
    cJSON *o = json_checked(cJSON_AddObjectToObject(parent, "plan"));
    json_checked(cJSON_AddNumberToObject(o, "n_heads", HEADS));
    json_checked(cJSON_AddNumberToObject(o, "input_dim", INPUT_DIM));
    json_checked(cJSON_AddNumberToObject(o, "embed_dim", EMBED_DIM));
    json_checked(cJSON_AddNumberToObject(o, "head_dim", plan->head_dim));
    json_choice(o, "projection", &plan->projection);
    json_choice(o, "attention", &plan->attention);
    json_choice(o, "attention_masked", &plan->attention_masked);
    json_choice(o, "decode", &plan->decode);
    json_choice(o, "absorbed", &plan->absorbed);
}

static void json_check(cJSON *parent, const check_result *c) {
    cJSON *o = json_checked(cJSON_AddObjectToObject(parent, "check"));
    json_checked(cJSON_AddBoolToObject(o, "passed", c->passed));
    if (isfinite(c->max_error))
        json_checked(cJSON_AddNumberToObject(o, "max_error", c->max_error));
    else
        json_checked(cJSON_AddNullToObject(o, "max_error"));
    json_checked(cJSON_AddNumberToObject(o, "tolerance", CHECK_TOLERANCE));
    json_checked(cJSON_AddNumberToObject(o, "forwards", c->forwards));
    json_checked(cJSON_AddNumberToObject(o, "seconds", c->seconds));
    if (!c->passed) json_checked(cJSON_AddStringToObject(o, "failure", c->failure));
}

static void json_device(cJSON *devices, const device_report *r) {
    cJSON *o = json_checked(cJSON_CreateObject());
    if (!o) return;
    json_checked(cJSON_AddStringToObject(o, "spec", r->spec));
    json_checked(cJSON_AddBoolToObject(o, "spec_selects_it", r->spec_selects_it));
    json_checked(cJSON_AddStringToObject(o, "name", r->name));
    json_checked(cJSON_AddStringToObject(o, "vendor", r->vendor));
    json_checked(cJSON_AddStringToObject(o, "type", r->type));
    json_checked(cJSON_AddBoolToObject(o, "default", r->is_default));
    json_checked(cJSON_AddNumberToObject(o, "compute_units", r->compute_units));
    json_checked(cJSON_AddNumberToObject(o, "global_mem_bytes", (double)r->global_mem));
    json_checked(cJSON_AddNumberToObject(o, "local_mem_bytes", (double)r->local_mem));
    json_checked(cJSON_AddNumberToObject(o, "max_alloc_bytes", (double)r->max_alloc));
    json_checked(cJSON_AddNumberToObject(o, "max_work_group_size", (double)r->max_work_group));
    json_checked(cJSON_AddStringToObject(o, "device_version", r->device_version));
    json_checked(cJSON_AddStringToObject(o, "opencl_c_version", r->c_version));
    json_checked(cJSON_AddStringToObject(o, "driver_version", r->driver_version));
    json_checked(cJSON_AddBoolToObject(o, "fp16", r->fp16));
    json_checked(cJSON_AddBoolToObject(o, "fp64", r->fp64));
    json_checked(cJSON_AddBoolToObject(o, "subgroups", r->subgroups[0] != '\0'));
    if (r->subgroups[0]) json_checked(cJSON_AddStringToObject(o, "subgroups_by", r->subgroups));
    if (r->error[0]) json_checked(cJSON_AddStringToObject(o, "error", r->error));
    if (r->has_plan) json_plan(o, &r->plan);
    if (r->checked) json_check(o, &r->check);
    if (!cJSON_AddItemToArray(devices, o)) {
        json_failed = 1;
        cJSON_Delete(o);
    }
}

/* ---- platforms and devices ---- */

typedef struct run_state {
    options opt;
    cl_device_id default_device, only_device; /* only_device NULL: every device */
    cJSON *platforms;                         /* JSON output: the platforms array, else NULL */
    totals count;
} run_state;

static void inspect_device(run_state *st, cl_device_id id, cl_uint platform, cl_uint index,
                           cJSON *json_devices) {
    device_report *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "mhfa-info: out of memory\n");
        st->count.failures++;
        return;
    }
    snprintf(r->spec, sizeof r->spec, "%u:%u", platform, index);
    read_device_properties(id, r);
    r->is_default = id == st->default_device;
    if (!st->opt.json) print_properties_text(r);
    inspect_through_library(id, &st->opt, r);
    if (st->opt.json)
        json_device(json_devices, r);
    else
        print_library_view_text(r);
    st->count.devices++;
    st->count.failures += r->checked && !r->check.passed;
    free(r);
}

/* The platform's devices into ids (allocated, NULL when none); returns how many, with the reason
 * in error when there are none. */
static cl_uint platform_device_ids(cl_platform_id platform, cl_device_id **ids, char *error,
                                   size_t size) {
    cl_uint n = 0;
    *ids = NULL;
    cl_int err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 0, NULL, &n);
    if (err == CL_DEVICE_NOT_FOUND || (err == CL_SUCCESS && n == 0)) {
        snprintf(error, size, "no devices");
        return 0;
    }
    if (err == CL_SUCCESS && !(*ids = malloc(n * sizeof **ids))) err = CL_OUT_OF_HOST_MEMORY;
    if (err == CL_SUCCESS) err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, n, *ids, NULL);
    if (err != CL_SUCCESS) {
        snprintf(error, size, "clGetDeviceIDs: %d (%s)", (int)err, mhfa_cl_error_name(err));
        free(*ids);
        *ids = NULL;
        return 0;
    }
    return n;
}

static int platform_holds(const cl_device_id *ids, cl_uint n, cl_device_id device) {
    for (cl_uint i = 0; i < n; i++)
        if (ids[i] == device) return 1;
    return 0;
}

static void inspect_platform(run_state *st, cl_platform_id platform, cl_uint index) {
    char name[256], vendor[256], version[256], error[128] = "";
    query_platform_text(platform, CL_PLATFORM_NAME, name, sizeof name);
    query_platform_text(platform, CL_PLATFORM_VENDOR, vendor, sizeof vendor);
    query_platform_text(platform, CL_PLATFORM_VERSION, version, sizeof version);
    cl_device_id *ids;
    cl_uint n = platform_device_ids(platform, &ids, error, sizeof error);
    if (st->only_device && !platform_holds(ids, n, st->only_device)) {
        free(ids);
        return;
    }
    cJSON *o = NULL, *devices = NULL;
    if (st->platforms) {
        o = json_checked(cJSON_CreateObject());
        json_checked(cJSON_AddNumberToObject(o, "index", index));
        json_checked(cJSON_AddStringToObject(o, "name", name));
        json_checked(cJSON_AddStringToObject(o, "vendor", vendor));
        json_checked(cJSON_AddStringToObject(o, "version", version));
        if (error[0]) json_checked(cJSON_AddStringToObject(o, "error", error));
        devices = json_checked(cJSON_AddArrayToObject(o, "devices"));
    } else {
        printf("\nplatform %u: %s (%s), %s%s%s\n", index, name, vendor, version,
               error[0] ? ": " : "", error);
    }
    for (cl_uint d = 0; d < n; d++)
        if (!st->only_device || ids[d] == st->only_device)
            inspect_device(st, ids[d], index, d, devices);
    if (o && !cJSON_AddItemToArray(st->platforms, o)) {
        json_failed = 1;
        cJSON_Delete(o);
    }
    free(ids);
}

/* Every platform; the reason in error when there is none. */
static void inspect_platforms(run_state *st, char *error, size_t size) {
    cl_uint n = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &n);
    cl_platform_id *platforms = NULL;
    if (err == CL_SUCCESS && n > 0 && !(platforms = malloc(n * sizeof *platforms)))
        err = CL_OUT_OF_HOST_MEMORY;
    if (err == CL_SUCCESS && n > 0) err = clGetPlatformIDs(n, platforms, NULL);
    if (err != CL_SUCCESS || n == 0) {
        snprintf(error, size, "no OpenCL platform (clGetPlatformIDs: %d, %s)", (int)err,
                 mhfa_cl_error_name(err));
        free(platforms);
        return;
    }
    for (cl_uint p = 0; p < n; p++)
        inspect_platform(st, platforms[p], p);
    free(platforms);
}

/* ---- the default device and the command line ---- */

/* The rule in words, as mhfa_context_create(NULL) applies it now. */
static void default_rule(char *text, size_t size) {
    const char *env = getenv("MHFA_DEVICE");
    if (env && env[0])
        snprintf(text, size, "MHFA_DEVICE=%s", env);
    else
        snprintf(text, size, "MHFA_DEVICE unset: the first GPU, else the first device");
}

static void print_default_text(const run_state *st, const char *spec, const char *error) {
    char rule[512];
    default_rule(rule, sizeof rule);
    printf("mhfa %s; default device (%s): ", mhfa_version_string(), rule);
    if (st->default_device)
        printf("%s\n", spec);
    else
        printf("none: %s\n", error);
}

static void json_default(cJSON *root, const run_state *st, const char *spec, const char *error) {
    char rule[512];
    default_rule(rule, sizeof rule);
    json_checked(cJSON_AddStringToObject(root, "mhfa_version", mhfa_version_string()));
    json_checked(cJSON_AddStringToObject(root, "default_rule", rule));
    if (st->default_device) {
        json_checked(cJSON_AddStringToObject(root, "default_device", spec));
    } else {
        json_checked(cJSON_AddNullToObject(root, "default_device"));
        json_checked(cJSON_AddStringToObject(root, "default_error", error));
    }
}

static void print_usage(FILE *to) {
    fprintf(to,
            "usage: mhfa-info [--device SPEC] [--check] [--json]\n"
            "Lists every OpenCL platform and device: the MHFA_DEVICE spec that selects it, its\n"
            "limits and features, which device the default picks, and the kernels mhfa's plan\n"
            "chooses there for a layer of %d heads, input %d, embed %d.\n"
            "  --device SPEC  only the device SPEC selects (PLATFORM[:DEVICE], as MHFA_DEVICE)\n"
            "  --check        build the kernels and run forwards for %.0f s per device against\n"
            "                 the float64 reference (pass: error <= %.0e of max(1, max|ref|))\n"
            "  --json         one JSON document on stdout instead of text\n"
            "Exit status 1 when no device is found or a check fails, 2 on a usage error.\n",
            HEADS, INPUT_DIM, EMBED_DIM, CHECK_SECONDS, CHECK_TOLERANCE);
}

/* Returns 0, or the exit status to leave with (-1: --help, exit 0). */
static int parse_options(int argc, char **argv, options *opt) {
    memset(opt, 0, sizeof *opt);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_usage(stdout);
            return -1;
        } else if (strcmp(argv[i], "--json") == 0) {
            opt->json = 1;
        } else if (strcmp(argv[i], "--check") == 0) {
            opt->check = 1;
        } else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
            opt->device_spec = argv[++i];
        } else if (strcmp(argv[i], "--device") == 0) {
            fprintf(stderr, "mhfa-info: --device needs a SPEC\n");
            return 2;
        } else {
            fprintf(stderr, "mhfa-info: unexpected argument \"%s\"\n", argv[i]);
            print_usage(stderr);
            return 2;
        }
    }
    return 0;
}

/* Prints the document; returns 0 on success. */
static int print_json(cJSON *root) {
    char *text = json_failed ? NULL : cJSON_Print(root);
    if (!text) {
        fprintf(stderr, "mhfa-info: out of memory for the JSON document\n");
        return 1;
    }
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}

/* Fills st's device choices (default and --device) and reports the default; 0 when --device
 * selects nothing (the reason in error). */
static int resolve_devices(run_state *st, cJSON *root, char *error, size_t size) {
    char default_error[4096] = "", spec[32] = "?";
    st->default_device = device_chosen_by(NULL, default_error, sizeof default_error);
    if (st->default_device && !index_spec_of(st->default_device, spec, sizeof spec))
        snprintf(spec, sizeof spec, "(not on any platform's list)");
    if (root)
        json_default(root, st, spec, default_error);
    else
        print_default_text(st, spec, default_error);
    if (!st->opt.device_spec) return 1;
    char why[4096] = "";
    st->only_device = device_chosen_by(st->opt.device_spec, why, sizeof why);
    if (!st->only_device) snprintf(error, size, "--device %s: %s", st->opt.device_spec, why);
    return st->only_device != NULL;
}

int main(int argc, char **argv) {
    run_state st;
    memset(&st, 0, sizeof st);
    int parsed = parse_options(argc, argv, &st.opt);
    if (parsed) return parsed < 0 ? 0 : parsed;
    cJSON *root = st.opt.json ? json_checked(cJSON_CreateObject()) : NULL;
    if (st.opt.json && !root) {
        fprintf(stderr, "mhfa-info: out of memory\n");
        return 1;
    }
    char error[8192] = "";
    int resolved = resolve_devices(&st, root, error, sizeof error);
    if (root) st.platforms = json_checked(cJSON_AddArrayToObject(root, "platforms"));
    if (resolved && !json_failed) inspect_platforms(&st, error, sizeof error);
    if (!error[0] && st.count.devices == 0) snprintf(error, sizeof error, "no OpenCL device found");
    int failed = error[0] || st.count.failures > 0;
    if (root) {
        json_checked(cJSON_AddNumberToObject(root, "devices_found", st.count.devices));
        if (st.opt.check) json_checked(cJSON_AddBoolToObject(root, "all_passed", !failed));
        if (error[0]) json_checked(cJSON_AddStringToObject(root, "error", error));
        failed |= print_json(root);
        cJSON_Delete(root);
    } else if (error[0]) {
        fprintf(stderr, "mhfa-info: %s\n", error);
    } else if (st.opt.check) {
        printf("\n%d device(s) checked, %d failed\n", st.count.devices, st.count.failures);
    }
    return failed;
}
