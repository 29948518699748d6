/* mhfa-run's options: getopt_long, then one check per rule, each with its own message. */
#define _POSIX_C_SOURCE 200809L
#include "run_options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { DEFAULT_BATCH = 512, DEFAULT_NODES = 100, DEFAULT_HEADS = 8, DEFAULT_EMBED = 128 };

/* Long-only options get codes past the char range. */
enum { OPT_PREFIX = 256, OPT_HEATMAP, OPT_JSON, OPT_INPUT };

static void print_usage(FILE *to) {
    fprintf(
        to,
        "usage: mhfa-run [options]\n"
        "\n"
        "Runs mhfa's MultiHeadFlashAttention layer on a routing workload: random graph\n"
        "instances (2-D coordinates and a demand per node, a fixed linear embedding), an\n"
        "encoder self-attention pass, then decoder steps (one query per instance against the\n"
        "encoded nodes, visited nodes masked). Prints the device, the shapes, the median time\n"
        "per forward, the throughput and the largest error against float64 on a sample;\n"
        "exits 1 when that error exceeds 1e-5 * max(1, max|reference|).\n"
        "\n"
        "options:\n"
        "  -h, --help            this text\n"
        "  -d, --device SPEC     OpenCL device, PLATFORM[:DEVICE] (default: $MHFA_DEVICE,\n"
        "                        else the first GPU, else the first device)\n"
        "  -b, --batch N         instances per forward (default %d)\n"
        "  -n, --nodes N         nodes per instance, depot included, at least 2 (default %d)\n"
        "  -H, --heads N         attention heads (default %d)\n"
        "  -e, --embed N         embed_dim, a multiple of --heads (default %d)\n"
        "      --input N         input_dim (default: --embed)\n"
        "  -w, --weights FILE    safetensors weights (from mhfa_module_save or PyTorch); the\n"
        "                        file's config sets heads, input_dim and embed_dim. A file\n"
        "                        without mhfa metadata needs --heads and --embed (and --input)\n"
        "      --prefix P        tensor name prefix in FILE, e.g. \"encoder.layers.0.attn.\"\n"
        "      --heatmap F.png   write the heads' attention maps for instance 0 (manual path)\n"
        "      --json            print one JSON object instead of text\n",
        DEFAULT_BATCH, DEFAULT_NODES, DEFAULT_HEADS, DEFAULT_EMBED);
}

static run_options_result bad_usage(const char *format, ...) __attribute__((format(printf, 1, 2)));

static run_options_result bad_usage(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stderr, "mhfa-run: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\nTry 'mhfa-run --help'.\n");
    va_end(args);
    return RUN_OPTIONS_BAD_USAGE;
}

/* A decimal integer in [1, INT_MAX], nothing else. */
static int parse_positive(const char *text, int *value) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > INT_MAX) return -1;
    *value = (int)v;
    return 0;
}

static run_options_result read_positive(const char *option, const char *text, int *value) {
    if (parse_positive(text, value) == 0) return RUN_OPTIONS_OK;
    return bad_usage("%s: '%s' is not an integer from 1 to %d", option, text, INT_MAX);
}

static int ends_with_png(const char *path) {
    size_t n = strlen(path);
    return n > 4 && strcasecmp(path + n - 4, ".png") == 0;
}

static run_options_result read_option(int code, const char *arg, run_options *opts) {
    switch (code) {
    case 'd':
        opts->device = arg;
        return RUN_OPTIONS_OK;
    case 'b':
        return read_positive("--batch", arg, &opts->batch);
    case 'n':
        return read_positive("--nodes", arg, &opts->nodes);
    case 'H':
        opts->heads_given = 1;
        return read_positive("--heads", arg, &opts->heads);
    case 'e':
        opts->embed_given = 1;
        return read_positive("--embed", arg, &opts->embed);
    case OPT_INPUT:
        opts->input_given = 1;
        return read_positive("--input", arg, &opts->input);
    case 'w':
        opts->weights = arg;
        return *arg ? RUN_OPTIONS_OK : bad_usage("--weights: the file name is empty");
    case OPT_PREFIX:
        opts->prefix = arg;
        return RUN_OPTIONS_OK;
    case OPT_HEATMAP:
        opts->heatmap = arg;
        return RUN_OPTIONS_OK;
    case OPT_JSON:
        opts->json = 1;
        return RUN_OPTIONS_OK;
    default: /* getopt_long has printed what was wrong */
        fprintf(stderr, "Try 'mhfa-run --help'.\n");
        return RUN_OPTIONS_BAD_USAGE;
    }
}

/* The rules that involve more than one option. */
static run_options_result check_combination(const run_options *opts) {
    if (opts->nodes < 2)
        return bad_usage("--nodes must be at least 2 (the depot and one customer)");
    int shapes_used = !opts->weights || opts->heads_given || opts->embed_given;
    if (shapes_used && opts->embed % opts->heads != 0) {
        return bad_usage("--embed %d%s is not a multiple of --heads %d%s", opts->embed,
                         opts->embed_given ? "" : " (the default)", opts->heads,
                         opts->heads_given ? "" : " (the default)");
    }
    if (opts->prefix && !opts->weights)
        return bad_usage("--prefix only applies with --weights FILE");
    if (opts->heatmap && !ends_with_png(opts->heatmap))
        return bad_usage("--heatmap: '%s' does not end in .png", opts->heatmap);
#ifndef MHFA_HAVE_CAIRO
    if (opts->heatmap)
        return bad_usage("--heatmap is unavailable: this build has no cairo (install "
                         "libcairo2-dev and rebuild)");
#endif
    return RUN_OPTIONS_OK;
}

run_options_result run_options_parse(int argc, char **argv, run_options *opts) {
    static const struct option long_options[] = {{"help", no_argument, NULL, 'h'},
                                                 {"device", required_argument, NULL, 'd'},
                                                 {"batch", required_argument, NULL, 'b'},
                                                 {"nodes", required_argument, NULL, 'n'},
                                                 {"heads", required_argument, NULL, 'H'},
                                                 {"embed", required_argument, NULL, 'e'},
                                                 {"input", required_argument, NULL, OPT_INPUT},
                                                 {"weights", required_argument, NULL, 'w'},
                                                 {"prefix", required_argument, NULL, OPT_PREFIX},
                                                 {"heatmap", required_argument, NULL, OPT_HEATMAP},
                                                 {"json", no_argument, NULL, OPT_JSON},
                                                 {NULL, 0, NULL, 0}};
    *opts = (run_options){.batch = DEFAULT_BATCH,
                          .nodes = DEFAULT_NODES,
                          .heads = DEFAULT_HEADS,
                          .embed = DEFAULT_EMBED};
    int code;
    while ((code = getopt_long(argc, argv, "hd:b:n:H:e:w:", long_options, NULL)) != -1) {
        if (code == 'h') {
            print_usage(stdout);
            return RUN_OPTIONS_HELP;
        }
        run_options_result r = read_option(code, optarg, opts);
        if (r != RUN_OPTIONS_OK) return r;
    }
    if (optind < argc) return bad_usage("unexpected argument '%s'", argv[optind]);
    if (!opts->input_given) opts->input = opts->embed;
    return check_combination(opts);
}
