/* A module's weights in safetensors files, under PyTorch's state_dict names (prefix +
 * "W_query.weight", ...): load into a module, save one, or make a module from a file. Every
 * tensor is read and checked into host memory before the module is touched. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* prefix + projection name + suffix, allocated; NULL when out of memory. */
static char *tensor_name(const char *prefix, int which, const char *suffix) {
    const char *projection = mhfa_projection_name((mhfa_projection)which);
    size_t n = strlen(prefix) + strlen(projection) + strlen(suffix) + 1;
    char *name = malloc(n);
    if (name) snprintf(name, n, "%s%s%s", prefix, projection, suffix);
    return name;
}

/* For a missing tensor: a name in the file that ends the same way, to suggest its prefix. */
static const char *similar_name(const mhfa_st_file *file, const char *wanted_end) {
    size_t n = strlen(wanted_end);
    for (size_t i = 0; i < file->n_tensors; i++) {
        size_t len = strlen(file->tensors[i].name);
        if (len >= n && strcmp(file->tensors[i].name + len - n, wanted_end) == 0)
            return file->tensors[i].name;
    }
    return NULL;
}

static mhfa_status missing_tensor(const mhfa_context *ctx, const mhfa_st_file *file,
                                  const char *name, const char *unprefixed) {
    const char *similar = similar_name(file, unprefixed);
    if (similar)
        return mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                         "weights file %s: no tensor \"%s\" (there is \"%.200s\": is the prefix "
                         "right?)",
                         file->path, name, similar);
    return mhfa_fail(ctx, MHFA_ERROR_FORMAT, "weights file %s: no tensor \"%s\"", file->path, name);
}

/* Reads the tensor of that name, which must have the given shape (cols 0: one dimension). */
static mhfa_status read_tensor(const mhfa_context *ctx, const mhfa_st_file *file, const char *name,
                               const char *unprefixed, uint64_t rows, uint64_t cols, float **out) {
    const mhfa_st_tensor *t = mhfa_st_find(file, name);
    if (!t) return missing_tensor(ctx, file, name, unprefixed);
    int ndim = cols ? 2 : 1;
    if (t->ndim != ndim || t->shape[0] != rows || (cols && t->shape[1] != cols)) {
        char needed[48], found[96] = "[";
        snprintf(needed, sizeof needed, cols ? "[%llu, %llu]" : "[%llu]", (unsigned long long)rows,
                 (unsigned long long)cols);
        for (int d = 0; d < t->ndim && d < 4; d++)
            snprintf(found + strlen(found), sizeof found - strlen(found), "%s%llu", d ? ", " : "",
                     (unsigned long long)t->shape[d]);
        snprintf(found + strlen(found), sizeof found - strlen(found), "%s]",
                 t->ndim > 4 ? ", ..." : "");
        return mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                         "weights file %s: tensor \"%s\" has shape %s, the module needs %s",
                         file->path, name, found, needed);
    }
    *out = malloc((size_t)(rows * (cols ? cols : 1)) * sizeof(float));
    if (!*out) return mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    return mhfa_st_read_floats(ctx, file, t, *out);
}

/* One projection's weight and, where the module has biases, bias; an extra bias is an error. */
static mhfa_status read_projection(const mhfa_context *ctx, const mhfa_st_file *file,
                                   const char *prefix, const mhfa_config *cfg, int which,
                                   mhfa_host_weights *w) {
    uint64_t rows = (uint64_t)cfg->embed_dim;
    uint64_t cols = (uint64_t)(which == MHFA_W_OUT ? cfg->embed_dim : cfg->input_dim);
    char *weight_name = tensor_name(prefix, which, ".weight");
    char *bias_name = tensor_name(prefix, which, ".bias");
    mhfa_status status = MHFA_SUCCESS;
    if (!weight_name || !bias_name)
        status = mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (status == MHFA_SUCCESS)
        status = read_tensor(ctx, file, weight_name, weight_name + strlen(prefix), rows, cols,
                             &w->weight[which]);
    if (status == MHFA_SUCCESS && cfg->bias)
        status =
            read_tensor(ctx, file, bias_name, bias_name + strlen(prefix), rows, 0, &w->bias[which]);
    if (status == MHFA_SUCCESS && !cfg->bias && mhfa_st_find(file, bias_name))
        status = mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                           "weights file %s: tensor \"%s\" is there but the module has no "
                           "biases (create it with bias = 1 to use them)",
                           file->path, bias_name);
    free(weight_name);
    free(bias_name);
    return status;
}

