/* The device spec "PLATFORM[:DEVICE]": parsing and matching, with no OpenCL call. */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse_part(const char *text, size_t len, mhfa_spec_part *part) {
    while (len > 0 && isspace((unsigned char)text[0]))
        text++, len--;
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    memset(part, 0, sizeof *part);
    if (len >= sizeof part->text) return -1;
    memcpy(part->text, text, len);
    if (len == 0) {
        part->is_index = 1;
        return 0;
    }
    size_t digits = 0;
    while (digits < len && isdigit((unsigned char)text[digits]))
        digits++;
    if (digits == len) {
        errno = 0;
        long value = strtol(part->text, NULL, 10);
        if (errno == ERANGE) return -1;
        part->is_index = 1;
        part->index = value;
    }
    return 0;
}

int mhfa_parse_device_spec(const char *spec, mhfa_spec_part *platform, mhfa_spec_part *device) {
    if (!spec || !platform || !device) return -1;
    const char *colon = strchr(spec, ':');
    if (colon && strchr(colon + 1, ':')) return -1;
    size_t platform_len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (parse_part(spec, platform_len, platform) != 0) return -1;
    const char *rest = colon ? colon + 1 : "";
    return parse_part(rest, strlen(rest), device);
}

int mhfa_contains_ignoring_case(const char *haystack, const char *needle) {
    size_t n = strlen(needle);
    for (; *haystack; haystack++) {
        size_t i = 0;
        while (i < n && haystack[i] &&
               tolower((unsigned char)haystack[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return n == 0;
}

int mhfa_spec_part_matches(const mhfa_spec_part *part, long i, const char *name) {
    if (part->is_index) return part->index == i;
    return mhfa_contains_ignoring_case(name ? name : "", part->text);
}
