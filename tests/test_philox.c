/* Philox4x32-10 against Random123's known answers, and the dropout decisions built on it. No
 * device needed. */
#include "support.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Random123's kat_vectors, "philox4x32 10" lines: counter[4] key[2] -> output[4]. The expected
 * words were also recomputed by a separate Python implementation of Salmon et al. (2011). */
typedef struct philox_kat {
    uint32_t counter[4], key[2], expected[4];
} philox_kat;

static const philox_kat kats[] = {
    {{0x00000000, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000000},
     {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

static void test_known_answers(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof kats / sizeof kats[0]; i++) {
        uint32_t out[4];
        mhfa_philox4x32_10(kats[i].counter, kats[i].key, out);
        for (int w = 0; w < 4; w++)
            if (out[w] != kats[i].expected[w])
                fail_msg("vector %zu word %d: got %08x, want %08x", i, w, (unsigned)out[w],
                         (unsigned)kats[i].expected[w]);
    }
}

static void test_inputs_not_modified(void **state) {
    (void)state;
    const philox_kat *k = &kats[2];
    uint32_t counter[4] = {k->counter[0], k->counter[1], k->counter[2], k->counter[3]};
    uint32_t key[2] = {k->key[0], k->key[1]};
    uint32_t out[4];
    mhfa_philox4x32_10(counter, key, out);
    assert_memory_equal(counter, k->counter, sizeof counter);
    assert_memory_equal(key, k->key, sizeof key);
}

static void test_uniform24_range(void **state) {
    (void)state;
    assert_true(mhfa_uniform24(0u) == 0.0f);
    assert_true(mhfa_uniform24(0xffffffffu) < 1.0f);
    assert_true(mhfa_uniform24(0xffffffffu) > 0.999999f);
    assert_true(mhfa_uniform24(0x80000000u) == 0.5f);
}

/* ---- dropout ---- */

enum { POSITIONS = 1000000 };

static double dropped_fraction(float p, uint64_t seed, uint64_t offset) {
    size_t dropped = 0;
    for (uint64_t i = 0; i < POSITIONS; i++)
        dropped += !mhfa_dropout_keeps(i, p, seed, offset);
    return (double)dropped / POSITIONS;
}

static void test_dropout_fraction(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    const float ps[] = {0.1f, 0.5f, 0.9f};
    for (int i = 0; i < 3; i++) {
        uint64_t seed = rng_next(&rng), offset = rng_next(&rng) % 1000;
        double fraction = dropped_fraction(ps[i], seed, offset);
        if (fabs(fraction - ps[i]) > 0.01)
            fail_msg("p %.1f: dropped %.4f of %d positions", (double)ps[i], fraction, POSITIONS);
    }
}

static void test_dropout_p_zero_keeps_all(void **state) {
    (void)state;
    assert_true(dropped_fraction(0.0f, 12345, 0) == 0.0);
}

/* Share of n positions (from start) where two streams decide differently, at p = 0.5. */
static double disagreement(uint64_t start, size_t n, uint64_t seed_a, uint64_t offset_a,
                           uint64_t seed_b, uint64_t offset_b) {
    size_t differ = 0;
    for (uint64_t i = start; i < start + n; i++)
        differ += mhfa_dropout_keeps(i, 0.5f, seed_a, offset_a) !=
                  mhfa_dropout_keeps(i, 0.5f, seed_b, offset_b);
    return (double)differ / (double)n;
}

/* Independent masks at p = 0.5 disagree on about half the positions. */
static void assert_independent(double share, const char *what) {
    if (fabs(share - 0.5) > 0.05) fail_msg("%s: masks disagree on %.3f of positions", what, share);
}

static void test_dropout_streams_differ(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed() ^ 0x5eedu);
    const size_t n = 20000;
    uint64_t seed = rng_next(&rng), offset = rng_next(&rng) % 1000;
    uint64_t start = rng_next(&rng) % 100000;
    assert_independent(disagreement(start, n, seed, offset, seed, offset + 1), "offset + 1");
    assert_independent(disagreement(start, n, seed, offset, seed, offset + (1ull << 32)),
                       "offset + 2^32");
    assert_independent(disagreement(start, n, seed, offset, seed + 1, offset), "seed + 1");
    assert_independent(disagreement(start, n, seed, offset, seed ^ (1ull << 40), offset),
                       "seed high bits");
    /* Positions in different places of one stream are not copies of each other. */
    size_t differ = 0;
    for (uint64_t i = 0; i < n; i++)
        differ += mhfa_dropout_keeps(i, 0.5f, seed, offset) !=
                  mhfa_dropout_keeps(i + n, 0.5f, seed, offset);
    assert_independent((double)differ / (double)n, "shifted positions");
}

static void test_dropout_repeatable(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed() ^ 0xabcdu);
    for (int i = 0; i < 10000; i++) {
        uint64_t position = rng_next(&rng), seed = rng_next(&rng), offset = rng_next(&rng);
        float p = (float)rng_uniform(&rng);
        int first = mhfa_dropout_keeps(position, p, seed, offset);
        assert_int_equal(mhfa_dropout_keeps(position, p, seed, offset), first);
        assert_true(first == 0 || first == 1);
    }
    assert_true(disagreement(0, 5000, 77, 3, 77, 3) == 0.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_inputs_not_modified),
        cmocka_unit_test(test_uniform24_range),
        cmocka_unit_test(test_dropout_fraction),
        cmocka_unit_test(test_dropout_p_zero_keeps_all),
        cmocka_unit_test(test_dropout_streams_differ),
        cmocka_unit_test(test_dropout_repeatable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
