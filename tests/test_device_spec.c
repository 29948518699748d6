/* Device spec parsing and matching and the status texts: no device needed (the version is
 * test_version.c). */
#include "support.h"

#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Parses spec, expecting success; fails the test otherwise. */
static void parse_ok(const char *spec, mhfa_spec_part *platform, mhfa_spec_part *device) {
    if (mhfa_parse_device_spec(spec, platform, device) != 0) fail_msg("\"%s\" was rejected", spec);
}

static void assert_index_part(const mhfa_spec_part *part, long index) {
    assert_int_equal(part->is_index, 1);
    assert_int_equal(part->index, index);
}

static void assert_text_part(const mhfa_spec_part *part, const char *text) {
    assert_int_equal(part->is_index, 0);
    assert_string_equal(part->text, text);
}

static void test_empty_spec_means_first(void **state) {
    (void)state;
    mhfa_spec_part platform, device;
    parse_ok("", &platform, &device);
    assert_index_part(&platform, 0);
    assert_index_part(&device, 0);
}

static void test_null_arguments_rejected(void **state) {
    (void)state;
    mhfa_spec_part platform, device;
    assert_int_equal(mhfa_parse_device_spec(NULL, &platform, &device), -1);
    assert_int_equal(mhfa_parse_device_spec("0:1", NULL, &device), -1);
    assert_int_equal(mhfa_parse_device_spec("0:1", &platform, NULL), -1);
}

static void test_indices(void **state) {
    (void)state;
    mhfa_spec_part platform, device;
    parse_ok("0", &platform, &device);
    assert_index_part(&platform, 0);
    assert_index_part(&device, 0);
    parse_ok("0:1", &platform, &device);
    assert_index_part(&platform, 0);
    assert_index_part(&device, 1);
    parse_ok(":1", &platform, &device);
    assert_index_part(&platform, 0);
    assert_index_part(&device, 1);
    parse_ok("3:", &platform, &device);
    assert_index_part(&platform, 3);
    assert_index_part(&device, 0);
    parse_ok("12:34", &platform, &device);
    assert_index_part(&platform, 12);
    assert_index_part(&device, 34);
}

static void test_names(void **state) {
    (void)state;
    mhfa_spec_part platform, device;
    parse_ok("pocl", &platform, &device);
    assert_text_part(&platform, "pocl");
    assert_index_part(&device, 0);
    parse_ok("nvidia:h100", &platform, &device);
    assert_text_part(&platform, "nvidia");
    assert_text_part(&device, "h100");
    parse_ok("0:cpu", &platform, &device);
    assert_index_part(&platform, 0);
    assert_text_part(&device, "cpu");
    /* Digits followed by letters are a name, not an index. */
    parse_ok("12abc:3d", &platform, &device);
    assert_text_part(&platform, "12abc");
    assert_text_part(&device, "3d");
}

static void test_spaces_trimmed(void **state) {
    (void)state;
    mhfa_spec_part platform, device;
    parse_ok(" 1 : 2 ", &platform, &device);
    assert_index_part(&platform, 1);
    assert_index_part(&device, 2);
    parse_ok("  Intel Gen  :\tUHD 630 ", &platform, &device);
    assert_text_part(&platform, "Intel Gen");
    assert_text_part(&device, "UHD 630");
    parse_ok("   :   ", &platform, &device);
    assert_index_part(&platform, 0);
    assert_index_part(&device, 0);
}

/* A part of n characters: 'x' repeated. */
static void make_part(char *buf, size_t n) {
    memset(buf, 'x', n);
    buf[n] = '\0';
}

static void test_part_too_long(void **state) {
    (void)state;
    mhfa_spec_part platform, device;
    const size_t limit = sizeof platform.text - 1; /* the longest part that fits */
    char part[512], spec[1100];
    make_part(part, limit);
    parse_ok(part, &platform, &device);
    assert_int_equal(strlen(platform.text), limit);
    make_part(part, limit + 1);
    assert_int_equal(mhfa_parse_device_spec(part, &platform, &device), -1);
    make_part(part, 400);
    assert_int_equal(mhfa_parse_device_spec(part, &platform, &device), -1);
    snprintf(spec, sizeof spec, "pocl:%s", part);
    assert_int_equal(mhfa_parse_device_spec(spec, &platform, &device), -1);
    snprintf(spec, sizeof spec, "%s:0", part);
    assert_int_equal(mhfa_parse_device_spec(spec, &platform, &device), -1);
}

static void test_two_colons_rejected(void **state) {
    (void)state;
    mhfa_spec_part platform, device;
    assert_int_equal(mhfa_parse_device_spec("a:b:c", &platform, &device), -1);
    assert_int_equal(mhfa_parse_device_spec("0:1:2", &platform, &device), -1);
    assert_int_equal(mhfa_parse_device_spec("::", &platform, &device), -1);
    assert_int_equal(mhfa_parse_device_spec("pocl::", &platform, &device), -1);
}

