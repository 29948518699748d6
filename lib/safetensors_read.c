/* Reading safetensors files: 8 bytes of little-endian header length N, N bytes of JSON (an object
 * mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, offsets relative
 * to the data area after the header, and an optional "__metadata__" object of strings), then the
 * data. The file is untrusted: the whole header is checked before any data is read, and every
 * read is bounded by the sizes checked. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* As the format's reference implementation: a larger header is refused before it is read. */
#define MAX_HEADER_BYTES (100u * 1000u * 1000u)
/* JSON numbers are doubles: integers beyond 2^53 would not be exact. */
#define MAX_EXACT_INTEGER 9007199254740992.0

static const struct {
    const char *name;
    mhfa_st_dtype dtype;
    unsigned bytes;
} dtypes[] = {
    {"F32", MHFA_ST_F32, 4},   {"F16", MHFA_ST_F16, 2},       {"BF16", MHFA_ST_BF16, 2},
    {"F64", MHFA_ST_F64, 8},   {"BOOL", MHFA_ST_OTHER, 1},    {"U8", MHFA_ST_OTHER, 1},
    {"I8", MHFA_ST_OTHER, 1},  {"F8_E5M2", MHFA_ST_OTHER, 1}, {"F8_E4M3", MHFA_ST_OTHER, 1},
    {"I16", MHFA_ST_OTHER, 2}, {"U16", MHFA_ST_OTHER, 2},     {"I32", MHFA_ST_OTHER, 4},
    {"U32", MHFA_ST_OTHER, 4}, {"I64", MHFA_ST_OTHER, 8},     {"U64", MHFA_ST_OTHER, 8},
};

static unsigned dtype_bytes(mhfa_st_dtype dtype) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dtype == dtype && dtype != MHFA_ST_OTHER) return dtypes[i].bytes;
    return 0;
}

static int is_exact_count(const cJSON *item, uint64_t *value) {
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= MAX_EXACT_INTEGER) || d != floor(d)) return 0;
    *value = (uint64_t)d;
    return 1;
}

/* Whether a * b fits in uint64_t; the product goes to *out. */
static int multiply_fits(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

static mhfa_status bad_entry(const mhfa_context *ctx, const mhfa_st_file *file, const char *name,
                             const char *what) {
    return mhfa_fail(ctx, MHFA_ERROR_FORMAT, "weights file %s: tensor \"%.200s\": %s", file->path,
                     name, what);
}

static mhfa_status check_shape(const mhfa_context *ctx, const mhfa_st_file *file,
                               const cJSON *shape, mhfa_st_tensor *t, uint64_t *numel) {
    if (!cJSON_IsArray(shape)) return bad_entry(ctx, file, t->name, "\"shape\" is not an array");
    *numel = 1;
    t->ndim = 0;
    for (const cJSON *dim = shape->child; dim; dim = dim->next, t->ndim++) {
        uint64_t size;
        if (t->ndim == 64) return bad_entry(ctx, file, t->name, "more than 64 dimensions");
        if (!is_exact_count(dim, &size))
            return bad_entry(ctx, file, t->name,
                             "a dimension of \"shape\" is not a non-negative integer");
        if (!multiply_fits(*numel, size, numel))
            return bad_entry(ctx, file, t->name, "the shape's element count overflows");
        if (t->ndim < 4) t->shape[t->ndim] = size;
    }
    return MHFA_SUCCESS;
}

static mhfa_status check_offsets(const mhfa_context *ctx, const mhfa_st_file *file,
                                 const cJSON *offsets, mhfa_st_tensor *t) {
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !is_exact_count(offsets->child, &t->begin) ||
        !is_exact_count(offsets->child->next, &t->end))
        return bad_entry(ctx, file, t->name,
                         "\"data_offsets\" is not two non-negative integers [begin, end]");
    if (t->begin > t->end) return bad_entry(ctx, file, t->name, "\"data_offsets\" are reversed");
    if (t->end > file->data_size)
        return mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                         "weights file %s: tensor \"%.200s\": data_offsets end %llu lies past the "
                         "data area (%llu bytes): the file is truncated or the offsets wrong",
                         file->path, t->name, (unsigned long long)t->end,
                         (unsigned long long)file->data_size);
    return MHFA_SUCCESS;
}

