/* Weights files: PyTorch's own safetensors files (tests/data, made by tools/make_golden.py) in
 * F32, F16, BF16 and F64 and under a nested prefix, loaded and run against PyTorch's float64
 * output; save and load round trips; and every fault of a malformed file, each with its status
 * and message and the module left as it was. */
#define _POSIX_C_SOURCE 200809L
#include "support.h"

#include "internal.h" /* mhfa_st_*: the golden files' test tensors are read with the loader */

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MHFA_TEST_DATA_DIR
#error "MHFA_TEST_DATA_DIR must name the folder of golden files"
#endif

static char temp_dir[64];

static const char *temp_path(const char *name) {
    static char path[sizeof temp_dir + 256];
    snprintf(path, sizeof path, "%s/%s", temp_dir, name);
    return path;
}

/* ---- PyTorch's files ---- */

typedef struct golden_file {
    const char *name, *prefix;
    int has_metadata, n_heads, bias; /* the layer's config where the file does not say it */
} golden_file;

static const golden_file golden_files[] = {
    {"weights_f32_meta", "", 1, 4, 1},
    {"weights_f16", "", 0, 2, 1},
    {"weights_bf16", "", 0, 3, 0},
    {"weights_f64", "", 0, 2, 1},
    {"weights_nested", "encoder.layers.1.attn.", 0, 4, 1},
};

static const mhfa_st_tensor *require_tensor(const mhfa_st_file *f, const char *name) {
    const mhfa_st_tensor *t = mhfa_st_find(f, name);
    if (!t) fail_msg("%s: no tensor %s", f->path, name);
    return t;
}

static size_t numel(const mhfa_st_tensor *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->shape[d];
    return n;
}

/* test.out is float64: read it exactly. */
static double *read_f64(const mhfa_st_file *f, const mhfa_st_tensor *t) {
    assert_int_equal(t->dtype, MHFA_ST_F64);
    size_t n = numel(t);
    unsigned char *raw = checked_malloc(n * 8);
    assert_int_equal(fseek(f->stream, (long)(f->data_start + t->begin), SEEK_SET), 0);
    assert_int_equal(fread(raw, 8, n, f->stream), n);
    double *x = checked_malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = 0;
        for (int b = 7; b >= 0; b--)
            bits = bits << 8 | raw[8 * i + b];
        memcpy(&x[i], &bits, sizeof bits);
    }
    free(raw);
    return x;
}

static float *read_f32(const mhfa_context *ctx, const mhfa_st_file *f, const mhfa_st_tensor *t) {
    float *x = checked_malloc(numel(t) * sizeof(float));
    assert_int_equal(mhfa_st_read_floats(ctx, f, t, x), MHFA_SUCCESS);
    return x;
}

static mhfa_module *module_for(mhfa_context *ctx, const golden_file *g, const char *path,
                               int input_dim, int embed_dim) {
    mhfa_module *m = NULL;
    if (g->has_metadata) {
        if (mhfa_module_create_from_file(ctx, path, g->prefix, &m) != MHFA_SUCCESS)
            fail_msg("create_from_file %s: %s", path, mhfa_context_error_message(ctx));
        mhfa_config cfg;
        mhfa_module_get_config(m, &cfg);
        assert_int_equal(cfg.n_heads, g->n_heads);
        assert_int_equal(cfg.input_dim, input_dim);
        assert_int_equal(cfg.embed_dim, embed_dim);
        assert_int_equal(cfg.bias, g->bias);
        return m;
    }
    mhfa_config cfg = mhfa_config_default(g->n_heads, input_dim, embed_dim);
    cfg.bias = g->bias;
    assert_int_equal(mhfa_module_create(ctx, &cfg, &m), MHFA_SUCCESS);
    if (mhfa_module_load(m, path, g->prefix) != MHFA_SUCCESS)
        fail_msg("load %s: %s", path, mhfa_context_error_message(ctx));
    return m;
}

