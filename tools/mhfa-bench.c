/* mhfa-bench: times one whole mhfa forward per case on the device named by MHFA_DEVICE, and dumps
 * the weights, inputs, mask and output of each case so that tools/bench_torch.py can run PyTorch
 * on exactly the same numbers.
 *
 * Timing: inputs already in cl_mem buffers, warm-up forwards first, then the median of --runs
 * forwards, each timed (CLOCK_MONOTONIC) from before mhfa_forward_enqueue to after clFinish.
 *
 * Dump file DIR/<case>.bin, little-endian (the host's order):
 *   char magic[8] = "MHFABNC1"; char name[32] (NUL-padded case name);
 *   int32 batch, n_query, graph_size, input_dim, embed_dim, n_heads, cross, store,
 *         mask_ndim, mask_dims[4], bias, 0, 0;
 *   float32 W_query[E][Din], b_query[E], W_key[E][Din], b_key[E], W_val[E][Din], b_val[E],
 *           W_out[E][E], b_out[E], q[B][Nq][Din], h[B][Nk][Din] (only if cross),
 *   uint8 mask[product of mask_dims] (only if mask_ndim > 0, 1 = masked out),
 *   float32 out[B][Nq][E] (mhfa's output of the last timed forward). */
#define _POSIX_C_SOURCE 200809L

#include "mhfa.h"

#include "dtype_names.h"
#include "fma_peak.h"
#include "random_data.h"
#include "stage_times.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_RUNS   20
#define DEFAULT_WARMUP 2
#define MASK_FRACTION  0.3
#define DATA_SEED      0x6d686661u /* "mhfa" */

/* ---- the cases ---- */

typedef struct bench_case {
    const char *name;
    int batch, n_query, graph_size, input_dim, embed_dim, n_heads;
    int cross;     /* 1: separate h [B][Nk][Din]; 0: self-attention */
    int mask_ndim; /* 0: none, 2: [B][Nk], 3: [B][Nq][Nk] */
    int store;     /* store_attn_weights: the manual path */
    int long_case; /* shortened (or skipped) on --short */
} bench_case;

static const bench_case all_cases[] = {
    {"route-enc", 512, 100, 100, 128, 128, 8, 0, 0, 0, 0},
    {"route-enc-mask", 512, 100, 100, 128, 128, 8, 0, 3, 0, 0},
    {"route-dec", 512, 1, 100, 128, 128, 8, 1, 2, 0, 0},
    {"route-store", 512, 100, 100, 128, 128, 8, 0, 0, 1, 0},
    {"long", 4, 4096, 4096, 512, 512, 8, 0, 0, 0, 1},
    {"xlong", 1, 16384, 16384, 1024, 1024, 16, 0, 0, 0, 1},
};
#define N_CASES (sizeof all_cases / sizeof all_cases[0])
#define SHORT_N 2048 /* long's sequence length on --short */

typedef struct options {
    int selected[N_CASES];
    int runs, warmup;
    int shorten; /* -1: decide from the device type */
    int stages;  /* --stages: also time each stage (the whole run on a profiling queue) */
    int peak;    /* --peak: first measure the multiply-add rate (fma_peak.c) */
    const char *dump_dir, *json_path;
    mhfa_dtype dtype; /* --dtype: the modules' storage; the buffers hold it too */
} options;

/* What one case measured, for the printed line and the JSON file. */
typedef struct result {
    char name[32];
    const char *note;
    const char *error;
    double median_ms, min_ms, tflops;
    double stage_ms[N_STAGES], stage_flops[N_STAGES]; /* --stages: medians; flops per forward */
    int stage_kernels;
    size_t peak_bytes;
    int runs, skipped;
} result;

/* ---- small helpers ---- */

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mhfa-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

static void fill_mask(uint64_t *state, unsigned char *m, size_t n) {
    for (size_t i = 0; i < n; i++)
        m[i] = uniform01(state) < MASK_FRACTION;
}

static uint64_t case_seed(const char *name) { /* independent of which cases are selected */
    uint64_t s = DATA_SEED;
    for (const char *p = name; *p; p++)
        s = s * 1099511628211ull ^ (unsigned char)*p;
    return s;
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) die("out of host memory (%zu bytes)", bytes);
    return p;
}

