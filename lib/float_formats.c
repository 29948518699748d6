/* Conversions to float32 from the byte layouts weights files use: little-endian float16,
 * bfloat16, float32 and float64, read byte by byte so that neither the host's byte order nor the
 * data's alignment matters. */
#include "internal.h"

#include <math.h>
#include <string.h>

static float float_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t float_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static uint64_t le_bytes(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

float mhfa_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    if (exponent == 0x1f) /* infinity, or NaN with its payload kept */
        return float_from_bits(sign | 0x7f800000u | mantissa << 13);
    if (exponent == 0) { /* zero or subnormal: mantissa * 2^-24, exact in float32 */
        float magnitude = ldexpf((float)mantissa, -24);
        return sign ? -magnitude : magnitude;
    }
    return float_from_bits(sign | (exponent + 112) << 23 | mantissa << 13);
}

float mhfa_bfloat16_to_float(uint16_t b) {
    return float_from_bits((uint32_t)b << 16);
}

void mhfa_decode_floats(mhfa_st_dtype dtype, const unsigned char *bytes, size_t count, float *out) {
    for (size_t i = 0; i < count; i++) {
        switch (dtype) {
        case MHFA_ST_F32:
            out[i] = float_from_bits((uint32_t)le_bytes(bytes + 4 * i, 4));
            break;
        case MHFA_ST_F16:
            out[i] = mhfa_half_to_float((uint16_t)le_bytes(bytes + 2 * i, 2));
            break;
        case MHFA_ST_BF16:
            out[i] = mhfa_bfloat16_to_float((uint16_t)le_bytes(bytes + 2 * i, 2));
            break;
        case MHFA_ST_F64: {
            uint64_t bits = le_bytes(bytes + 8 * i, 8);
            double d;
            memcpy(&d, &bits, sizeof d);
            out[i] = (float)d; /* rounds as PyTorch's .float() does; beyond float range: inf */
            break;
        }
        default:
            out[i] = NAN;
        }
    }
}

void mhfa_encode_float32_le(const float *values, size_t count, unsigned char *bytes) {
    for (size_t i = 0; i < count; i++) {
        uint32_t bits = float_bits(values[i]);
        for (int b = 0; b < 4; b++)
            bytes[4 * i + b] = (unsigned char)(bits >> (8 * b));
    }
}
