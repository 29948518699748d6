/* mhfa-info's options: one argument at a time, each value checked where it is read. */
#include "info_options.h"

#include "dtype_names.h"
#include "info_check.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The layer of a routing encoder (head_dim 16) and its graphs. */
enum { DEFAULT_HEADS = 8, DEFAULT_EMBED = 128, DEFAULT_INPUT = 128, DEFAULT_NODES = 100 };

static void print_usage(FILE *to) {
    fprintf(to,
            "usage: mhfa-info [--device SPEC] [--heads H] [--embed E] [--input D] [--nodes N]\n"
            "                 [--store] [--dtype float32|float16|bfloat16] [--check] [--json]\n"
            "Lists every OpenCL platform and device: the MHFA_DEVICE spec that selects it, its\n"
            "limits and features, which device the default picks, and the kernels mhfa's plan\n"
            "chooses there for a layer of H heads, input D, embed E: each choice with where it\n"
            "came from (the tuning file or the built-in table), then the route of three typical\n"
            "forwards (encoder self-attention N x N without and with a mask, a decoder step\n"
            "1 x N with a mask) and why.\n"
            "  --device SPEC  only the device SPEC selects (PLATFORM[:DEVICE], as MHFA_DEVICE)\n"
            "  --heads H      attention heads (default %d)\n"
            "  --embed E      embed_dim, a multiple of H (default %d)\n"
            "  --input D      input_dim (default %d)\n"
            "  --nodes N      nodes of the forwards shown (default %d)\n"
            "  --store        the manual path (store_attn_weights), not the flash path\n"
            "  --dtype T      the storage type of weights and activations (default float32)\n"
            "  --check        build the kernels and run forwards for %.0f s per device against\n"
            "                 the float64 reference (pass: error <= %.0e of max(1, max|ref|);\n"
            "                 4e-3 and 3e-2 for float16 and bfloat16, on the rounded values)\n"
            "  --json         one JSON document on stdout instead of text\n"
            "The tuning file is MHFA_TUNING_FILE, else tuning.txt in the cache folder.\n"
            "Exit status 1 when no device is found or a check fails, 2 on a usage error.\n",
            DEFAULT_HEADS, DEFAULT_EMBED, DEFAULT_INPUT, DEFAULT_NODES, CHECK_SECONDS,
            CHECK_TOLERANCE);
}

/* A decimal integer from 1 to INT_MAX, nothing else; 0 when text is not one. */
static int positive_value(const char *text) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > INT_MAX) return 0;
    return (int)v;
}

/* The options that set one int of info_options: a flag to 1, or a number to its value. */
typedef struct int_option {
    const char *name;
    size_t offset;
    int takes_number;
} int_option;

static const int_option int_options[] = {
    {"--json", offsetof(info_options, json), 0},   {"--check", offsetof(info_options, check), 0},
    {"--store", offsetof(info_options, store), 0}, {"--heads", offsetof(info_options, heads), 1},
    {"--embed", offsetof(info_options, embed), 1}, {"--input", offsetof(info_options, input), 1},
    {"--nodes", offsetof(info_options, nodes), 1}};

static const int_option *find_int_option(const char *name) {
    for (size_t n = 0; n < sizeof int_options / sizeof int_options[0]; n++)
        if (strcmp(name, int_options[n].name) == 0) return &int_options[n];
    return NULL;
}

/* Sets o's field from argv[*i] (and the number after it, *i moved past). Returns 0, or 2 after a
 * usage error. */
static int read_int_option(const int_option *o, int argc, char **argv, int *i, info_options *opt) {
    int *field = (int *)((char *)opt + o->offset);
    if (!o->takes_number) {
        *field = 1;
        return 0;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "mhfa-info: %s needs a number\n", o->name);
        return 2;
    }
    *field = positive_value(argv[++*i]);
    if (*field) return 0;
    fprintf(stderr, "mhfa-info: %s: \"%s\" is not an integer from 1 to %d\n", o->name, argv[*i],
            INT_MAX);
    return 2;
}

/* --dtype's value (argv[*i + 1], *i moved past it): 0, or 2 on a usage error. */
static int read_dtype(int argc, char **argv, int *i, info_options *opt) {
    if (*i + 1 < argc && dtype_of_name(argv[*i + 1], &opt->dtype) == 0) {
        ++*i;
        return 0;
    }
    fprintf(stderr, "mhfa-info: --dtype needs float32, float16 or bfloat16\n");
    return 2;
}

/* The option at argv[*i], *i moved past its value. Returns 0, -1 for --help, 2 on a usage error. */
static int read_option(int argc, char **argv, int *i, info_options *opt) {
    const char *arg = argv[*i];
    const int_option *o = find_int_option(arg);
    if (o) return read_int_option(o, argc, argv, i, opt);
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        print_usage(stdout);
        return -1;
    }
    if (strcmp(arg, "--dtype") == 0) return read_dtype(argc, argv, i, opt);
    if (strcmp(arg, "--device") == 0 && *i + 1 < argc) {
        opt->device_spec = argv[++*i];
        return 0;
    }
    if (strcmp(arg, "--device") == 0) {
        fprintf(stderr, "mhfa-info: --device needs a SPEC\n");
        return 2;
    }
    fprintf(stderr, "mhfa-info: unexpected argument \"%s\"\n", arg);
    print_usage(stderr);
    return 2;
}

int info_options_parse(int argc, char **argv, info_options *opt) {
    *opt = (info_options){.heads = DEFAULT_HEADS,
                          .embed = DEFAULT_EMBED,
                          .input = DEFAULT_INPUT,
                          .nodes = DEFAULT_NODES};
    for (int i = 1; i < argc; i++) {
        int result = read_option(argc, argv, &i, opt);
        if (result) return result;
    }
    if (opt->embed % opt->heads != 0) {
        fprintf(stderr, "mhfa-info: --embed %d is not a multiple of --heads %d\n", opt->embed,
                opt->heads);
        return 2;
    }
    return 0;
}