/* ---- case geometry ---- */

static size_t q_floats(const bench_case *c) {
    return (size_t)c->batch * c->n_query * c->input_dim;
}

static size_t h_floats(const bench_case *c) {
    return c->cross ? (size_t)c->batch * c->graph_size * c->input_dim : 0;
}

static size_t out_floats(const bench_case *c) {
    return (size_t)c->batch * c->n_query * c->embed_dim;
}

static void mask_dims(const bench_case *c, int dims[4]) {
    dims[0] = c->batch;
    dims[1] = c->mask_ndim == 3 ? c->n_query : c->graph_size;
    dims[2] = c->mask_ndim == 3 ? c->graph_size : 0;
    dims[3] = 0;
}

static size_t mask_bytes(const bench_case *c) {
    if (!c->mask_ndim) return 0;
    return (size_t)c->batch * c->graph_size * (c->mask_ndim == 3 ? c->n_query : 1);
}

/* 3 input projections + scores + weights*V + output projection, 2 flops per multiply-add. */
static double case_flops(const bench_case *c) {
    double b = c->batch, nq = c->n_query, nk = c->graph_size, din = c->input_dim, e = c->embed_dim;
    double proj = 2.0 * b * (nq + 2.0 * nk) * din * e;
    double attn = 2.0 * 2.0 * b * nq * nk * e;
    return proj + attn + 2.0 * b * nq * e * e;
}

/* The same, per stage (stage_times.h): mask, input projections, attention, output projection. */
static void stage_flops(const bench_case *c, double flops[N_STAGES]) {
    double b = c->batch, nq = c->n_query, nk = c->graph_size, din = c->input_dim, e = c->embed_dim;
    flops[STAGE_MASK] = 0.0;
    flops[STAGE_PROJECT] = 2.0 * b * (nq + 2.0 * nk) * din * e;
    flops[STAGE_ATTEND] = 2.0 * 2.0 * b * nq * nk * e;
    flops[STAGE_OUTPUT] = 2.0 * b * nq * e * e;
}

/* ---- device data of one case ---- */

typedef struct case_data {
    float *q, *h, *out; /* as stored: rounded to the storage type */
    unsigned char *mask;
    cl_mem q_buf, h_buf, mask_buf, out_buf;
    mhfa_dtype dtype;
} case_data;

static cl_mem device_copy(mhfa_context *ctx, const void *host, size_t bytes, cl_mem_flags flags) {
    cl_int err;
    flags |= host ? CL_MEM_COPY_HOST_PTR : 0;
    cl_mem buf = clCreateBuffer(mhfa_context_cl_context(ctx), flags, bytes, (void *)host, &err);
    return err == CL_SUCCESS ? buf : NULL;
}

/* A read-only buffer of count values in the storage type; values become what it holds. */
static cl_mem device_values(mhfa_context *ctx, mhfa_dtype dtype, float *values, size_t count) {
    void *stored = xmalloc(count * mhfa_dtype_bytes(dtype));
    mhfa_dtype_encode(dtype, values, count, stored);
    mhfa_dtype_decode(dtype, stored, count, values);
    cl_mem buf = device_copy(ctx, stored, count * mhfa_dtype_bytes(dtype), CL_MEM_READ_ONLY);
    free(stored);
    return buf;
}

static void case_data_free(case_data *d) {
    cl_mem bufs[] = {d->q_buf, d->h_buf, d->mask_buf, d->out_buf};
    for (size_t i = 0; i < 4; i++)
        if (bufs[i]) clReleaseMemObject(bufs[i]);
    free(d->q);
    free(d->h);
    free(d->mask);
    free(d->out);
    memset(d, 0, sizeof *d);
}