static void run_golden_file(const golden_file *g) {
    mhfa_context *ctx = test_context();
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", MHFA_TEST_DATA_DIR, g->name);
    mhfa_st_file f;
    if (mhfa_st_open(ctx, path, &f) != MHFA_SUCCESS)
        fail_msg("%s: %s", path, mhfa_context_error_message(ctx));
    const mhfa_st_tensor *q_t = require_tensor(&f, "test.q"),
                         *out_t = require_tensor(&f, "test.out");
    const mhfa_st_tensor *h_t = mhfa_st_find(&f, "test.h");
    int batch = (int)q_t->shape[0], n_query = (int)q_t->shape[1], input_dim = (int)q_t->shape[2];
    int graph_size = h_t ? (int)h_t->shape[1] : n_query, embed_dim = (int)out_t->shape[2];
    float *q = read_f32(ctx, &f, q_t), *h = h_t ? read_f32(ctx, &f, h_t) : NULL;
    double *expected = read_f64(&f, out_t);
    mhfa_st_close(&f);

    mhfa_module *m = module_for(ctx, g, path, input_dim, embed_dim);
    size_t n = (size_t)batch * n_query * embed_dim;
    float *out = checked_malloc(n * sizeof(float));
    poison(out, n);
    if (mhfa_forward(m, batch, n_query, graph_size, q, h, NULL, out) != MHFA_SUCCESS)
        fail_msg("forward: %s", mhfa_context_error_message(ctx));
    assert_close(out, expected, n, g->name);
    mhfa_module_destroy(m);
    free(q), free(h), free(expected), free(out);
}

static void test_golden_files(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof golden_files / sizeof golden_files[0]; i++)
        run_golden_file(&golden_files[i]);
}

/* ---- save and load ---- */

enum { HEADS = 2, DIN = 3, EMBED = 4 };

static mhfa_module *random_module(int bias, test_rng *rng) {
    test_case c = {1, 1, 1, DIN, EMBED, HEADS, bias, 1, 0, 0, 0, 0, 1.0, 0.0f, MHFA_FLOAT32, 0, 0};
    float *weight[4], *bias_of[4];
    mhfa_module *m = make_module(test_context(), &c, rng, weight, bias_of);
    free_weights(weight, bias_of);
    return m;
}

typedef struct snapshot { /* a module's four projections, to compare */
    float weight[4][EMBED * EMBED], bias[4][EMBED];
} snapshot;

static void take_snapshot(const mhfa_module *m, snapshot *s) {
    mhfa_config cfg;
    mhfa_module_get_config(m, &cfg);
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 4; i++)
        assert_int_equal(mhfa_module_get_projection(m, (mhfa_projection)i, s->weight[i],
                                                    cfg.bias ? s->bias[i] : NULL),
                         MHFA_SUCCESS);
}

static int same_snapshot(const snapshot *a, const snapshot *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

static void round_trip(int bias, const char *prefix) {
    test_rng rng;
    rng_init(&rng, test_seed() + (uint64_t)bias);
    mhfa_module *saved = random_module(bias, &rng);
    const char *path = temp_path("round_trip.safetensors");
    if (mhfa_module_save(saved, path, prefix) != MHFA_SUCCESS)
        fail_msg("save: %s", mhfa_context_error_message(test_context()));
    mhfa_module *loaded = NULL;
    if (mhfa_module_create_from_file(test_context(), path, prefix, &loaded) != MHFA_SUCCESS)
        fail_msg("create_from_file: %s", mhfa_context_error_message(test_context()));
    mhfa_config a, b;
    mhfa_module_get_config(saved, &a);
    mhfa_module_get_config(loaded, &b);
    assert_int_equal(a.n_heads, b.n_heads);
    assert_int_equal(a.input_dim, b.input_dim);
    assert_int_equal(a.embed_dim, b.embed_dim);
    assert_int_equal(a.bias, b.bias);
    snapshot s, t;
    take_snapshot(saved, &s);
    take_snapshot(loaded, &t);
    assert_true(same_snapshot(&s, &t));
    mhfa_module_destroy(saved);
    mhfa_module_destroy(loaded);
}

static void test_save_load_round_trip(void **state) {
    (void)state;
    round_trip(1, NULL);
    round_trip(0, "model.layers.3.self_attn.");
}

/* ---- malformed files: every fault, its status and message, the module unchanged ---- */

/* The header of a valid file for the HEADS/DIN/EMBED module with biases; DATA_BYTES of data. */
#define ENTRY(name, shape, begin, end)                                                             \
    "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #begin "," #end "]}"
