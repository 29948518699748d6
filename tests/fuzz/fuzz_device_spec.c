/* Fuzz target: device specs ("0", "0:1", "pocl", "nvidia:h100", ":1") parsed and matched, and
 * the whole choice mhfa_context_create makes on a fake list of platforms and devices. The OpenCL
 * calls the choice makes are defined here, so no device is needed: this program's definitions
 * take the place of the ICD loader's. Each result is compared with a plain model of mhfa.h's
 * rules (each part an index or a case-insensitive substring; an empty part means 0; no spec: the
 * first GPU, else the first device).
 *
 * Input, as text: line 1 options ('e': the spec through MHFA_DEVICE, 's': a driver that truncates
 * long names without a terminating NUL, 'o': clCreateContext runs out of host memory, 'n': no
 * platform), line 2 the spec, then the list: "P name|vendor" starts a platform, "G name",
 * "C name" and "A name" add a GPU, CPU or accelerator to the last one. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* More than the library looks at (16 platforms, 64 devices each), to test its limits. */
enum { MAX_PLATFORMS = 20, MAX_DEVICES = 200, NAME_BUFFER = 256, VENDOR_BUFFER = 120 };

typedef struct fake_platform {
    const char *name, *vendor;
} fake_platform;

typedef struct fake_device {
    const char *name;
    cl_device_type type;
    int platform;
} fake_device;

static struct {
    fake_platform platforms[MAX_PLATFORMS];
    fake_device devices[MAX_DEVICES];
    int n_platforms, n_devices;
    int sloppy, no_platform, out_of_memory;
    const fake_device *created_on; /* the device clCreateContext was given */
    int creates;
} fake;

static int platform_index(cl_platform_id id) {
    for (int p = 0; p < fake.n_platforms; p++)
        if ((const void *)id == (const void *)&fake.platforms[p]) return p;
    abort(); /* the library passed a platform it was never given */
}

static const fake_device *device_of(cl_device_id id) {
    for (int d = 0; d < fake.n_devices; d++)
        if ((const void *)id == (const void *)&fake.devices[d]) return &fake.devices[d];
    abort(); /* the library passed a device it was never given */
}

/* A string query as the specification has it (CL_INVALID_VALUE where it does not fit), or as
 * the sloppy driver does it (as much as fits, with no terminating NUL). */