static void test_index_matching(void **state) {
    (void)state;
    mhfa_spec_part platform, device;
    parse_ok("1:0", &platform, &device);
    assert_true(mhfa_spec_part_matches(&platform, 1, "any name"));
    assert_false(mhfa_spec_part_matches(&platform, 0, "any name"));
    assert_false(mhfa_spec_part_matches(&platform, 2, "1"));
    assert_true(mhfa_spec_part_matches(&device, 0, NULL));
    /* An index beyond the devices there are matches none of them. */
    parse_ok("0:99", &platform, &device);
    for (long i = 0; i < 64; i++)
        assert_false(mhfa_spec_part_matches(&device, i, "pthread-cpu 99"));
}

static void test_substring_matching(void **state) {
    (void)state;
    mhfa_spec_part platform, device;
    parse_ok("nvidia:h100", &platform, &device);
    assert_true(mhfa_spec_part_matches(&platform, 0, "NVIDIA CUDA"));
    assert_true(mhfa_spec_part_matches(&platform, 5, "NVIDIA CUDA")); /* the index is ignored */
    assert_false(mhfa_spec_part_matches(&platform, 0, "Portable Computing Language"));
    assert_true(mhfa_spec_part_matches(&device, 0, "NVIDIA H100 80GB HBM3"));
    assert_false(mhfa_spec_part_matches(&device, 0, "NVIDIA H200"));
    assert_false(mhfa_spec_part_matches(&device, 0, "h10")); /* shorter than the part */
    assert_false(mhfa_spec_part_matches(&device, 0, ""));
    assert_false(mhfa_spec_part_matches(&device, 0, NULL));
    parse_ok("computing lang", &platform, &device);
    assert_true(mhfa_spec_part_matches(&platform, 0, "Portable Computing Language (pocl)"));
    assert_false(mhfa_spec_part_matches(&platform, 0, "Portable Computing"));
}

static void test_case_insensitive(void **state) {
    (void)state;
    mhfa_spec_part platform, device;
    parse_ok("POCL:Pthread", &platform, &device);
    assert_true(mhfa_spec_part_matches(&platform, 0,
                                       "Portable Computing Language (The pocl "
                                       "project)"));
    assert_true(mhfa_spec_part_matches(&device, 0, "PTHREAD-skylake"));
    assert_true(mhfa_spec_part_matches(&device, 0, "cpu-pThReAd"));
    parse_ok("nViDiA", &platform, &device);
    assert_true(mhfa_spec_part_matches(&platform, 0, "NVIDIA CUDA"));
    assert_true(mhfa_spec_part_matches(&platform, 0, "nvidia"));
}

/* ---- status texts ---- */

static const mhfa_status all_statuses[] = {
    MHFA_SUCCESS,
    MHFA_ERROR_INVALID_ARGUMENT,
    MHFA_ERROR_INVALID_SHAPE,
    MHFA_ERROR_DEVICE_NOT_FOUND,
    MHFA_ERROR_BUILD_FAILED,
    MHFA_ERROR_OPENCL,
    MHFA_ERROR_OUT_OF_MEMORY,
    MHFA_ERROR_IO,
    MHFA_ERROR_FORMAT,
    MHFA_ERROR_UNSUPPORTED,
    MHFA_ERROR_NOT_AVAILABLE,
};
enum { N_STATUSES = sizeof all_statuses / sizeof all_statuses[0] };

static void test_status_strings_known(void **state) {
    (void)state;
    const char *text[N_STATUSES];
    for (int i = 0; i < N_STATUSES; i++) {
        text[i] = mhfa_status_string(all_statuses[i]);
        assert_non_null(text[i]);
        assert_true(strlen(text[i]) > 0);
        assert_string_not_equal(text[i], "unknown status");
        for (int j = 0; j < i; j++) /* each value has its own text */
            assert_string_not_equal(text[i], text[j]);
    }
}

static void test_status_string_unknown(void **state) {
    (void)state;
    const int unknown[] = {1, 2, -11, -12, 100, -1000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_string_equal(mhfa_status_string((mhfa_status)unknown[i]), "unknown status");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_spec_means_first),
        cmocka_unit_test(test_null_arguments_rejected),
        cmocka_unit_test(test_indices),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_spaces_trimmed),
        cmocka_unit_test(test_part_too_long),
        cmocka_unit_test(test_two_colons_rejected),
        cmocka_unit_test(test_index_matching),
        cmocka_unit_test(test_substring_matching),
        cmocka_unit_test(test_case_insensitive),
        cmocka_unit_test(test_status_strings_known),
        cmocka_unit_test(test_status_string_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