/* One header entry: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}. */
static mhfa_status check_entry(const mhfa_context *ctx, const mhfa_st_file *file,
                               const cJSON *entry, mhfa_st_tensor *t) {
    memset(t, 0, sizeof *t);
    t->name = entry->string;
    if (!cJSON_IsObject(entry)) return bad_entry(ctx, file, t->name, "not an object");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!cJSON_IsString(dtype)) return bad_entry(ctx, file, t->name, "no \"dtype\" string");
    unsigned bytes = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0] && !bytes; i++)
        if (strcmp(dtype->valuestring, dtypes[i].name) == 0)
            t->dtype = dtypes[i].dtype, bytes = dtypes[i].bytes;
    if (!bytes) return bad_entry(ctx, file, t->name, "unknown \"dtype\"");
    t->dtype_name = dtype->valuestring;
    uint64_t numel = 0, expected;
    mhfa_status status =
        check_shape(ctx, file, cJSON_GetObjectItemCaseSensitive(entry, "shape"), t, &numel);
    if (status == MHFA_SUCCESS)
        status =
            check_offsets(ctx, file, cJSON_GetObjectItemCaseSensitive(entry, "data_offsets"), t);
    if (status != MHFA_SUCCESS) return status;
    if (!multiply_fits(numel, bytes, &expected) || t->end - t->begin != expected)
        return bad_entry(ctx, file, t->name,
                         "\"data_offsets\" span a size other than the shape's element count "
                         "times the dtype's size");
    return MHFA_SUCCESS;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const mhfa_st_tensor *)a)->name, ((const mhfa_st_tensor *)b)->name);
}

static int by_begin(const void *a, const void *b) {
    const mhfa_st_tensor *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* No two tensors share a name, and no two share a byte (empty tensors occupy none). Leaves the
 * tensors sorted by name. */
static mhfa_status check_disjoint(const mhfa_context *ctx, mhfa_st_file *file) {
    qsort(file->tensors, file->n_tensors, sizeof *file->tensors, by_name);
    for (size_t i = 1; i < file->n_tensors; i++)
        if (strcmp(file->tensors[i - 1].name, file->tensors[i].name) == 0)
            return bad_entry(ctx, file, file->tensors[i].name, "named twice in the header");
    qsort(file->tensors, file->n_tensors, sizeof *file->tensors, by_begin);
    uint64_t covered_to = 0;
    const char *last = NULL;
    for (size_t i = 0; i < file->n_tensors; i++) {
        const mhfa_st_tensor *t = &file->tensors[i];
        if (t->begin == t->end) continue;
        if (last && t->begin < covered_to)
            return mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                             "weights file %s: tensors \"%.200s\" and \"%.200s\" overlap",
                             file->path, last, t->name);
        covered_to = t->end, last = t->name;
    }
    qsort(file->tensors, file->n_tensors, sizeof *file->tensors, by_name);
    return MHFA_SUCCESS;
}

static mhfa_status check_header(const mhfa_context *ctx, mhfa_st_file *file) {
    const cJSON *root = file->header;
    if (!cJSON_IsObject(root))
        return mhfa_fail(ctx, MHFA_ERROR_FORMAT, "weights file %s: the header is not a JSON object",
                         file->path);
    size_t count = 0;
    for (const cJSON *e = root->child; e; e = e->next)
        count++;
    file->tensors = calloc(count ? count : 1, sizeof *file->tensors);
    if (!file->tensors) return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (file->metadata || !cJSON_IsObject(e))
                return mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                                 "weights file %s: \"__metadata__\" is not one JSON object",
                                 file->path);
            file->metadata = e;
            continue;
        }
        mhfa_status status = check_entry(ctx, file, e, &file->tensors[file->n_tensors]);
        if (status != MHFA_SUCCESS) return status;
        file->n_tensors++;
    }
    return check_disjoint(ctx, file);
}

static mhfa_status read_exactly(const mhfa_context *ctx, const mhfa_st_file *file, uint64_t offset,
                                void *dst, size_t bytes) {
    if (offset > (uint64_t)INT64_MAX || fseeko(file->stream, (off_t)offset, SEEK_SET) != 0 ||
        fread(dst, 1, bytes, file->stream) != bytes)
        return mhfa_fail(ctx, MHFA_ERROR_IO, "weights file %s: reading %zu bytes at %llu failed%s",
                         file->path, bytes, (unsigned long long)offset,
                         feof(file->stream) ? " (the file got shorter)" : "");
    return MHFA_SUCCESS;
}

/* Reads and parses the header; the file's size is known and checked against it first. */
static mhfa_status read_header(const mhfa_context *ctx, mhfa_st_file *file, uint64_t file_size) {
    unsigned char length_bytes[8];
    if (file_size < 8)
        return mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                         "weights file %s: %llu bytes, too short for a safetensors file",
                         file->path, (unsigned long long)file_size);
    mhfa_status status = read_exactly(ctx, file, 0, length_bytes, 8);
    if (status != MHFA_SUCCESS) return status;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | length_bytes[i];
    if (n > MAX_HEADER_BYTES)
        return mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                         "weights file %s: header length %llu is over the limit of %u bytes",
                         file->path, (unsigned long long)n, MAX_HEADER_BYTES);
    if (n > file_size - 8)
        return mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                         "weights file %s: header length %llu is more than the %llu bytes after "
                         "it (a truncated or not a safetensors file)",
                         file->path, (unsigned long long)n, (unsigned long long)(file_size - 8));
    file->data_start = 8 + n;
    file->data_size = file_size - 8 - n;
    char *text = malloc((size_t)n + 1);
    if (!text) return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    status = read_exactly(ctx, file, 8, text, (size_t)n);
    if (status == MHFA_SUCCESS) {
        text[n] = '\0';
        const char *end = NULL;
        file->header = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
        /* The writer may pad the header with spaces; anything else after the JSON is an error. */
        size_t parsed = file->header ? (size_t)(end - text) : 0;
        while (file->header && parsed < n && text[parsed] == ' ')
            parsed++;
        if (!file->header || parsed != n)
            status = mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                               "weights file %s: the %llu-byte header is not valid JSON",
                               file->path, (unsigned long long)n);
    }
    free(text);
    return status;
}

