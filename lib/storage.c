/* The module's storage type on the host: element sizes, and float32 arrays converted to and from
 * the 16-bit types (in the host's byte order, as the device buffers hold them), rounded to
 * nearest even as PyTorch's .half() and .bfloat16() round. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

const char *mhfa_storage_option(mhfa_dtype dtype) {
    switch (dtype) {
    case MHFA_FLOAT16:
        return "-D STORAGE=1 ";
    case MHFA_BFLOAT16:
        return "-D STORAGE=2 ";
    default:
        return ""; /* float32 programs keep the options they had before half storage */
    }
}

static uint16_t to_16_bits(mhfa_dtype dtype, float f) {
    return dtype == MHFA_FLOAT16 ? mhfa_float_to_half(f) : mhfa_float_to_bfloat16(f);
}

static float from_16_bits(mhfa_dtype dtype, uint16_t bits) {
    return dtype == MHFA_FLOAT16 ? mhfa_half_to_float(bits) : mhfa_bfloat16_to_float(bits);
}

void mhfa_to_storage(mhfa_dtype dtype, const float *from, size_t count, void *to) {
    if (dtype == MHFA_FLOAT32) {
        memcpy(to, from, count * sizeof(float));
        return;
    }
    uint16_t *bits = to;
    for (size_t i = 0; i < count; i++)
        bits[i] = to_16_bits(dtype, from[i]);
}

void mhfa_from_storage(mhfa_dtype dtype, const void *from, size_t count, float *to) {
    if (dtype == MHFA_FLOAT32) {
        memcpy(to, from, count * sizeof(float));
        return;
    }
    const uint16_t *bits = from;
    for (size_t i = 0; i < count; i++)
        to[i] = from_16_bits(dtype, bits[i]);
}

void mhfa_round_to_storage(mhfa_dtype dtype, float *values, size_t count) {
    if (dtype == MHFA_FLOAT32) return;
    for (size_t i = 0; i < count; i++)
        values[i] = from_16_bits(dtype, to_16_bits(dtype, values[i]));
}

const void *mhfa_storage_copy(mhfa_dtype dtype, const float *from, size_t count, void **owned) {
    *owned = NULL;
    if (dtype == MHFA_FLOAT32) return from;
    *owned = malloc(count * sizeof(uint16_t) + 1); /* + 1: a valid pointer for count 0 too */
    if (*owned) mhfa_to_storage(dtype, from, count, *owned);
    return *owned;
}

static int known(mhfa_dtype dtype) {
    return dtype == MHFA_FLOAT32 || dtype == MHFA_FLOAT16 || dtype == MHFA_BFLOAT16;
}

mhfa_status mhfa_dtype_encode(mhfa_dtype dtype, const float *values, size_t count, void *stored) {
    if (!known(dtype) || (count > 0 && (!values || !stored))) return MHFA_ERROR_INVALID_ARGUMENT;
    if (count > 0) mhfa_to_storage(dtype, values, count, stored);
    return MHFA_SUCCESS;
}

mhfa_status mhfa_dtype_decode(mhfa_dtype dtype, const void *stored, size_t count, float *values) {
    if (!known(dtype) || (count > 0 && (!values || !stored))) return MHFA_ERROR_INVALID_ARGUMENT;
    if (count > 0) mhfa_from_storage(dtype, stored, count, values);
    return MHFA_SUCCESS;
}

size_t mhfa_dtype_bytes(mhfa_dtype dtype) {
    return !known(dtype) ? 0 : dtype == MHFA_FLOAT32 ? sizeof(float) : sizeof(uint16_t);
}
