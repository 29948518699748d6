/* Conversions to float32 from the byte layouts weights files use: little-endian float16,
 * bfloat16, float32 and float64, read byte by byte so that neither the host's byte order nor the
 * data's alignment matters; and from float32 to float16 and bfloat16, rounded to nearest even as
 * PyTorch's .half() and .bfloat16() round. */
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

uint16_t mhfa_float_to_half(float f) {
    const uint32_t bits = float_bits(f), sign = (bits >> 16) & 0x8000u, abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) /* NaN: quiet, with the top of its payload */
        return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* from 65520 up: infinity */
    if (abs >= 0x38800000u) { /* normal: rebias the exponent, round off 13 fraction bits */
        uint32_t rebiased = abs - 0x38000000u;
        return (uint16_t)(sign | ((rebiased + 0xfffu + ((rebiased >> 13) & 1u)) >> 13));
    }
    /* Below 2^-14: a multiple of 2^-24, the integer significand * 2^(exponent - 126) rounded. */
    const uint32_t exponent = abs >> 23, significand = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;
    if (exponent == 0 || shift > 24) return (uint16_t)sign; /* below 2^-25: zero */
    uint32_t units = significand >> shift, rest = significand & ((1u << shift) - 1);
    const uint32_t tie = 1u << (shift - 1);
    if (rest > tie || (rest == tie && (units & 1u))) units++; /* may become 2^-14, still right */
    return (uint16_t)(sign | units);
}

uint16_t mhfa_float_to_bfloat16(float f) {
    const uint32_t bits = float_bits(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u); /* quiet */
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
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