static mhfa_status read_all(const mhfa_context *ctx, const mhfa_st_file *file, const char *prefix,
                            const mhfa_config *cfg, mhfa_host_weights *w) {
    memset(w, 0, sizeof *w);
    mhfa_status status = MHFA_SUCCESS;
    for (int i = 0; i < 4 && status == MHFA_SUCCESS; i++)
        status = read_projection(ctx, file, prefix, cfg, i, w);
    if (status != MHFA_SUCCESS) mhfa_host_weights_free(w);
    return status;
}

mhfa_status mhfa_module_load(mhfa_module *m, const char *path, const char *prefix) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    if (!path) return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT, "load: path is NULL");
    mhfa_config cfg = m->cfg;
    mhfa_host_weights w;
    mhfa_status status = mhfa_weights_file_read(m->ctx, path, prefix, 0, &cfg, &w);
    if (status != MHFA_SUCCESS) return status;
    status = mhfa_module_replace_weights(m, (const float *const *)w.weight,
                                         (const float *const *)w.bias);
    mhfa_host_weights_free(&w);
    return status;
}

mhfa_status mhfa_module_save(const mhfa_module *m, const char *path, const char *prefix) {
    if (!m) return MHFA_ERROR_INVALID_ARGUMENT;
    if (!path) return mhfa_fail(m->ctx, MHFA_ERROR_INVALID_ARGUMENT, "save: path is NULL");
    prefix = prefix ? prefix : "";
    const mhfa_config *cfg = &m->cfg;
    mhfa_st_output tensors[8];
    char *names[8] = {NULL};
    int n = 0, named = 1;
    for (int i = 0; i < 4; i++) {
        uint64_t e = (uint64_t)cfg->embed_dim;
        uint64_t in = (uint64_t)(i == MHFA_W_OUT ? cfg->embed_dim : cfg->input_dim);
        names[n] = tensor_name(prefix, i, ".weight");
        tensors[n] = (mhfa_st_output){names[n], m->host_weight[i], 2, {e, in}};
        named = names[n++] && named; /* n counts every name, NULL or not, to free them */
        if (!cfg->bias) continue;
        names[n] = tensor_name(prefix, i, ".bias");
        tensors[n] = (mhfa_st_output){names[n], m->host_bias[i], 1, {e, 0}};
        named = names[n++] && named;
    }
    char heads[16], input[16], embed[16];
    snprintf(heads, sizeof heads, "%d", cfg->n_heads);
    snprintf(input, sizeof input, "%d", cfg->input_dim);
    snprintf(embed, sizeof embed, "%d", cfg->embed_dim);
    const char *const metadata[5][2] = {{"format", "mhfa"},
                                        {"n_heads", heads},
                                        {"input_dim", input},
                                        {"embed_dim", embed},
                                        {"bias", cfg->bias ? "1" : "0"}};
    mhfa_status status = named ? mhfa_st_write(m->ctx, path, tensors, n, metadata, 5)
                               : mhfa_fail(m->ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (int i = 0; i < n; i++)
        free(names[i]);
    return status;
}

/* A positive decimal int with nothing around it, or 0. */
static int parse_positive(const char *text) {
    if (!text || *text < '0' || *text > '9') return 0;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    return *end == '\0' && errno == 0 && v > 0 && v <= INT_MAX ? (int)v : 0;
}

/* "1" or "0" as 1 or 0, anything else -1. */
static int parse_flag(const char *text) {
    return strcmp(text, "1") == 0 ? 1 : strcmp(text, "0") == 0 ? 0 : -1;
}

/* Where the file's metadata states a value, it must agree with the one the tensors give. */
static mhfa_status check_stated(const mhfa_context *ctx, const mhfa_st_file *file, const char *key,
                                int value) {
    const char *stated = mhfa_st_metadata(file, key);
    if (!stated) return MHFA_SUCCESS;
    int parsed = strcmp(key, "bias") == 0 ? parse_flag(stated) : parse_positive(stated);
    if (parsed == value) return MHFA_SUCCESS;
    return mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                     "weights file %s: its metadata says %s = \"%.40s\" but the tensors give %d",
                     file->path, key, stated, value);
}

/* Whether any projection's bias is in the file (a missing one is then named by the load), or -1
 * when out of memory. */