/* Fixed-seed inputs on the host and on the device; NULL on success, else what failed. */
static const char *case_data_make(mhfa_context *ctx, const bench_case *c, mhfa_dtype dtype,
                                  case_data *d) {
    uint64_t state = case_seed(c->name);
    memset(d, 0, sizeof *d);
    d->dtype = dtype;
    d->q = xmalloc(q_floats(c) * sizeof(float));
    fill_normal(&state, d->q, q_floats(c));
    if (c->cross) {
        d->h = xmalloc(h_floats(c) * sizeof(float));
        fill_normal(&state, d->h, h_floats(c));
    }
    if (c->mask_ndim) {
        d->mask = xmalloc(mask_bytes(c));
        fill_mask(&state, d->mask, mask_bytes(c));
    }
    d->out = xmalloc(out_floats(c) * sizeof(float));
    d->q_buf = device_values(ctx, dtype, d->q, q_floats(c));
    d->h_buf = c->cross ? device_values(ctx, dtype, d->h, h_floats(c)) : NULL;
    d->mask_buf = c->mask_ndim ? device_copy(ctx, d->mask, mask_bytes(c), CL_MEM_READ_ONLY) : NULL;
    d->out_buf = device_copy(ctx, NULL, out_floats(c) * mhfa_dtype_bytes(dtype), CL_MEM_READ_WRITE);
    if (!d->q_buf || (c->cross && !d->h_buf) || (c->mask_ndim && !d->mask_buf) || !d->out_buf)
        return "clCreateBuffer failed for the inputs or the output";
    return NULL;
}

static size_t case_data_bytes(const bench_case *c, mhfa_dtype dtype) {
    return (q_floats(c) + h_floats(c) + out_floats(c)) * mhfa_dtype_bytes(dtype) + mask_bytes(c);
}

/* ---- progress on stderr ---- */

static void progress(const char *name, const char *phase, int i, int n, double ms) {
    static int tty = -1;
    if (tty < 0) tty = isatty(STDERR_FILENO);
    if (tty) {
        fprintf(stderr, "\r\033[K[mhfa-bench] %s: %s %d/%d (last %.2f ms)", name, phase, i, n, ms);
        if (i == n && strcmp(phase, "run") == 0) fputc('\n', stderr);
    } else if (i == n) {
        fprintf(stderr, "[mhfa-bench] %s: %s %d/%d done (last %.2f ms)\n", name, phase, i, n, ms);
    }
    fflush(stderr);
}

/* ---- timing ---- */

/* One forward, enqueue to clFinish, in ms; negative on failure. */
static double time_forward(mhfa_module *m, mhfa_context *ctx, const bench_case *c,
                           const case_data *d) {
    mhfa_mask_buffer mask = {d->mask_buf, c->mask_ndim, {0}};
    mask_dims(c, mask.dims);
    double t0 = now_ms();
    mhfa_status s = mhfa_forward_enqueue(m, c->batch, c->n_query, c->graph_size, d->q_buf, d->h_buf,
                                         c->mask_ndim ? &mask : NULL, d->out_buf, 0, NULL, NULL);
    if (s != MHFA_SUCCESS) return -1.0;
    if (clFinish(mhfa_context_queue(ctx)) != CL_SUCCESS) return -1.0;
    return now_ms() - t0;
}

/* Warm-up, then opt->runs timed forwards; NULL on success, else what failed. */
static const char *time_case(mhfa_module *m, mhfa_context *ctx, const bench_case *c,
                             const case_data *d, const options *opt, result *r) {
    double ms = 0.0;
    for (int i = 1; i <= opt->warmup; i++) {
        if ((ms = time_forward(m, ctx, c, d)) < 0) return mhfa_context_error_message(ctx);
        progress(c->name, "warm-up", i, opt->warmup, ms);
    }
    double *t = xmalloc((size_t)opt->runs * sizeof *t);
    for (int i = 0; i < opt->runs; i++) {
        if ((t[i] = time_forward(m, ctx, c, d)) < 0) {
            free(t);
            return mhfa_context_error_message(ctx);
        }
        progress(c->name, "run", i + 1, opt->runs, t[i]);
    }
    r->runs = opt->runs;
    r->median_ms = median(t, opt->runs);
    r->min_ms = t[0]; /* sorted by median() */
    r->tflops = case_flops(c) / (r->median_ms * 1e-3) / 1e12;
    free(t);
    return NULL;
}