#define QW     ENTRY("W_query.weight", "[4,3]", 0, 48)
#define QB     ENTRY("W_query.bias", "[4]", 48, 64)
#define KW     ENTRY("W_key.weight", "[4,3]", 64, 112)
#define KB     ENTRY("W_key.bias", "[4]", 112, 128)
#define VW     ENTRY("W_val.weight", "[4,3]", 128, 176)
#define VB     ENTRY("W_val.bias", "[4]", 176, 192)
#define OW     ENTRY("W_out.weight", "[4,4]", 192, 256)
#define OB     ENTRY("W_out.bias", "[4]", 256, 272)
#define REST   KW "," KB "," VW "," VB "," OW "," OB
#define VALID  "{" QW "," QB "," REST "}"
#define NOBIAS "{" QW "," KW "," VW "," OW "}"
enum { DATA_BYTES = 272 };

/* Writes the 8-byte length (declared, which may lie), the header and data_bytes of data. */
static const char *write_file(const char *name, uint64_t declared, const char *header,
                              size_t data_bytes, test_rng *rng) {
    const char *path = temp_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int b = 0; b < 8; b++)
        fputc((int)(declared >> (8 * b)) & 0xff, f);
    fwrite(header, 1, strlen(header), f);
    for (size_t i = 0; i < data_bytes / 4; i++) { /* random float32s, never zeros */
        float x = (float)rng_normal(rng);
        fwrite(&x, 4, 1, f);
    }
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *header_file(const char *header, size_t data_bytes, test_rng *rng) {
    return write_file("case.safetensors", strlen(header), header, data_bytes, rng);
}

typedef struct bad_case {
    const char *what, *header;
    size_t data_bytes;
    mhfa_status status;
    const char *message; /* a piece the message must hold */
} bad_case;