static cl_int answer_text(const char *text, size_t size, void *value, size_t *size_ret) {
    size_t need = strlen(text) + 1;
    if (size_ret) *size_ret = need;
    if (!value) return CL_SUCCESS;
    if (size < need && !fake.sloppy) return CL_INVALID_VALUE;
    memcpy(value, text, size < need ? size : need);
    return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clGetPlatformIDs(cl_uint num_entries, cl_platform_id *platforms,
                                                 cl_uint *num_platforms) {
    if (platforms && num_entries == 0) abort();
    if (fake.no_platform || fake.n_platforms == 0) {
        if (num_platforms) *num_platforms = 0;
        return -1001; /* CL_PLATFORM_NOT_FOUND_KHR */
    }
    for (int p = 0; platforms && p < fake.n_platforms && (cl_uint)p < num_entries; p++)
        platforms[p] = (cl_platform_id)(void *)&fake.platforms[p];
    if (num_platforms) *num_platforms = (cl_uint)fake.n_platforms;
    return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clGetPlatformInfo(cl_platform_id platform, cl_platform_info param,
                                                  size_t size, void *value, size_t *size_ret) {
    const fake_platform *p = &fake.platforms[platform_index(platform)];
    if (param == CL_PLATFORM_NAME) return answer_text(p->name, size, value, size_ret);
    if (param == CL_PLATFORM_VENDOR) return answer_text(p->vendor, size, value, size_ret);
    return CL_INVALID_VALUE;
}

static int type_matches(cl_device_type asked, cl_device_type type) {
    return asked == CL_DEVICE_TYPE_ALL || (asked & type) != 0;
}

CL_API_ENTRY cl_int CL_API_CALL clGetDeviceIDs(cl_platform_id platform, cl_device_type type,
                                               cl_uint num_entries, cl_device_id *devices,
                                               cl_uint *num_devices) {
    int p = platform_index(platform);
    if (devices && num_entries == 0) abort();
    cl_uint n = 0;
    for (int d = 0; d < fake.n_devices; d++) {
        if (fake.devices[d].platform != p || !type_matches(type, fake.devices[d].type)) continue;
        if (devices && n < num_entries) devices[n] = (cl_device_id)(void *)&fake.devices[d];
        n++;
    }
    if (num_devices) *num_devices = n;
    return n ? CL_SUCCESS : CL_DEVICE_NOT_FOUND;
}

CL_API_ENTRY cl_int CL_API_CALL clGetDeviceInfo(cl_device_id device, cl_device_info param,
                                                size_t size, void *value, size_t *size_ret) {
    const fake_device *d = device_of(device);
    if (param == CL_DEVICE_NAME) return answer_text(d->name, size, value, size_ret);
    return CL_INVALID_VALUE;
}

/* The choice is made: the context is refused, so nothing else of OpenCL is reached. */
CL_API_ENTRY cl_context CL_API_CALL clCreateContext(
    const cl_context_properties *properties, cl_uint num_devices, const cl_device_id *devices,
    void(CL_CALLBACK *notify)(const char *, const void *, size_t, void *), void *user_data,
    cl_int *errcode) {
    (void)properties, (void)notify, (void)user_data;
    if (num_devices != 1 || !devices) abort();
    fake.created_on = device_of(devices[0]);
    fake.creates++;
    if (errcode) *errcode = fake.out_of_memory ? CL_OUT_OF_HOST_MEMORY : CL_DEVICE_NOT_AVAILABLE;
    return NULL;
}

/* ---- the model ---- */

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static char lower(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

typedef struct model_part {
    int is_index;
    long index;
    char text[200];
} model_part;

/* One part: trimmed, at most 127 characters; all digits (within long) an index, empty 0. */
static int model_parse_part(const char *s, size_t len, model_part *part) {
    memset(part, 0, sizeof *part);
    while (len && is_space(*s))
        s++, len--;
    while (len && is_space(s[len - 1]))
        len--;
    if (len > 127) return -1;
    memcpy(part->text, s, len);
    part->is_index = 1;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9') part->is_index = 0;
    for (size_t i = 0; part->is_index && i < len; i++) {
        if (part->index > (LONG_MAX - (s[i] - '0')) / 10) return -1;
        part->index = part->index * 10 + (s[i] - '0');
    }
    return 0;
}

static int model_parse(const char *spec, model_part *platform, model_part *device) {
    const char *colon = strchr(spec, ':');
    if (colon && strchr(colon + 1, ':')) return -1;
    size_t first = colon ? (size_t)(colon - spec) : strlen(spec);
    if (model_parse_part(spec, first, platform) != 0) return -1;
    const char *rest = colon ? colon + 1 : "";
    return model_parse_part(rest, strlen(rest), device);
}

static int model_contains(const char *haystack, const char *needle) {
    size_t n = strlen(needle), h = strlen(haystack);
    for (size_t start = 0; start + n <= h; start++) {
        size_t i = 0;
        while (i < n && lower(haystack[start + i]) == lower(needle[i]))
            i++;
        if (i == n) return 1;
    }
    return 0;
}

static int model_matches(const model_part *part, long i, const char *name) {
    return part->is_index ? part->index == i : model_contains(name, part->text);
}

/* A name as the library reads it into a buffer of size bytes. */
static void seen_name(const char *name, size_t size, char *out) {
    size_t len = strlen(name);
    if (len + 1 > size) len = fake.sloppy ? size - 1 : 0;
    memcpy(out, name, len);
    out[len] = '\0';
}

/* The n-th device (of type, or any) of platform p, or NULL. */
static const fake_device *nth_device(int p, cl_device_type type, int n) {
    for (int d = 0; d < fake.n_devices; d++)
        if (fake.devices[d].platform == p && type_matches(type, fake.devices[d].type) && n-- == 0)
            return &fake.devices[d];
    return NULL;
}

static const fake_device *model_find(const model_part *platform, const model_part *device) {
    for (int p = 0; p < fake.n_platforms && p < 16; p++) {
        char name[NAME_BUFFER], vendor[VENDOR_BUFFER], label[400];
        seen_name(fake.platforms[p].name, sizeof name, name);
        seen_name(fake.platforms[p].vendor, sizeof vendor, vendor);
        snprintf(label, sizeof label, "%s (%s)", name, vendor);
        if (!model_matches(platform, p, label)) continue;
        const fake_device *d;
        for (int i = 0; i < 64 && (d = nth_device(p, CL_DEVICE_TYPE_ALL, i)); i++) {
            char device_name[NAME_BUFFER];
            seen_name(d->name, sizeof device_name, device_name);
            if (model_matches(device, i, device_name)) return d;
        }
    }
    return NULL;
}

static const fake_device *model_default(void) {
    for (int p = 0; p < fake.n_platforms && p < 16; p++)
        if (nth_device(p, CL_DEVICE_TYPE_GPU, 0)) return nth_device(p, CL_DEVICE_TYPE_GPU, 0);
    for (int p = 0; p < fake.n_platforms && p < 16; p++)
        if (nth_device(p, CL_DEVICE_TYPE_ALL, 0)) return nth_device(p, CL_DEVICE_TYPE_ALL, 0);
    return NULL;
}

/* ---- the checks ---- */

static void check_part(const mhfa_spec_part *part, const model_part *model) {
    if (!memchr(part->text, '\0', sizeof part->text)) abort();
    if (part->is_index != model->is_index || strcmp(part->text, model->text) != 0) abort();
    if (part->is_index && part->index != model->index) abort();
}

/* Parsing and matching, called directly. */
static void check_parse(const char *spec, const char *const *names, int n_names) {
    mhfa_spec_part platform, device;
    model_part model_platform, model_device;
    int parsed = mhfa_parse_device_spec(spec, &platform, &device);
    if (parsed != model_parse(spec, &model_platform, &model_device)) abort();
    if (mhfa_parse_device_spec(NULL, &platform, &device) != -1) abort();
    if (parsed != 0) return;
    check_part(&platform, &model_platform);
    check_part(&device, &model_device);
    for (int i = 0; i < n_names; i++) {
        for (long index = -1; index < 3; index++) {
            if (mhfa_spec_part_matches(&platform, index, names[i]) !=
                model_matches(&model_platform, index, names[i]))
                abort();
            if (mhfa_spec_part_matches(&device, index, names[i]) !=
                model_matches(&model_device, index, names[i]))
                abort();
        }
        if (mhfa_contains_ignoring_case(names[i], spec) != model_contains(names[i], spec)) abort();
    }
}

/* The whole choice through mhfa_context_create. */
static void check_choice(const char *spec, int through_environment) {
    if (through_environment)
        setenv("MHFA_DEVICE", spec, 1);
    else
        unsetenv("MHFA_DEVICE");
    fake.created_on = NULL;
    fake.creates = 0;
    mhfa_context *ctx = (mhfa_context *)&fake; /* must be overwritten */
    mhfa_status status = mhfa_context_create(through_environment ? NULL : spec, &ctx);
    if (ctx != NULL || status == MHFA_SUCCESS || !mhfa_last_create_error()[0]) abort();

    const fake_device *expected = NULL;
    if (!fake.no_platform && fake.n_platforms > 0) {
        model_part platform, device;
        if (!spec[0])
            expected = model_default();
        else if (model_parse(spec, &platform, &device) == 0)
            expected = model_find(&platform, &device);
    }
    if (!expected) {
        if (status != MHFA_ERROR_DEVICE_NOT_FOUND || fake.creates != 0) abort();
        return;
    }
    if (fake.creates != 1 || fake.created_on != expected) abort();
    mhfa_status refused = fake.out_of_memory ? MHFA_ERROR_OUT_OF_MEMORY : MHFA_ERROR_OPENCL;
    if (status != refused) abort();
}

static cl_device_type type_of(char c) {
    return c == 'G'   ? CL_DEVICE_TYPE_GPU
           : c == 'C' ? CL_DEVICE_TYPE_CPU
                      : CL_DEVICE_TYPE_ACCELERATOR;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    /* Lines (a NUL ends a line's text, as it ends a C string). */
    char *lines[MAX_PLATFORMS + MAX_DEVICES + 2];
    int n_lines = 0;
    for (char *p = text; n_lines < (int)(sizeof lines / sizeof lines[0]);) {
        lines[n_lines++] = p;
        char *newline = memchr(p, '\n', (size_t)(text + size - p));
        if (!newline) break;
        *newline = '\0';
        p = newline + 1;
    }
    memset(&fake, 0, sizeof fake);
    const char *options = lines[0];
    const char *spec = n_lines > 1 ? lines[1] : "";
    fake.sloppy = strchr(options, 's') != NULL;
    fake.no_platform = strchr(options, 'n') != NULL;
    fake.out_of_memory = strchr(options, 'o') != NULL;
    const char *names[MAX_PLATFORMS + MAX_DEVICES];
    int n_names = 0;
    for (int i = 2; i < n_lines; i++) {
        char *line = lines[i];
        if (line[0] == 'P' && line[1] == ' ' && fake.n_platforms < MAX_PLATFORMS) {
            char *bar = strchr(line + 2, '|');
            if (bar) *bar = '\0';
            fake_platform *p = &fake.platforms[fake.n_platforms++];
            p->name = line + 2;
            p->vendor = bar ? bar + 1 : "";
            names[n_names++] = p->name;
        } else if ((line[0] == 'G' || line[0] == 'C' || line[0] == 'A') && line[1] == ' ' &&
                   fake.n_platforms > 0 && fake.n_devices < MAX_DEVICES) {
            fake_device *d = &fake.devices[fake.n_devices++];
            d->name = line + 2;
            d->type = type_of(line[0]);
            d->platform = fake.n_platforms - 1;
            names[n_names++] = d->name;
        }
    }
    check_parse(spec, names, n_names);
    check_choice(spec, strchr(options, 'e') != NULL);
    unsetenv("MHFA_DEVICE");
    free(text);
    return 0;
}