/* --stages: opt->runs more forwards, each recorded; the median of each stage's device time. */
static const char *time_stages(mhfa_module *m, mhfa_context *ctx, const bench_case *c,
                               const case_data *d, const options *opt, result *r) {
    double *t = xmalloc((size_t)opt->runs * N_STAGES * sizeof *t);
    const char *err = NULL;
    for (int i = 0; i < opt->runs && !err; i++) {
        double ms[N_STAGES];
        stage_times_start();
        double wall = time_forward(m, ctx, c, d);
        int kernels = stage_times_finish(ms);
        if (wall < 0) err = mhfa_context_error_message(ctx);
        if (!err && kernels < 0) err = "a kernel launch could not be timed (--stages)";
        for (int s = 0; s < N_STAGES; s++)
            t[s * opt->runs + i] = ms[s];
        r->stage_kernels = kernels;
        progress(c->name, "stages", i + 1, opt->runs, wall);
    }
    for (int s = 0; s < N_STAGES && !err; s++)
        r->stage_ms[s] = median(t + s * opt->runs, opt->runs);
    stage_flops(c, r->stage_flops);
    free(t);
    return err;
}

/* ---- dump ---- */

static int write_all(FILE *f, const void *p, size_t bytes) {
    return fwrite(p, 1, bytes, f) == bytes ? 0 : -1;
}

static int dump_header(FILE *f, const bench_case *c, mhfa_dtype dtype) {
    char magic[8] = {'M', 'H', 'F', 'A', 'B', 'N', 'C', '1'}, name[32] = {0};
    int dims[4];
    mask_dims(c, dims);
    strncpy(name, c->name, sizeof name - 1);
    int32_t hdr[16] = {c->batch,     c->n_query, c->graph_size,  c->input_dim,
                       c->embed_dim, c->n_heads, c->cross,       c->store,
                       c->mask_ndim, dims[0],    dims[1],        dims[2],
                       dims[3],      1,          (int32_t)dtype, 0};
    return write_all(f, magic, 8) || write_all(f, name, 32) || write_all(f, hdr, sizeof hdr);
}

/* The four projections as get_projection gives them: weight then bias. */
static const char *dump_weights(FILE *f, mhfa_module *m, mhfa_context *ctx, const bench_case *c) {
    size_t e = (size_t)c->embed_dim;
    float *w = xmalloc(e * (size_t)(c->input_dim > c->embed_dim ? c->input_dim : c->embed_dim) *
                       sizeof(float));
    float *b = xmalloc(e * sizeof(float));
    const char *err = NULL;
    for (int p = MHFA_W_QUERY; p <= MHFA_W_OUT && !err; p++) {
        size_t in = p == MHFA_W_OUT ? e : (size_t)c->input_dim;
        if (mhfa_module_get_projection(m, (mhfa_projection)p, w, b) != MHFA_SUCCESS)
            err = mhfa_context_error_message(ctx);
        else if (write_all(f, w, e * in * sizeof(float)) || write_all(f, b, e * sizeof(float)))
            err = "write failed";
    }
    free(w);
    free(b);
    return err;
}

static const char *dump_case(const char *dir, mhfa_module *m, mhfa_context *ctx,
                             const bench_case *c, const case_data *d) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, c->name);
    FILE *f = fopen(path, "wb");
    if (!f) return strerror(errno);
    const char *err = dump_header(f, c, d->dtype) ? "write failed" : dump_weights(f, m, ctx, c);
    if (!err && (write_all(f, d->q, q_floats(c) * sizeof(float)) ||
                 (c->cross && write_all(f, d->h, h_floats(c) * sizeof(float))) ||
                 (c->mask_ndim && write_all(f, d->mask, mask_bytes(c))) ||
                 write_all(f, d->out, out_floats(c) * sizeof(float))))
        err = "write failed";
    if (fclose(f) && !err) err = "close failed";
    return err;
}

/* ---- one case ---- */

static mhfa_module *make_module(mhfa_context *ctx, const bench_case *c, mhfa_dtype dtype) {
    mhfa_config cfg = mhfa_config_default(c->n_heads, c->input_dim, c->embed_dim);
    cfg.store_attn_weights = c->store;
    cfg.dtype = dtype;
    mhfa_module *m = NULL;
    if (mhfa_module_create(ctx, &cfg, &m) != MHFA_SUCCESS) return NULL;
    if (mhfa_module_init_parameters(m, 0) != MHFA_SUCCESS) { /* explicit: weights of seed 0 */
        mhfa_module_destroy(m);
        return NULL;
    }
    return m;
}

