/* mhfa-run's module: created from the options or a weights file, and its weights on the host. */
#include "run_module.h"

#include "cJSON.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* safetensors' own limit on the JSON header. */
#define MAX_HEADER_BYTES 100000000u

int report_failure(mhfa_status s, const mhfa_context *ctx, const char *what) {
    if (s == MHFA_SUCCESS) return 0;
    fprintf(stderr, "mhfa-run: %s failed: %s: %s\n", what, mhfa_status_string(s),
            ctx ? mhfa_context_error_message(ctx) : mhfa_last_create_error());
    return 1;
}

static void warn_if_overridden(const char *option, int given, int wanted, int actual,
                               const char *path) {
    if (given && wanted != actual)
        fprintf(stderr, "mhfa-run: note: %s %d ignored: %s sets %d\n", option, wanted, path,
                actual);
}

/* The file's own config decides the shapes; options that disagree are pointed out. */
static int note_file_config(const run_options *opts, const mhfa_module *m) {
    mhfa_config cfg;
    if (mhfa_module_get_config(m, &cfg) != MHFA_SUCCESS) return 1;
    warn_if_overridden("--heads", opts->heads_given, opts->heads, cfg.n_heads, opts->weights);
    warn_if_overridden("--embed", opts->embed_given, opts->embed, cfg.embed_dim, opts->weights);
    warn_if_overridden("--input", opts->input_given, opts->input, cfg.input_dim, opts->weights);
    return 0;
}

/* A file without mhfa metadata: the shapes come from the options, then mhfa_module_load. */
static int create_then_load(mhfa_context *ctx, const run_options *opts, mhfa_module **module) {
    mhfa_config cfg = mhfa_config_default(opts->heads, opts->input, opts->embed);
    mhfa_module *m = NULL;
    if (report_failure(mhfa_module_create(ctx, &cfg, &m), ctx, "creating the module")) return 1;
    if (report_failure(mhfa_module_load(m, opts->weights, opts->prefix), ctx, "loading weights")) {
        mhfa_module_destroy(m);
        return 1;
    }
    *module = m;
    return 0;
}

/* The header's length, little-endian as safetensors stores it. */
static int read_header_length(FILE *f, uint64_t *length) {
    unsigned char bytes[8];
    if (fread(bytes, 1, sizeof bytes, f) != sizeof bytes) return -1;
    *length = 0;
    for (int i = 7; i >= 0; i--)
        *length = *length << 8 | bytes[i];
    return 0;
}

/* 1 when path is a readable safetensors file whose header has no __metadata__ n_heads (so its
 * config must come from the options); 0 otherwise, the library's message then says what is
 * wrong. */
static int lacks_mhfa_metadata(const char *path) {
    FILE *f = fopen(path, "rb");
    uint64_t length = 0;
    if (!f) return 0;
    char *header = NULL;
    if (read_header_length(f, &length) == 0 && length > 0 && length <= MAX_HEADER_BYTES &&
        (header = malloc((size_t)length)) && fread(header, 1, (size_t)length, f) != length) {
        free(header);
        header = NULL;
    }
    fclose(f);
    cJSON *json = header ? cJSON_ParseWithLength(header, (size_t)length) : NULL;
    free(header);
    cJSON *metadata = cJSON_GetObjectItemCaseSensitive(json, "__metadata__");
    int lacks = json && !cJSON_GetObjectItemCaseSensitive(metadata, "n_heads");
    cJSON_Delete(json);
    return lacks;
}

static int create_from_file(mhfa_context *ctx, const run_options *opts, mhfa_module **module,
                            char *source, size_t source_size) {
    mhfa_status s = mhfa_module_create_from_file(ctx, opts->weights, opts->prefix, module);
    if (s == MHFA_SUCCESS) {
        snprintf(source, source_size, "%s (config from the file)", opts->weights);
        return note_file_config(opts, *module);
    }
    if (s != MHFA_ERROR_FORMAT || !lacks_mhfa_metadata(opts->weights))
        return report_failure(s, ctx, "reading the weights file");
    if (!opts->heads_given || !opts->embed_given) {
        fprintf(stderr,
                "mhfa-run: %s has no mhfa metadata (n_heads): give --heads and --embed, and "
                "--input when input_dim differs from embed_dim\n",
                opts->weights);
        return 2;
    }
    fprintf(stderr,
            "mhfa-run: %s has no mhfa metadata: loading it as --heads %d, --input %d, "
            "--embed %d\n",
            opts->weights, opts->heads, opts->input, opts->embed);
    if (create_then_load(ctx, opts, module)) return 1;
    snprintf(source, source_size, "%s (config from the options)", opts->weights);
    return 0;
}

int run_module_create(mhfa_context *ctx, const run_options *opts, mhfa_module **module,
                      char *source, size_t source_size) {
    *module = NULL;
    if (opts->weights) return create_from_file(ctx, opts, module, source, source_size);
    mhfa_config cfg = mhfa_config_default(opts->heads, opts->input, opts->embed);
    if (report_failure(mhfa_module_create(ctx, &cfg, module), ctx, "creating the module")) return 1;
    snprintf(source, source_size, "initial (Xavier uniform, seed 0)");
    return 0;
}

static int allocate_weights(layer_weights *w) {
    const int in = w->cfg.input_dim, e = w->cfg.embed_dim;
    for (int p = 0; p < 4; p++) {
        size_t n = (size_t)e * (p == MHFA_W_OUT ? e : in);
        w->weight[p] = malloc(n * sizeof(float));
        w->bias[p] = w->cfg.bias ? malloc((size_t)e * sizeof(float)) : NULL;
        if (!w->weight[p] || (w->cfg.bias && !w->bias[p])) return -1;
    }
    return 0;
}

int layer_weights_read(mhfa_context *ctx, const mhfa_module *module, layer_weights *w) {
    memset(w, 0, sizeof *w);
    if (report_failure(mhfa_module_get_config(module, &w->cfg), ctx, "reading the config"))
        return 1;
    if (allocate_weights(w) != 0) {
        fprintf(stderr, "mhfa-run: out of memory for the weights\n");
        layer_weights_free(w);
        return 1;
    }
    for (int p = 0; p < 4; p++)
        if (report_failure(
                mhfa_module_get_projection(module, (mhfa_projection)p, w->weight[p], w->bias[p]),
                ctx, "reading the weights")) {
            layer_weights_free(w);
            return 1;
        }
    return 0;
}

void layer_weights_free(layer_weights *w) {
    for (int p = 0; p < 4; p++) {
        free(w->weight[p]), free(w->bias[p]);
        w->weight[p] = NULL, w->bias[p] = NULL;
    }
}

int layer_weights_manual_module(mhfa_context *ctx, const layer_weights *w, mhfa_module **module) {
    mhfa_config cfg = w->cfg;
    cfg.store_attn_weights = 1;
    mhfa_module *m = NULL;
    if (report_failure(mhfa_module_create(ctx, &cfg, &m), ctx, "creating the manual-path module"))
        return 1;
    for (int p = 0; p < 4; p++)
        if (report_failure(
                mhfa_module_set_projection(m, (mhfa_projection)p, w->weight[p], w->bias[p]), ctx,
                "copying the weights")) {
            mhfa_module_destroy(m);
            return 1;
        }
    *module = m;
    return 0;
}
