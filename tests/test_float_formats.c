/* The weights files' number formats: every float16 bit pattern against the format's definition
 * (sign, 5-bit exponent with bias 15, 10-bit fraction; subnormals, infinities, NaN), bfloat16 and
 * float64 samples, and the byte order of the decoding. */
#include "support.h"

#include "internal.h"

#include <math.h>
#include <string.h>

/* The value a float16 pattern denotes, computed from the definition in double. */
static double half_value(unsigned bits) {
    int sign = bits >> 15, exponent = (bits >> 10) & 0x1f, fraction = bits & 0x3ff;
    double magnitude;
    if (exponent == 0x1f)
        magnitude = fraction ? NAN : INFINITY;
    else if (exponent == 0)
        magnitude = ldexp(fraction / 1024.0, -14);
    else
        magnitude = ldexp(1.0 + fraction / 1024.0, exponent - 15);
    return sign ? -magnitude : magnitude;
}

static void test_every_half(void **state) {
    (void)state;
    for (unsigned bits = 0; bits < 65536; bits++) {
        float got = mhfa_half_to_float((uint16_t)bits);
        double want = half_value(bits);
        if (isnan(want) ? !isnan(got) : (double)got != want || !signbit(got) != !signbit(want))
            fail_msg("float16 0x%04x: got %a, want %a", bits, (double)got, want);
    }
}

static void test_bfloat16(void **state) {
    (void)state;
    assert_true(mhfa_bfloat16_to_float(0x3f80) == 1.0f);
    assert_true(mhfa_bfloat16_to_float(0xc040) == -3.0f);
    assert_true(mhfa_bfloat16_to_float(0x3e20) == 0.15625f);
    assert_true(mhfa_bfloat16_to_float(0x0001) == ldexpf(1.0f, -133)); /* smallest subnormal */
    assert_true(isinf(mhfa_bfloat16_to_float(0x7f80)));
    assert_true(isnan(mhfa_bfloat16_to_float(0x7fc1)));
}

/* Where x should round to (nearest of the candidates, ties to the even pattern), from the values
 * the patterns denote; lo and hi are adjacent patterns of the same sign with x between them. */
static unsigned nearest_even(double x, unsigned lo, double lo_value, unsigned hi, double hi_value) {
    double to_lo = fabs(x - lo_value), to_hi = fabs(hi_value - x);
    if (to_lo != to_hi) return to_lo < to_hi ? lo : hi;
    return lo % 2 == 0 ? lo : hi;
}

/* float32 to float16: every pattern back to itself; between each two adjacent finite patterns
 * (and past the largest, towards 65536, where infinity starts) the midpoint and the floats just
 * beside it; overflow, NaN, and values below the smallest subnormal. */
static void test_round_to_half(void **state) {
    (void)state;
    for (unsigned sign = 0; sign < 2; sign++) {
        for (unsigned mag = 0; mag < 0x7c00; mag++) {
            unsigned lo = sign << 15 | mag, hi = sign << 15 | (mag + 1);
            double lo_value = half_value(lo),
                   hi_value = mag + 1 == 0x7c00 ? (sign ? -65536.0 : 65536.0) : half_value(hi);
            if (mhfa_float_to_half((float)lo_value) != lo)
                fail_msg("float16 0x%04x does not come back from %a", lo, lo_value);
            float mid = (float)((lo_value + hi_value) / 2); /* exact: 12 significant bits */
            float beside[3] = {nextafterf(mid, (float)lo_value), mid,
                               nextafterf(mid, (float)hi_value)};
            for (int i = 0; i < 3; i++) {
                unsigned want = nearest_even(beside[i], lo, lo_value, hi, hi_value);
                unsigned got = mhfa_float_to_half(beside[i]);
                if (got != want) fail_msg("%a rounds to 0x%04x, want 0x%04x", beside[i], got, want);
            }
        }
    }
    assert_int_equal(mhfa_float_to_half(1e6f), 0x7c00);
    assert_int_equal(mhfa_float_to_half(-INFINITY), 0xfc00);
    assert_int_equal(mhfa_float_to_half(ldexpf(1.0f, -26)), 0x0000);
    assert_int_equal(mhfa_float_to_half(-ldexpf(1.0f, -140)), 0x8000);
    assert_true(isnan(mhfa_half_to_float(mhfa_float_to_half(NAN))));
}

/* float32 to bfloat16 on a million random patterns, against the nearest of the two bfloat16
 * values around each (ties: every pattern halfway, also random). */
static void test_round_to_bfloat16(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed() + 16);
    for (int i = 0; i < 1000000; i++) {
        uint32_t bits = (uint32_t)rng_next(&rng);
        if (i % 4 == 0) bits = (bits & 0xffff0000u) | 0x8000u; /* a tie */
        float x;
        memcpy(&x, &bits, sizeof x);
        unsigned got = mhfa_float_to_bfloat16(x), lo = bits >> 16;
        if (isnan(x)) {
            if (!isnan(mhfa_bfloat16_to_float((uint16_t)got))) fail_msg("NaN %08x lost", bits);
            continue;
        }
        double lo_value = mhfa_bfloat16_to_float((uint16_t)lo);
        double hi_value = (lo & 0x7fff) == 0x7f7f ? copysign(ldexp(1.0, 128), lo_value)
                                                  : mhfa_bfloat16_to_float((uint16_t)(lo + 1));
        if ((lo & 0x7fff) == 0x7f80) continue; /* infinity itself */
        unsigned want = nearest_even(x, lo, lo_value, lo + 1, hi_value);
        if (got != want) fail_msg("%a (%08x) rounds to 0x%04x, want 0x%04x", x, bits, got, want);
    }
}

/* Little-endian bytes, unaligned (one byte in), for each dtype. */
static void test_decode_byte_order(void **state) {
    (void)state;
    const unsigned char f32[] = {0xee, 0x00, 0x00, 0xc0, 0x3f};       /* 1.5f */
    const unsigned char f16[] = {0xee, 0x00, 0xbe};                   /* -1.5 */
    const unsigned char bf16[] = {0xee, 0x40, 0x40};                  /* 3.0 */
    const unsigned char f64[] = {0xee, 0, 0, 0, 0, 0, 0, 0x04, 0x40}; /* 2.5 */
    const unsigned char big[] = {0xee, 0, 0, 0, 0, 0, 0, 0xf0, 0x47}; /* 2^128 */
    float x;
    mhfa_decode_floats(MHFA_ST_F32, f32 + 1, 1, &x);
    assert_true(x == 1.5f);
    mhfa_decode_floats(MHFA_ST_F16, f16 + 1, 1, &x);
    assert_true(x == -1.5f);
    mhfa_decode_floats(MHFA_ST_BF16, bf16 + 1, 1, &x);
    assert_true(x == 3.0f);
    mhfa_decode_floats(MHFA_ST_F64, f64 + 1, 1, &x);
    assert_true(x == 2.5f);
    mhfa_decode_floats(MHFA_ST_F64, big + 1, 1, &x); /* beyond float32: infinity */
    assert_true(isinf(x) && x > 0);
    unsigned char out[4];
    const float value = -2.0f;
    mhfa_encode_float32_le(&value, 1, out);
    const unsigned char want[4] = {0x00, 0x00, 0x00, 0xc0};
    assert_memory_equal(out, want, 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_half),        cmocka_unit_test(test_bfloat16),
        cmocka_unit_test(test_round_to_half),     cmocka_unit_test(test_round_to_bfloat16),
        cmocka_unit_test(test_decode_byte_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