static const char *read_output(mhfa_context *ctx, const bench_case *c, case_data *d) {
    const size_t count = out_floats(c), bytes = count * mhfa_dtype_bytes(d->dtype);
    void *stored = xmalloc(bytes);
    cl_int err = clEnqueueReadBuffer(mhfa_context_queue(ctx), d->out_buf, CL_TRUE, 0, bytes, stored,
                                     0, NULL, NULL);
    if (err == CL_SUCCESS) mhfa_dtype_decode(d->dtype, stored, count, d->out);
    free(stored);
    return err == CL_SUCCESS ? NULL : "clEnqueueReadBuffer of the output failed";
}

/* Inputs, timing, output read-back and dump of one case; NULL on success, else what failed. */
static const char *measure(mhfa_context *ctx, mhfa_module *m, const bench_case *c,
                           const options *opt, result *r) {
    case_data d;
    size_t module_bytes = 0;
    const char *err = case_data_make(ctx, c, opt->dtype, &d);
    if (!err) err = time_case(m, ctx, c, &d, opt, r);
    if (!err && opt->stages) err = time_stages(m, ctx, c, &d, opt, r);
    if (!err) err = read_output(ctx, c, &d);
    if (!err && mhfa_module_device_bytes(m, &module_bytes) != MHFA_SUCCESS)
        err = mhfa_context_error_message(ctx);
    r->peak_bytes = module_bytes + case_data_bytes(c, opt->dtype);
    if (!err && opt->dump_dir) err = dump_case(opt->dump_dir, m, ctx, c, &d);
    case_data_free(&d);
    return err;
}

static void run_case(mhfa_context *ctx, const bench_case *c, const options *opt, result *r) {
    fprintf(stderr, "[mhfa-bench] %s: B%d Nq%d Nk%d Din%d E%d H%d%s%s\n", c->name, c->batch,
            c->n_query, c->graph_size, c->input_dim, c->embed_dim, c->n_heads,
            c->mask_ndim ? " masked" : "", c->store ? " manual path" : "");
    mhfa_module *m = make_module(ctx, c, opt->dtype);
    const char *err = m ? measure(ctx, m, c, opt, r) : mhfa_context_error_message(ctx);
    if (err) r->error = strdup(err); /* the context's message changes with its next call */
    mhfa_module_destroy(m);
}

/* ---- output ---- */

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_result(FILE *f, const result *r, const char *device, const options *opt) {
    fprintf(f, "  {\"case\": ");
    json_string(f, r->name);
    fprintf(f, ", \"device\": ");
    json_string(f, device);
    fprintf(f, ", \"dtype\": \"%s\"", dtype_name(opt->dtype));
    if (!r->skipped && !r->error)
        fprintf(f,
                ", \"mhfa_ms\": %.6g, \"mhfa_min_ms\": %.6g, \"tflops\": %.6g, "
                "\"mhfa_peak_bytes\": %zu, \"runs\": %d, \"warmup\": %d",
                r->median_ms, r->min_ms, r->tflops, r->peak_bytes, r->runs, opt->warmup);
    if (!r->skipped && !r->error && r->stage_kernels > 0) {
        fprintf(f, ", \"stage_kernels\": %d", r->stage_kernels);
        for (int s = 0; s < N_STAGES; s++) {
            fprintf(f, ", \"%s_ms\": %.6g", stage_names[s], r->stage_ms[s]);
            if (r->stage_flops[s] > 0 && r->stage_ms[s] > 0)
                fprintf(f, ", \"%s_gflops\": %.6g", stage_names[s],
                        r->stage_flops[s] / (r->stage_ms[s] * 1e-3) / 1e9);
        }
    }
    if (r->skipped) fprintf(f, ", \"skipped\": true");
    if (r->error) {
        fprintf(f, ", \"error\": ");
        json_string(f, r->error);
    }
    fprintf(f, ", \"note\": ");
    json_string(f, r->note ? r->note : "");
    fprintf(f, "}");
}

