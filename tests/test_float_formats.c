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
        cmocka_unit_test(test_every_half),
        cmocka_unit_test(test_bfloat16),
        cmocka_unit_test(test_decode_byte_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