/* Opens path for reading if it is a regular file; a FIFO or device would block or never end, so
 * it is opened without blocking and looked at before anything is read. */
static mhfa_status open_regular(const mhfa_context *ctx, mhfa_st_file *file, uint64_t *size) {
    int fd = open(file->path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return mhfa_fail(ctx, MHFA_ERROR_IO, "weights file %s: cannot open it: %s", file->path,
                         strerror(errno));
    struct stat info;
    mhfa_status status = MHFA_SUCCESS;
    if (fstat(fd, &info) != 0)
        status = mhfa_fail(ctx, MHFA_ERROR_IO, "weights file %s: cannot read its size: %s",
                           file->path, strerror(errno));
    else if (!S_ISREG(info.st_mode))
        status = mhfa_fail(ctx, MHFA_ERROR_IO, "weights file %s: not a regular file%s", file->path,
                           S_ISDIR(info.st_mode) ? " (a directory)" : "");
    else if (!(file->stream = fdopen(fd, "rb")))
        status = mhfa_fail(ctx, MHFA_ERROR_IO, "weights file %s: cannot open it: %s", file->path,
                           strerror(errno));
    if (status != MHFA_SUCCESS) {
        close(fd);
        return status;
    }
    *size = (uint64_t)info.st_size;
    return MHFA_SUCCESS;
}

/* The header of file->stream, of size bytes; on failure the file is closed. */
static mhfa_status read_and_check(const mhfa_context *ctx, mhfa_st_file *file, uint64_t size) {
    mhfa_status status = read_header(ctx, file, size);
    if (status == MHFA_SUCCESS) status = check_header(ctx, file);
    if (status != MHFA_SUCCESS) mhfa_st_close(file);
    return status;
}

mhfa_status mhfa_st_open(const mhfa_context *ctx, const char *path, mhfa_st_file *file) {
    memset(file, 0, sizeof *file);
    file->path = path;
    uint64_t size = 0;
    mhfa_status status = open_regular(ctx, file, &size);
    if (status != MHFA_SUCCESS) {
        mhfa_st_close(file);
        return status;
    }
    return read_and_check(ctx, file, size);
}

mhfa_status mhfa_st_open_stream(const mhfa_context *ctx, FILE *stream, uint64_t size,
                                const char *name, mhfa_st_file *file) {
    memset(file, 0, sizeof *file);
    file->stream = stream;
    file->path = name;
    return read_and_check(ctx, file, size);
}

void mhfa_st_close(mhfa_st_file *file) {
    if (file->stream) fclose(file->stream);
    cJSON_Delete(file->header);
    free(file->tensors);
    memset(file, 0, sizeof *file);
}

const mhfa_st_tensor *mhfa_st_find(const mhfa_st_file *file, const char *name) {
    mhfa_st_tensor key;
    key.name = name;
    return bsearch(&key, file->tensors, file->n_tensors, sizeof key, by_name);
}

const char *mhfa_st_metadata(const mhfa_st_file *file, const char *key) {
    const cJSON *value =
        file->metadata ? cJSON_GetObjectItemCaseSensitive(file->metadata, key) : NULL;
    return cJSON_IsString(value) ? value->valuestring : NULL;
}

mhfa_status mhfa_st_read_floats(const mhfa_context *ctx, const mhfa_st_file *file,
                                const mhfa_st_tensor *tensor, float *out) {
    unsigned bytes = dtype_bytes(tensor->dtype);
    if (!bytes) return bad_entry(ctx, file, tensor->name, "dtype is not F32, F16, BF16 or F64");
    uint64_t size = tensor->end - tensor->begin; /* == numel * bytes, checked on open */
    if (size > SIZE_MAX) return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    unsigned char *raw = malloc(size ? (size_t)size : 1);
    if (!raw) return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    mhfa_status status =
        read_exactly(ctx, file, file->data_start + tensor->begin, raw, (size_t)size);
    if (status == MHFA_SUCCESS) mhfa_decode_floats(tensor->dtype, raw, (size_t)size / bytes, out);
    free(raw);
    return status;
}