static void write_json(const char *path, const result *res, int n, const char *device,
                       const options *opt) {
    FILE *f = fopen(path, "w");
    if (!f) die("cannot write %s: %s", path, strerror(errno));
    fprintf(f, "[\n");
    for (int i = 0; i < n; i++) {
        json_result(f, &res[i], device, opt);
        fprintf(f, i + 1 < n ? ",\n" : "\n");
    }
    fprintf(f, "]\n");
    if (fclose(f)) die("cannot write %s", path);
}

/* One line per case on stdout, key=value, for people and scripts. */
static void print_result(const result *r) {
    if (r->skipped)
        printf("case=%s skipped note=\"%s\"\n", r->name, r->note ? r->note : "");
    else if (r->error)
        printf("case=%s error=\"%s\"\n", r->name, r->error);
    else
        printf("case=%s mhfa_ms=%.4f tflops=%.4f mhfa_peak_bytes=%zu runs=%d note=\"%s\"\n",
               r->name, r->median_ms, r->tflops, r->peak_bytes, r->runs, r->note ? r->note : "");
    if (!r->skipped && !r->error && r->stage_kernels > 0) {
        printf("stages case=%s kernels=%d", r->name, r->stage_kernels);
        for (int s = 0; s < N_STAGES; s++) {
            printf(" %s_ms=%.4f", stage_names[s], r->stage_ms[s]);
            if (r->stage_flops[s] > 0 && r->stage_ms[s] > 0)
                printf(" %s_gflops=%.1f", stage_names[s],
                       r->stage_flops[s] / (r->stage_ms[s] * 1e-3) / 1e9);
        }
        printf("\n");
    }
    fflush(stdout);
}

/* ---- command line ---- */

static void usage(FILE *f) {
    fprintf(f, "usage: mhfa-bench [--cases a,b,...] [--short] [--runs N] [--warmup N]\n"
               "                  [--dump DIR] [--json FILE] [--stages] [--peak]\n"
               "                  [--dtype float32|float16|bfloat16]\n"
               "Times mhfa forwards on the device of MHFA_DEVICE. Cases:");
    for (size_t i = 0; i < N_CASES; i++)
        fprintf(f, " %s", all_cases[i].name);
    fprintf(f,
            "\n--short (automatic on a CPU device): long at N%d, xlong skipped.\n"
            "--runs: timed forwards (default %d); --dump: write DIR/<case>.bin for "
            "bench_torch.py.\n"
            "--stages: the whole run on a queue with profiling on; after the timed forwards,\n"
            "--runs more, each kernel's device time summed per stage (mask, project, attend,\n"
            "output; medians, GFLOP/s; the absorbed kernel's whole forward counts as attend).\n"
            "--peak: first the device's float32 multiply-add rate from a kernel of independent\n"
            "chains (the roof for those GFLOP/s).\n"
            "--dtype: the modules' storage type (default float32); the input and output\n"
            "buffers hold it too, and --dump writes the inputs and weights as rounded to it.\n",
            SHORT_N, DEFAULT_RUNS);
}

static void select_cases(options *opt, const char *list) {
    char *copy = strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < N_CASES && strcmp(all_cases[i].name, tok) != 0)
            i++;
        if (i == N_CASES) die("unknown case '%s' (--help lists them)", tok);
        opt->selected[i] = 1;
    }
    free(copy);
}

static int positive_int(const char *s, const char *what) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 1000000) die("bad %s '%s'", what, s);
    return (int)v;
}

static mhfa_dtype dtype_named(const char *name) {
    mhfa_dtype dtype = MHFA_FLOAT32;
    if (dtype_of_name(name, &dtype) != 0)
        die("--dtype is float32, float16 or bfloat16, not '%s'", name);
    return dtype;
}