static const bad_case bad_cases[] = {
    {"header not JSON", "{\"W_query.weight\":{", DATA_BYTES, MHFA_ERROR_FORMAT, "not valid JSON"},
    {"header empty", "", DATA_BYTES, MHFA_ERROR_FORMAT, "not valid JSON"},
    {"header an array", "[1,2,3]", DATA_BYTES, MHFA_ERROR_FORMAT, "not a JSON object"},
    {"garbage after the JSON", VALID "x", DATA_BYTES, MHFA_ERROR_FORMAT, "not valid JSON"},
    {"entry not an object", "{\"W_query.weight\":[0,48]," QB "," REST "}", DATA_BYTES,
     MHFA_ERROR_FORMAT, "W_query.weight\": not an object"},
    {"dtype a number",
     "{\"W_query.weight\":{\"dtype\":4,\"shape\":[4,3],\"data_offsets\":[0,48]}," QB "," REST "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "dtype"},
    {"unknown dtype",
     "{\"W_query.weight\":{\"dtype\":\"F33\",\"shape\":[4,3],\"data_offsets\":[0,48]}," QB "," REST
     "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "unknown \"dtype\""},
    {"dtype mhfa cannot convert",
     "{\"W_query.weight\":{\"dtype\":\"I32\",\"shape\":[4,3],\"data_offsets\":[0,48]}," QB "," REST
     "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "not F32, F16, BF16 or F64"},
    {"shape a string",
     "{\"W_query.weight\":{\"dtype\":\"F32\",\"shape\":\"4x3\",\"data_offsets\":[0,48]}," QB
     "," REST "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "\"shape\" is not an array"},
    {"negative dimension", "{" ENTRY("W_query.weight", "[-4,-3]", 0, 48) "," QB "," REST "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "non-negative integer"},
    {"fractional dimension", "{" ENTRY("W_query.weight", "[4.5,3]", 0, 48) "," QB "," REST "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "non-negative integer"},
    {"element count overflows",
     "{" ENTRY("W_query.weight", "[4294967296,4294967296,4294967296]", 0, 48) "," QB "," REST "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "overflows"},
    {"size times dtype overflows",
     "{" ENTRY("W_query.weight", "[2147483648,2147483648]", 0, 48) "," QB "," REST "}", DATA_BYTES,
     MHFA_ERROR_FORMAT, "element count times"},
    {"no data after the header", VALID, 0, MHFA_ERROR_FORMAT, "past the data area"},
    {"offsets out of range", "{" ENTRY("W_query.weight", "[4,3]", 272, 320) "," QB "," REST "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "past the data area"},
    {"offsets huge",
     "{" ENTRY("W_query.weight", "[4,3]", 0, 18446744073709551615) "," QB "," REST "}", DATA_BYTES,
     MHFA_ERROR_FORMAT, "two non-negative integers"},
    {"offsets reversed", "{" ENTRY("W_query.weight", "[4,3]", 48, 0) "," QB "," REST "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "reversed"},
    {"offsets one number",
     "{\"W_query.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[48]}," QB "," REST
     "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "two non-negative integers"},
    {"size unlike the shape's", "{" ENTRY("W_query.weight", "[4,3]", 0, 44) "," QB "," REST "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "element count times"},
    {"tensors overlap", "{" QW "," ENTRY("W_query.bias", "[4]", 40, 56) "," REST "}", DATA_BYTES,
     MHFA_ERROR_FORMAT, "overlap"},
    {"duplicate name", "{" QW "," QB "," QB "," REST "}", DATA_BYTES, MHFA_ERROR_FORMAT,
     "named twice"},
    {"missing tensor", "{" QW "," QB "," KB "," VW "," VB "," OW "," OB "}", DATA_BYTES,
     MHFA_ERROR_FORMAT, "no tensor \"W_key.weight\""},
    {"wrong shape", "{" ENTRY("W_query.weight", "[3,4]", 0, 48) "," QB "," REST "}", DATA_BYTES,
     MHFA_ERROR_FORMAT, "\"W_query.weight\" has shape [3, 4], the module needs [4, 3]"},
    {"weight of one dimension", "{" ENTRY("W_query.weight", "[12]", 0, 48) "," QB "," REST "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "has shape [12]"},
    {"missing bias", "{" QW "," REST "}", DATA_BYTES, MHFA_ERROR_FORMAT,
     "no tensor \"W_query.bias\""},
    {"metadata not an object", "{\"__metadata__\":[1]," QW "," QB "," REST "}", DATA_BYTES,
     MHFA_ERROR_FORMAT, "__metadata__"},
    {"prefix missing", "{" ENTRY("enc.W_query.weight", "[4,3]", 0, 48) "," QB "," REST "}",
     DATA_BYTES, MHFA_ERROR_FORMAT, "is the prefix right"},
    {"data cut short", VALID, DATA_BYTES - 4, MHFA_ERROR_FORMAT, "truncated"},
};

static void expect_load_failure(mhfa_module *m, const char *path, const char *prefix,
                                mhfa_status status, const char *message, const char *what) {
    snapshot before, after;
    take_snapshot(m, &before);
    mhfa_status got = mhfa_module_load(m, path, prefix);
    const char *text = mhfa_context_error_message(test_context());
    if (got != status)
        fail_msg("%s: status %d (%s), want %d; message: %s", what, (int)got,
                 mhfa_status_string(got), (int)status, text);
    if (!strstr(text, message))
        fail_msg("%s: message \"%s\" does not say \"%s\"", what, text, message);
    take_snapshot(m, &after);
    if (!same_snapshot(&before, &after)) fail_msg("%s: the failed load changed the module", what);
}

static void test_malformed_headers(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_module *m = random_module(1, &rng);
    /* The valid file loads: the faults below are each the one thing wrong. */
    assert_int_equal(mhfa_module_load(m, header_file(VALID, DATA_BYTES, &rng), NULL), MHFA_SUCCESS);
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        expect_load_failure(m, header_file(c->header, c->data_bytes, &rng), NULL, c->status,
                            c->message, c->what);
    }
    mhfa_module_destroy(m);
}

static void test_malformed_lengths(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_module *m = random_module(1, &rng);
    const size_t n = strlen(VALID);
    fclose(fopen(temp_path("empty"), "wb"));
    expect_load_failure(m, temp_path("empty"), NULL, MHFA_ERROR_FORMAT, "too short", "empty file");
    expect_load_failure(m, write_file("zero", 0, "", 0, &rng), NULL, MHFA_ERROR_FORMAT,
                        "not valid JSON", "header length 0");
    FILE *f = fopen(temp_path("five"), "wb");
    fwrite("\x10\0\0\0\0", 1, 5, f);
    fclose(f);
    expect_load_failure(m, temp_path("five"), NULL, MHFA_ERROR_FORMAT, "too short", "five bytes");
    expect_load_failure(m, write_file("long", n + DATA_BYTES + 1, VALID, DATA_BYTES, &rng), NULL,
                        MHFA_ERROR_FORMAT, "more than the", "header length past the end");
    expect_load_failure(m, write_file("huge", (uint64_t)1 << 40, VALID, DATA_BYTES, &rng), NULL,
                        MHFA_ERROR_FORMAT, "over the limit", "header length of 1 TiB");
    expect_load_failure(m, write_file("max", UINT64_MAX, VALID, DATA_BYTES, &rng), NULL,
                        MHFA_ERROR_FORMAT, "over the limit", "header length 2^64-1");
    expect_load_failure(m, write_file("short", n - 5, VALID, DATA_BYTES, &rng), NULL,
                        MHFA_ERROR_FORMAT, "not valid JSON", "header length too small");
    expect_load_failure(m, temp_path("no such file"), NULL, MHFA_ERROR_IO, "cannot open",
                        "missing file");
    expect_load_failure(m, temp_dir, NULL, MHFA_ERROR_IO, "directory", "a directory");
    mhfa_module_destroy(m);
}

static void test_bias_mismatch(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_module *m = random_module(0, &rng);
    assert_int_equal(mhfa_module_load(m, header_file(NOBIAS, DATA_BYTES, &rng), NULL),
                     MHFA_SUCCESS);
    expect_load_failure(m, header_file(VALID, DATA_BYTES, &rng), NULL, MHFA_ERROR_FORMAT,
                        "\"W_query.bias\" is there but the module has no biases", "extra bias");
    mhfa_module_destroy(m);
}

static void test_create_from_file_faults(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_context *ctx = test_context();
    static const struct {
        const char *header, *message;
    } cases[] = {
        {VALID, "call mhfa_module_load"},
        {"{\"__metadata__\":{\"n_heads\":\"two\"}," QW "," QB "," REST "}", "not a positive"},
        {"{\"__metadata__\":{\"n_heads\":\"3\"}," QW "," QB "," REST "}", "not divisible"},
        {"{\"__metadata__\":{\"n_heads\":\"2\",\"input_dim\":\"5\"}," QW "," QB "," REST "}",
         "metadata says input_dim"},
        {"{\"__metadata__\":{\"n_heads\":\"2\",\"bias\":\"0\"}," QW "," QB "," REST "}",
         "metadata says bias"},
        {"{\"__metadata__\":{\"n_heads\":\"2\"}," ENTRY("W_query.weight", "[0,3]", 0, 0) "}",
         "not a [embed_dim, input_dim] matrix"},
        {"{\"__metadata__\":{\"n_heads\":\"2\"}," QW "," REST "}", "no tensor \"W_query.bias\""},
    };
    char sentinel;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mhfa_module *m = (mhfa_module *)(void *)&sentinel; /* must come back NULL */
        mhfa_status s = mhfa_module_create_from_file(
            ctx, header_file(cases[i].header, DATA_BYTES, &rng), "", &m);
        assert_int_equal(s, MHFA_ERROR_FORMAT);
        assert_null(m);
        if (!strstr(mhfa_context_error_message(ctx), cases[i].message))
            fail_msg("case %zu: message \"%s\" does not say \"%s\"", i,
                     mhfa_context_error_message(ctx), cases[i].message);
    }
    mhfa_module *m = NULL;
    const char *meta = "{\"__metadata__\":{\"n_heads\":\"2\"}," QW "," QB "," REST "}";
    assert_int_equal(
        mhfa_module_create_from_file(ctx, header_file(meta, DATA_BYTES, &rng), NULL, &m),
        MHFA_SUCCESS);
    mhfa_module_destroy(m);
    assert_int_equal(mhfa_module_create_from_file(NULL, "x", NULL, &m),
                     MHFA_ERROR_INVALID_ARGUMENT);
    assert_int_equal(mhfa_module_create_from_file(ctx, NULL, NULL, &m),
                     MHFA_ERROR_INVALID_ARGUMENT);
    assert_int_equal(mhfa_module_create_from_file(ctx, "x", NULL, NULL),
                     MHFA_ERROR_INVALID_ARGUMENT);
}

/* NaN and infinite weights load as they are, as PyTorch takes them. */
static void test_non_finite_weights(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_module *m = random_module(1, &rng);
    const char *path = header_file(VALID, DATA_BYTES, &rng);
    FILE *f = fopen(path, "r+b");
    const float bad[2] = {NAN, INFINITY};
    fseek(f, (long)(8 + strlen(VALID)), SEEK_SET);
    fwrite(bad, sizeof(float), 2, f);
    fclose(f);
    assert_int_equal(mhfa_module_load(m, path, NULL), MHFA_SUCCESS);
    snapshot s;
    take_snapshot(m, &s);
    assert_true(isnan(s.weight[0][0]));
    assert_true(isinf(s.weight[0][1]) && s.weight[0][1] > 0);
    mhfa_module_destroy(m);
}

static int temporary_files_left(void) {
    DIR *d = opendir(temp_dir);
    int found = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        found += strstr(e->d_name, ".tmp-") != NULL;
    if (d) closedir(d);
    return found;
}

static void expect_save_failure(const mhfa_module *m, const char *path, const char *what) {
    mhfa_status s = mhfa_module_save(m, path, NULL);
    if (s != MHFA_ERROR_IO)
        fail_msg("%s: status %d (%s), want MHFA_ERROR_IO", what, (int)s, mhfa_status_string(s));
    assert_int_equal(temporary_files_left(), 0);
}

static unsigned char *file_bytes(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    unsigned char *data = checked_malloc((size_t)*size + 1);
    assert_int_equal(fread(data, 1, (size_t)*size, f), (size_t)*size);
    fclose(f);
    return data;
}

/* A save that cannot complete leaves the old file as it was and no temporary file behind. */
static void test_save_failures(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_module *m = random_module(1, &rng);
    expect_save_failure(m, temp_path("no/such/folder.safetensors"), "missing folder");
    expect_save_failure(m, temp_dir, "a directory as the target");
    const char *path = temp_path("old.safetensors");
    assert_int_equal(mhfa_module_save(m, path, NULL), MHFA_SUCCESS);
    long old_size;
    unsigned char *old = file_bytes(path, &old_size);
    mhfa_module *other = random_module(1, &rng);
    /* A file-size limit makes the write fail part way, as a full disk would. */
    struct rlimit saved, small = {100, 100};
    getrlimit(RLIMIT_FSIZE, &saved);
    small.rlim_max = saved.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    mhfa_status s = mhfa_module_save(other, path, NULL);
    setrlimit(RLIMIT_FSIZE, &saved);
    assert_int_equal(s, MHFA_ERROR_IO);
    assert_non_null(strstr(mhfa_context_error_message(test_context()), "old file is intact"));
    long new_size;
    unsigned char *now = file_bytes(path, &new_size);
    assert_int_equal(new_size, old_size);
    assert_memory_equal(now, old, (size_t)old_size);
    assert_int_equal(temporary_files_left(), 0);
    assert_int_equal(mhfa_module_save(NULL, path, NULL), MHFA_ERROR_INVALID_ARGUMENT);
    assert_int_equal(mhfa_module_save(m, NULL, NULL), MHFA_ERROR_INVALID_ARGUMENT);
    assert_int_equal(mhfa_module_load(NULL, path, NULL), MHFA_ERROR_INVALID_ARGUMENT);
    assert_int_equal(mhfa_module_load(m, NULL, NULL), MHFA_ERROR_INVALID_ARGUMENT);
    free(old), free(now);
    mhfa_module_destroy(m);
    mhfa_module_destroy(other);
}

static int make_temp_dir(void **state) {
    (void)state;
    snprintf(temp_dir, sizeof temp_dir, "/tmp/mhfa-weights-XXXXXX");
    return mkdtemp(temp_dir) ? 0 : -1;
}

static int remove_temp_dir(void **state) {
    (void)state;
    DIR *d = opendir(temp_dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') unlink(temp_path(e->d_name));
    if (d) closedir(d);
    rmdir(temp_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_files),       cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_malformed_headers),  cmocka_unit_test(test_malformed_lengths),
        cmocka_unit_test(test_bias_mismatch),      cmocka_unit_test(test_create_from_file_faults),
        cmocka_unit_test(test_non_finite_weights), cmocka_unit_test(test_save_failures),
    };
    return cmocka_run_group_tests(tests, make_temp_dir, remove_temp_dir);
}