static int any_bias(const mhfa_st_file *file, const char *prefix) {
    int found = 0;
    for (int i = 0; i < 4 && !found; i++) {
        char *name = tensor_name(prefix, i, ".bias");
        if (!name) return -1;
        found = mhfa_st_find(file, name) != NULL;
        free(name);
    }
    return found;
}

/* The config a file describes: n_heads from its metadata, the sizes from W_query.weight, bias from
 * whether the biases are there. */
static mhfa_status config_of_file(const mhfa_context *ctx, const mhfa_st_file *file,
                                  const char *prefix, mhfa_config *cfg) {
    const char *heads_text = mhfa_st_metadata(file, "n_heads");
    if (!heads_text)
        return mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                         "weights file %s: no n_heads in its __metadata__ (a file not written by "
                         "mhfa or tools/export_torch.py): create the module with the layer's "
                         "config and call mhfa_module_load",
                         file->path);
    int n_heads = parse_positive(heads_text);
    if (!n_heads)
        return mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                         "weights file %s: metadata n_heads \"%.40s\" is not a positive integer",
                         file->path, heads_text);
    char *query = tensor_name(prefix, MHFA_W_QUERY, ".weight");
    mhfa_status status = MHFA_SUCCESS;
    const mhfa_st_tensor *t = query ? mhfa_st_find(file, query) : NULL;
    int bias = any_bias(file, prefix);
    if (!query || bias < 0)
        status = mhfa_fail(ctx, MHFA_ERROR_OUT_OF_MEMORY, "out of host memory");
    else if (!t)
        status = missing_tensor(ctx, file, query, query + strlen(prefix));
    else if (t->ndim != 2 || t->shape[0] == 0 || t->shape[1] == 0 || t->shape[0] > INT_MAX ||
             t->shape[1] > INT_MAX)
        status = mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                           "weights file %s: tensor \"%s\" is not a [embed_dim, input_dim] matrix",
                           file->path, query);
    else if (t->shape[0] % (uint64_t)n_heads != 0)
        status = mhfa_fail(ctx, MHFA_ERROR_FORMAT,
                           "weights file %s: embed_dim %llu (from \"%s\") is not divisible by "
                           "n_heads %d",
                           file->path, (unsigned long long)t->shape[0], query, n_heads);
    if (status == MHFA_SUCCESS) {
        *cfg = mhfa_config_default(n_heads, (int)t->shape[1], (int)t->shape[0]);
        cfg->bias = bias;
        status = check_stated(ctx, file, "input_dim", cfg->input_dim);
        if (status == MHFA_SUCCESS) status = check_stated(ctx, file, "embed_dim", cfg->embed_dim);
        if (status == MHFA_SUCCESS) status = check_stated(ctx, file, "bias", cfg->bias);
    }
    free(query);
    return status;
}

mhfa_status mhfa_weights_file_read(const mhfa_context *ctx, const char *path, const char *prefix,
                                   int config_from_file, mhfa_config *cfg, mhfa_host_weights *w) {
    memset(w, 0, sizeof *w);
    prefix = prefix ? prefix : "";
    mhfa_st_file file;
    mhfa_status status = mhfa_st_open(ctx, path, &file);
    if (status != MHFA_SUCCESS) return status;
    if (config_from_file) status = config_of_file(ctx, &file, prefix, cfg);
    if (status == MHFA_SUCCESS) status = read_all(ctx, &file, prefix, cfg, w);
    mhfa_st_close(&file);
    return status;
}

mhfa_status mhfa_module_create_from_file(mhfa_context *ctx, const char *path, const char *prefix,
                                         mhfa_module **module) {
    if (!ctx) return MHFA_ERROR_INVALID_ARGUMENT;
    if (!path || !module)
        return mhfa_fail(ctx, MHFA_ERROR_INVALID_ARGUMENT, "create_from_file: %s is NULL",
                         path ? "module" : "path");
    *module = NULL;
    mhfa_config cfg;
    mhfa_host_weights w;
    mhfa_status status = mhfa_weights_file_read(ctx, path, prefix, 1, &cfg, &w);
    if (status != MHFA_SUCCESS) return status;
    mhfa_module *m = NULL;
    status = mhfa_module_create(ctx, &cfg, &m);
    if (status == MHFA_SUCCESS)
        status = mhfa_module_replace_weights(m, (const float *const *)w.weight,
                                             (const float *const *)w.bias);
    mhfa_host_weights_free(&w);
    if (status != MHFA_SUCCESS) {
        mhfa_module_destroy(m);
        return status;
    }
    *module = m;
    return MHFA_SUCCESS;
}