static options parse_args(int argc, char **argv) {
    options opt = {{0}, DEFAULT_RUNS, DEFAULT_WARMUP, -1, 0, 0, NULL, NULL, MHFA_FLOAT32};
    int any = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(a, "--cases") || !strcmp(a, "--runs") || !strcmp(a, "--warmup") ||
                    !strcmp(a, "--dump") || !strcmp(a, "--json") || !strcmp(a, "--dtype");
        if (takes && !val) die("%s needs a value", a);
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--short"))
            opt.shorten = 1;
        else if (!strcmp(a, "--stages"))
            opt.stages = 1;
        else if (!strcmp(a, "--peak"))
            opt.peak = 1;
        else if (!strcmp(a, "--cases"))
            select_cases(&opt, val), any = 1;
        else if (!strcmp(a, "--runs"))
            opt.runs = positive_int(val, "--runs");
        else if (!strcmp(a, "--warmup"))
            opt.warmup = positive_int(val, "--warmup");
        else if (!strcmp(a, "--dump"))
            opt.dump_dir = val;
        else if (!strcmp(a, "--json"))
            opt.json_path = val;
        else if (!strcmp(a, "--dtype"))
            opt.dtype = dtype_named(val);
        else
            die("unknown argument '%s' (--help for usage)", a);
        i += takes;
    }
    if (opt.runs < 1) die("--runs must be at least 1");
    for (size_t i = 0; !any && i < N_CASES; i++)
        opt.selected[i] = 1;
    return opt;
}

static int is_cpu_device(mhfa_context *ctx) {
    cl_device_type type = 0;
    clGetDeviceInfo(mhfa_context_device(ctx), CL_DEVICE_TYPE, sizeof type, &type, NULL);
    return (type & CL_DEVICE_TYPE_CPU) != 0;
}

/* The case as it runs: long at SHORT_N in short mode. */
static bench_case effective_case(size_t i, int shorten, result *r) {
    bench_case c = all_cases[i];
    memset(r, 0, sizeof *r);
    strncpy(r->name, c.name, sizeof r->name - 1);
    if (shorten && c.long_case && c.n_query > SHORT_N * 2) {
        r->skipped = 1;
        r->note = "skipped: short mode";
    } else if (shorten && c.long_case) {
        c.n_query = c.graph_size = SHORT_N;
        r->note = "shortened to N2048";
    }
    return c;
}

/* The same device behind a queue with profiling on, for --stages. */
static mhfa_context *with_profiling_queue(mhfa_context *plain) {
    cl_int err;
    cl_command_queue queue =
        clCreateCommandQueue(mhfa_context_cl_context(plain), mhfa_context_device(plain),
                             CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) die("--stages: no profiling queue (OpenCL error %d)", err);
    mhfa_context *ctx = NULL;
    if (mhfa_context_create_from_queue(queue, &ctx) != MHFA_SUCCESS)
        die("--stages: %s", mhfa_last_create_error());
    clReleaseCommandQueue(queue); /* the context holds it, and through it the device's context */
    mhfa_context_destroy(plain);
    return ctx;
}

int main(int argc, char **argv) {
    options opt = parse_args(argc, argv);
    mhfa_context *ctx = NULL;
    if (mhfa_context_create(NULL, &ctx) != MHFA_SUCCESS)
        die("no device: %s", mhfa_last_create_error());
    if (opt.stages) ctx = with_profiling_queue(ctx);
    const char *device = mhfa_context_device_name(ctx);
    if (opt.shorten < 0) {
        opt.shorten = is_cpu_device(ctx);
        if (opt.shorten) printf("# CPU device: short mode (long at N%d, xlong skipped)\n", SHORT_N);
    }
    if (opt.dump_dir && mkdir(opt.dump_dir, 0777) && errno != EEXIST)
        die("cannot create %s: %s", opt.dump_dir, strerror(errno));
    printf("# mhfa %s on %s, runs=%d warmup=%d%s\n", mhfa_version_string(), device, opt.runs,
           opt.warmup, opt.shorten ? " short" : "");
    if (opt.peak) printf("peak fma_gflops=%.1f\n", fma_peak_gflops(ctx));
    result res[N_CASES];
    int n = 0;
    for (size_t i = 0; i < N_CASES; i++) {
        if (!opt.selected[i]) continue;
        bench_case c = effective_case(i, opt.shorten, &res[n]);
        if (!res[n].skipped) run_case(ctx, &c, &opt, &res[n]);
        print_result(&res[n++]);
    }
    if (opt.json_path) write_json(opt.json_path, res, n, device, &opt);
    int failed = 0;
    for (int i = 0; i < n; i++)
        failed |= res[i].error != NULL;
    mhfa_context_destroy(ctx);
    return failed;
}
