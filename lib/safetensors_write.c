/* Writing safetensors files of float32 tensors: the header built with cJSON and padded with
 * spaces to a multiple of 8 bytes (so the data is aligned, as PyTorch's writer does), the tensors
 * back to back in the order given. The file goes to a temporary name beside path, is flushed to
 * disk and then renamed over path, so path holds the old file or the whole new one. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t numel_of(const mhfa_st_output *t) {
    return t->ndim == 1 ? t->shape[0] : t->shape[0] * t->shape[1];
}

static int add_number(cJSON *array, uint64_t value) {
    cJSON *number = cJSON_CreateNumber((double)value);
    if (cJSON_AddItemToArray(array, number)) return 1;
    cJSON_Delete(number);
    return 0;
}

/* Adds name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} to root. */
static int add_tensor_entry(cJSON *root, const mhfa_st_output *t, uint64_t begin, uint64_t end) {
    cJSON *entry = cJSON_CreateObject();
    if (!cJSON_AddItemToObject(root, t->name, entry)) {
        cJSON_Delete(entry);
        return 0;
    }
    /* From here on root owns entry and all that is added to it. */
    if (!cJSON_AddStringToObject(entry, "dtype", "F32")) return 0;
    cJSON *shape = cJSON_AddArrayToObject(entry, "shape");
    for (int d = 0; shape && d < t->ndim; d++)
        if (!add_number(shape, t->shape[d])) return 0;
    cJSON *offsets = cJSON_AddArrayToObject(entry, "data_offsets");
    return shape && offsets && add_number(offsets, begin) && add_number(offsets, end);
}

/* The header's text, padded; NULL when out of memory. */
static char *header_text(const mhfa_st_output *tensors, int n_tensors,
                         const char *const (*metadata)[2], int n_metadata, size_t *length) {
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = root && n_metadata ? cJSON_AddObjectToObject(root, "__metadata__") : NULL;
    int ok = root && (meta || !n_metadata);
    for (int i = 0; ok && i < n_metadata; i++)
        ok = cJSON_AddStringToObject(meta, metadata[i][0], metadata[i][1]) != NULL;
    uint64_t offset = 0;
    for (int i = 0; ok && i < n_tensors; i++) {
        uint64_t bytes = numel_of(&tensors[i]) * 4;
        ok = add_tensor_entry(root, &tensors[i], offset, offset + bytes);
        offset += bytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) return NULL;
    size_t n = strlen(json), padded = (n + 7) / 8 * 8;
    char *text = realloc(json, padded + 1);
    if (!text) {
        free(json);
        return NULL;
    }
    memset(text + n, ' ', padded - n);
    text[padded] = '\0';
    *length = padded;
    return text;
}

static int write_all(int fd, const void *data, size_t bytes) {
    const unsigned char *p = data;
    while (bytes > 0) {
        ssize_t n = write(fd, p, bytes);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        p += n, bytes -= (size_t)n;
    }
    return 1;
}

/* Writes the length, header and data to fd; 0 with errno set on failure. */
static int write_contents(int fd, const char *header, size_t header_length,
                          const mhfa_st_output *tensors, int n_tensors) {
    unsigned char length_bytes[8];
    for (int b = 0; b < 8; b++)
        length_bytes[b] = (unsigned char)((uint64_t)header_length >> (8 * b));
    if (!write_all(fd, length_bytes, 8) || !write_all(fd, header, header_length)) return 0;
    for (int i = 0; i < n_tensors; i++) {
        size_t count = (size_t)numel_of(&tensors[i]);
        unsigned char *bytes = malloc(count * 4 + 1);
        if (!bytes) {
            errno = ENOMEM;
            return 0;
        }
        mhfa_encode_float32_le(tensors[i].data, count, bytes);
        int ok = write_all(fd, bytes, count * 4);
        free(bytes);
        if (!ok) return 0;
    }
    return fsync(fd) == 0;
}

/* Creates a new temporary file beside path (name into tmp); -1 with errno set on failure. */
static int create_temporary(const char *path, char *tmp, size_t size) {
    static unsigned counter; /* only makes names differ; O_EXCL makes them safe */
    for (int attempt = 0; attempt < 100; attempt++) {
        int n = snprintf(tmp, size, "%s.tmp-%ld-%u", path, (long)getpid(), counter++ + attempt);
        if (n < 0 || (size_t)n >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

mhfa_status mhfa_st_write(const mhfa_context *ctx, const char *path, const mhfa_st_output *tensors,
                          int n_tensors, const char *const (*metadata)[2], int n_metadata) {
    size_t header_length = 0;
    char *header = header_text(tensors, n_tensors, metadata, n_metadata, &header_length);
    size_t tmp_size = strlen(path) + 64;
    char *tmp = malloc(tmp_size);
    if (!header || !tmp) {
        free(header), free(tmp);
        return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    mhfa_status status = MHFA_SUCCESS;
    int fd = create_temporary(path, tmp, tmp_size);
    if (fd < 0) {
        status = mhfa_fail(ctx, MHFA_ERROR_IO, "saving %s: cannot create a file beside it: %s",
                           path, strerror(errno));
    } else {
        int written = write_contents(fd, header, header_length, tensors, n_tensors);
        int error = errno;
        if (close(fd) != 0 && written) written = 0, error = errno;
        if (written && rename(tmp, path) != 0) written = 0, error = errno;
        if (!written) {
            unlink(tmp);
            status =
                mhfa_fail(ctx, error == ENOMEM ? MHFA_ERROR_OUT_OF_MEMORY : MHFA_ERROR_IO,
                          "saving %s failed (the old file is intact): %s", path, strerror(error));
        }
    }
    free(header);
    free(tmp);
    return status;
}
