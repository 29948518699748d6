/* Fuzz target: any bytes as a safetensors file read from memory (fmemopen, mhfa_st_open_stream)
 * and from a file (mhfa_st_open): header length, JSON header, tensor table and data, no device.
 * Both readings must agree, status, message and table. A failure must come with a message; a
 * success must give a table the header check promises (names sorted and unique,
 * known dtypes, offsets inside the data area spanning the shape's bytes, no two tensors sharing a
 * byte), every tensor found by its name, and each convertible tensor read as exactly the floats
 * its bytes in the input hold. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned dtype_size(const char *name, mhfa_st_dtype *dtype) {
    static const struct {
        const char *name;
        mhfa_st_dtype dtype;
        unsigned bytes;
    } known[] = {
        {"F32", MHFA_ST_F32, 4},   {"F16", MHFA_ST_F16, 2},       {"BF16", MHFA_ST_BF16, 2},
        {"F64", MHFA_ST_F64, 8},   {"BOOL", MHFA_ST_OTHER, 1},    {"U8", MHFA_ST_OTHER, 1},
        {"I8", MHFA_ST_OTHER, 1},  {"F8_E5M2", MHFA_ST_OTHER, 1}, {"F8_E4M3", MHFA_ST_OTHER, 1},
        {"I16", MHFA_ST_OTHER, 2}, {"U16", MHFA_ST_OTHER, 2},     {"I32", MHFA_ST_OTHER, 4},
        {"U32", MHFA_ST_OTHER, 4}, {"I64", MHFA_ST_OTHER, 8},     {"U64", MHFA_ST_OTHER, 8},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i].name) == 0) {
            *dtype = known[i].dtype;
            return known[i].bytes;
        }
    return 0;
}

/* The float a value of dtype at p holds, by the formats' definitions (little-endian). */
static float reference_float(mhfa_st_dtype dtype, const unsigned char *p) {
    uint64_t v = 0;
    unsigned bytes = dtype == MHFA_ST_F64 ? 8 : dtype == MHFA_ST_F32 ? 4 : 2;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    uint32_t bits;
    float f;
    switch (dtype) {
    case MHFA_ST_F32:
        bits = (uint32_t)v;
        break;
    case MHFA_ST_BF16:
        bits = (uint32_t)v << 16;
        break;
    case MHFA_ST_F16: {
        int exponent = (int)(v >> 10 & 0x1f), mantissa = (int)(v & 0x3ff);
        double magnitude = exponent == 0    ? ldexp(mantissa, -24)
                           : exponent == 31 ? (mantissa ? NAN : INFINITY)
                                            : ldexp(1024 + mantissa, exponent - 25);
        f = (float)magnitude;
        return v >> 15 ? -f : f;
    }
    default: {
        double d;
        memcpy(&d, &v, sizeof d);
        return (float)d;
    }
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int same_float(float a, float b) {
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

static void check_tensor(const mhfa_context *ctx, const mhfa_st_file *file, const mhfa_st_tensor *t,
                         const uint8_t *data) {
    mhfa_st_dtype dtype;
    unsigned bytes = t->dtype_name ? dtype_size(t->dtype_name, &dtype) : 0;
    if (!t->name || !bytes || dtype != t->dtype) abort();
    if (t->ndim < 0 || t->ndim > 64 || t->begin > t->end || t->end > file->data_size) abort();
    /* The bytes of the first 4 dims (all the table keeps) against the span of the offsets. */
    uint64_t span = t->end - t->begin, numel = bytes;
    int overflow = 0;
    for (int d = 0; d < t->ndim && d < 4; d++) {
        if (numel && t->shape[d] > UINT64_MAX / numel) overflow = 1;
        numel *= t->shape[d];
    }
    if (t->ndim <= 4 && (overflow || numel != span)) abort();
    if (t->ndim > 4 && span && (overflow || !numel || span % numel)) abort();
    if (mhfa_st_find(file, t->name) != t) abort();
    if (t->dtype == MHFA_ST_OTHER) {
        if (mhfa_st_read_floats(ctx, file, t, NULL) == MHFA_SUCCESS) abort();
        return;
    }
    size_t count = (size_t)(span / bytes);
    float *values = malloc(count ? count * sizeof(float) : 1);
    if (!values) return;
    if (mhfa_st_read_floats(ctx, file, t, values) != MHFA_SUCCESS) abort();
    const unsigned char *raw = data + file->data_start + t->begin;
    for (size_t i = 0; i < count; i++)
        if (!same_float(values[i], reference_float(t->dtype, raw + i * bytes))) abort();
    free(values);
}

static int by_begin(const void *a, const void *b) {
    const mhfa_st_tensor *x = *(const mhfa_st_tensor *const *)a;
    const mhfa_st_tensor *y = *(const mhfa_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static void check_file(const mhfa_context *ctx, const mhfa_st_file *file, const uint8_t *data,
                       size_t size) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | data[i];
    if (file->data_start != 8 + n || file->data_start + file->data_size != size) abort();
    if (!file->header || (file->n_tensors && !file->tensors)) abort();
    const mhfa_st_tensor **order = malloc((file->n_tensors + 1) * sizeof *order);
    if (!order) return;
    for (size_t i = 0; i < file->n_tensors; i++) {
        const mhfa_st_tensor *t = &file->tensors[i];
        if (i && strcmp(file->tensors[i - 1].name, t->name) >= 0) abort(); /* sorted, unique */
        if (strcmp(t->name, "__metadata__") == 0) abort();
        check_tensor(ctx, file, t, data);
        order[i] = t;
    }
    qsort(order, file->n_tensors, sizeof *order, by_begin);
    uint64_t covered_to = 0;
    for (size_t i = 0; i < file->n_tensors; i++) {
        if (order[i]->begin == order[i]->end) continue;
        if (order[i]->begin < covered_to) abort(); /* two tensors share a byte */
        covered_to = order[i]->end;
    }
    free(order);
    if (mhfa_st_find(file, "__metadata__")) abort();
    const char *format = mhfa_st_metadata(file, "format");
    if (format && !file->metadata) abort();
}

/* The same table, read from the file, as from memory. */
static void check_same(const mhfa_st_file *a, const mhfa_st_file *b) {
    if (a->data_start != b->data_start || a->data_size != b->data_size ||
        a->n_tensors != b->n_tensors || !a->metadata != !b->metadata)
        abort();
    for (size_t i = 0; i < a->n_tensors; i++) {
        const mhfa_st_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        if (strcmp(x->name, y->name) || strcmp(x->dtype_name, y->dtype_name) ||
            x->dtype != y->dtype || x->ndim != y->ndim || x->begin != y->begin ||
            x->end != y->end || memcmp(x->shape, y->shape, sizeof x->shape))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/mhfa-fuzz-%ld-memory.st", (long)getpid());
    if (size == 0) return 0; /* fmemopen takes no empty buffer everywhere */
    /* A copy of its own, so that a read past the end is the sanitizer's to see. */
    uint8_t *copy = malloc(size);
    FILE *stream = copy ? fmemopen(memcpy(copy, data, size), size, "rb") : NULL;
    FILE *f = stream ? fopen(path, "wb") : NULL;
    int written = f && fwrite(data, 1, size, f) == size;
    if (f && fclose(f) != 0) written = 0;
    if (!written) {
        if (stream) fclose(stream);
        free(copy);
        return 0;
    }
    /* Contexts that only hold messages. The memory is named as the file, so that the two
     * readings must agree in their messages as well. */
    mhfa_context ctx, file_ctx;
    memset(&ctx, 0, sizeof ctx);
    memset(&file_ctx, 0, sizeof file_ctx);
    mhfa_st_file memory, file;
    mhfa_status status = mhfa_st_open_stream(&ctx, stream, size, path, &memory);
    mhfa_status file_status = mhfa_st_open(&file_ctx, path, &file);
    if (status != file_status) abort();
    if (status == MHFA_SUCCESS) {
        check_file(&ctx, &memory, data, size);
        check_same(&memory, &file);
        mhfa_st_close(&memory);
        mhfa_st_close(&file);
        if (memory.stream || memory.header || memory.tensors) abort();
    } else if (!mhfa_context_error_message(&ctx)[0] ||
               strcmp(mhfa_context_error_message(&ctx), mhfa_context_error_message(&file_ctx)) ||
               (status != MHFA_ERROR_FORMAT && status != MHFA_ERROR_IO &&
                status != MHFA_ERROR_OUT_OF_MEMORY)) {
        abort();
    }
    mhfa_release_message(&ctx);
    mhfa_release_message(&file_ctx);
    remove(path);
    free(copy);
    return 0;
}
