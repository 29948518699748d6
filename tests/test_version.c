/* The version, stated in four places, says the same everywhere: CMake's project() (passed in as
 * MHFA_PROJECT_VERSION*), the header's macros and string, and the library's mhfa_version_string().
 * Needs no device. */
#include <mhfa.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

static void test_macros_match_project(void **state) {
    (void)state;
    assert_int_equal(MHFA_VERSION_MAJOR, MHFA_PROJECT_VERSION_MAJOR);
    assert_int_equal(MHFA_VERSION_MINOR, MHFA_PROJECT_VERSION_MINOR);
    assert_int_equal(MHFA_VERSION_PATCH, MHFA_PROJECT_VERSION_PATCH);
    assert_string_equal(MHFA_VERSION_STRING, MHFA_PROJECT_VERSION);
}

static void test_string_matches_numbers(void **state) {
    (void)state;
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", MHFA_VERSION_MAJOR, MHFA_VERSION_MINOR,
             MHFA_VERSION_PATCH);
    assert_string_equal(MHFA_VERSION_STRING, expected);
}

static void test_library_matches_header(void **state) {
    (void)state;
    assert_non_null(mhfa_version_string());
    assert_string_equal(mhfa_version_string(), MHFA_VERSION_STRING);
    assert_string_equal(mhfa_version_string(), MHFA_PROJECT_VERSION);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_macros_match_project),
        cmocka_unit_test(test_string_matches_numbers),
        cmocka_unit_test(test_library_matches_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
