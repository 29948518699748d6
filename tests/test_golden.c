/* mhfa against outputs PyTorch computed: the golden files in MHFA_TEST_DATA_DIR, made by
 * tools/make_golden.py. Each file is one forward (PyTorch CPU, float32, evaluation mode), all
 * little-endian with no padding:
 *   16 int32: magic "MHFG" (0x4746484D), version 1, batch, n_query, graph_size, input_dim,
 *             embed_dim, n_heads, bias, self_attention, store_attn_weights, mask_ndim (0, 2, 3, 4),
 *             mask_dims[4] (first mask_ndim used, the rest 0)
 *   float32 W_query, W_key, W_val [E][D_in], W_out [E][E]; if bias: b_query, b_key, b_val, b_out
 * [E] float32 q [B][Nq][D_in]; if not self-attention: h [B][Nk][D_in] uint8 mask (1 = masked out),
 * product of mask_dims bytes, if mask_ndim > 0 float32 expected output [B][Nq][E]; if store:
 * expected weights [B][H][Nq][Nk] and nothing after. A missing, short, long or inconsistent file
 * fails its test. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MHFA_TEST_DATA_DIR
#error "MHFA_TEST_DATA_DIR must name the folder of golden files"
#endif

#define GOLDEN_MAGIC   0x4746484D
#define GOLDEN_VERSION 1

typedef struct golden {
    int batch, n_query, graph_size, input_dim, embed_dim, n_heads;
    int bias, self_attention, store, mask_ndim, mask_dims[4];
    const float *weight[4], *bias_of[4]; /* bias_of all NULL without bias */
    const float *q, *h;                  /* h NULL for self-attention */
    const unsigned char *mask;           /* NULL without mask */
    size_t mask_bytes;
    const float *out, *weights; /* weights NULL unless store */
    unsigned char *file;        /* holds the header and mask */
    float *owned[12];           /* the decoded float arrays: weights, biases, q, h, out, weights */
} golden;

/* Reads a whole file; fails the test if it cannot. */
static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open golden file %s", path);
    unsigned char *data = NULL;
    size_t used = 0, cap = 0, got;
    do {
        if (used == cap) {
            cap = cap ? 2 * cap : 65536;
            unsigned char *grown = realloc(data, cap);
            if (!grown) fail_msg("out of memory reading %s", path);
            data = grown;
        }
        got = fread(data + used, 1, cap - used, f);
        used += got;
    } while (got > 0);
    int failed = ferror(f);
    fclose(f);
    if (failed) fail_msg("error reading %s", path);
    *size = used;
    return data;
}

static int32_t le_int32(const unsigned char *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

/* Walks the body of the file, handing out consecutive sections. Floats are decoded into arrays of
 * their own: the file's sections need not be aligned (the mask has any length) and are
 * little-endian whatever the host. */
typedef struct cursor {
    const unsigned char *at, *end;
    const char *path;
    float **owned; /* where each decoded array is recorded, to be freed */
    int n_owned;
} cursor;

static const float *take_floats(cursor *c, size_t count) {
    if ((size_t)(c->end - c->at) / 4 < count) fail_msg("%s: file too short", c->path);
    float *x = checked_malloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++, c->at += 4) {
        uint32_t bits = (uint32_t)le_int32(c->at);
        memcpy(&x[i], &bits, sizeof bits);
    }
    c->owned[c->n_owned++] = x;
    return x;
}

static const unsigned char *take_bytes(cursor *c, size_t count) {
    if ((size_t)(c->end - c->at) < count) fail_msg("%s: file too short", c->path);
    const unsigned char *p = c->at;
    c->at += count;
    return p;
}

/* Checks the header's sizes and flags fit together, so a malformed file fails here. */
static void check_header(const golden *g, const char *path) {
    const int sizes[6] = {g->batch,     g->n_query,   g->graph_size,
                          g->input_dim, g->embed_dim, g->n_heads};
    for (int i = 0; i < 6; i++)
        if (sizes[i] <= 0 || sizes[i] > 4096) fail_msg("%s: bad size %d", path, sizes[i]);
    if (g->embed_dim % g->n_heads) fail_msg("%s: embed_dim %% n_heads != 0", path);
    const int flags[3] = {g->bias, g->self_attention, g->store};
    for (int i = 0; i < 3; i++)
        if (flags[i] != 0 && flags[i] != 1) fail_msg("%s: bad flag %d", path, flags[i]);
    if (g->self_attention && g->graph_size != g->n_query)
        fail_msg("%s: self-attention with graph_size != n_query", path);
    const int full[5][4] = {{0},
                            {0},
                            {g->batch, g->graph_size},
                            {g->batch, g->n_query, g->graph_size},
                            {g->batch, g->n_heads, g->n_query, g->graph_size}};
    int nd = g->mask_ndim;
    if (nd != 0 && nd != 2 && nd != 3 && nd != 4) fail_msg("%s: bad mask_ndim %d", path, nd);
    for (int i = 0; i < 4; i++) {
        int d = g->mask_dims[i];
        int fits = i >= nd ? d == 0 : d == full[nd][i] || (nd == 4 && d == 1);
        if (!fits) fail_msg("%s: mask dim %d is %d", path, i, d);
    }
}

/* Parses one golden file; every section must be there and nothing more. */
static golden load_golden(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.bin", MHFA_TEST_DATA_DIR, name);
    golden g = {0};
    size_t size;
    g.file = read_file(path, &size);
    if (size < 64) fail_msg("%s: %zu bytes, shorter than the header", path, size);
    int32_t hdr[16];
    for (int i = 0; i < 16; i++)
        hdr[i] = le_int32(g.file + 4 * i);
    if (hdr[0] != GOLDEN_MAGIC || hdr[1] != GOLDEN_VERSION)
        fail_msg("%s: not a version-%d golden file", path, GOLDEN_VERSION);
    g.batch = hdr[2], g.n_query = hdr[3], g.graph_size = hdr[4], g.input_dim = hdr[5];
    g.embed_dim = hdr[6], g.n_heads = hdr[7], g.bias = hdr[8], g.self_attention = hdr[9];
    g.store = hdr[10], g.mask_ndim = hdr[11];
    for (int i = 0; i < 4; i++)
        g.mask_dims[i] = hdr[12 + i];
    check_header(&g, path);

    const size_t B = (size_t)g.batch, Nq = (size_t)g.n_query, Nk = (size_t)g.graph_size;
    const size_t Din = (size_t)g.input_dim, E = (size_t)g.embed_dim, H = (size_t)g.n_heads;
    cursor c = {g.file + 64, g.file + size, path, g.owned, 0};
    for (int i = 0; i < 4; i++)
        g.weight[i] = take_floats(&c, E * (i == MHFA_W_OUT ? E : Din));
    for (int i = 0; i < 4 && g.bias; i++)
        g.bias_of[i] = take_floats(&c, E);
    g.q = take_floats(&c, B * Nq * Din);
    g.h = g.self_attention ? NULL : take_floats(&c, B * Nk * Din);
    if (g.mask_ndim) {
        g.mask_bytes = 1;
        for (int i = 0; i < g.mask_ndim; i++)
            g.mask_bytes *= (size_t)g.mask_dims[i];
        g.mask = take_bytes(&c, g.mask_bytes);
    }
    g.out = take_floats(&c, B * Nq * E);
    g.weights = g.store ? take_floats(&c, B * H * Nq * Nk) : NULL;
    if (c.at != c.end) fail_msg("%s: %td bytes after the last section", path, c.end - c.at);
    return g;
}

/* Both sides are float32 approximations of the exact value: mhfa is held to SEMANTICS.md's
 * 1e-5 * max(1, max |ref|) and PyTorch's own float32 error is of the same order, so their
 * difference may reach the sum of the two, 2e-5 * max(1, max |ref|). */
static void assert_matches(const float *got, const float *want, size_t n, const char *what) {
    double want_max = 0.0, err_max = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(want[i])) fail_msg("%s: golden value %zu is not finite", what, i);
        if (fabs(want[i]) > want_max) want_max = fabs(want[i]);
    }
    double bound = 2e-5 * (want_max > 1.0 ? want_max : 1.0);
    for (size_t i = 0; i < n; i++) {
        double err = isfinite(got[i]) ? fabs((double)got[i] - want[i]) : INFINITY;
        if (err > err_max) err_max = err, worst = i;
    }
    if (err_max > bound)
        fail_msg("%s: max error %.3g at %zu (got %.9g, want %.9g) exceeds %.3g", what, err_max,
                 worst, (double)got[worst], (double)want[worst], bound);
}

static mhfa_module *module_for(mhfa_context *ctx, const golden *g) {
    mhfa_config cfg = mhfa_config_default(g->n_heads, g->input_dim, g->embed_dim);
    cfg.bias = g->bias;
    cfg.store_attn_weights = g->store;
    mhfa_module *m = NULL;
    if (mhfa_module_create(ctx, &cfg, &m) != MHFA_SUCCESS)
        fail_msg("module_create: %s", mhfa_context_error_message(ctx));
    for (int i = 0; i < 4; i++)
        if (mhfa_module_set_projection(m, (mhfa_projection)i, g->weight[i], g->bias_of[i]) !=
            MHFA_SUCCESS)
            fail_msg("set_projection %d: %s", i, mhfa_context_error_message(ctx));
    return m;
}

/* The manual path keeps the weights and gives the mask back as it was given. */
static void check_stored(mhfa_module *m, const golden *g, const char *name) {
    size_t n = (size_t)g->batch * g->n_heads * g->n_query * g->graph_size;
    float *w = checked_malloc(n * sizeof(float));
    poison(w, n);
    int dims[4];
    assert_int_equal(mhfa_module_last_attention(m, dims, w, n), MHFA_SUCCESS);
    const int want_dims[4] = {g->batch, g->n_heads, g->n_query, g->graph_size};
    for (int i = 0; i < 4; i++)
        assert_int_equal(dims[i], want_dims[i]);
    char what[256];
    snprintf(what, sizeof what, "%s (stored weights)", name);
    assert_matches(w, g->weights, n, what);
    free(w);

    int ndim = -1, mdims[4] = {0};
    unsigned char *mask = checked_malloc(g->mask_bytes);
    unsigned char *data = g->mask ? mask : NULL; /* no mask: nothing to copy */
    assert_int_equal(mhfa_module_last_mask(m, &ndim, mdims, data, g->mask_bytes), MHFA_SUCCESS);
    assert_int_equal(ndim, g->mask_ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(mdims[i], g->mask_dims[i]);
    for (size_t i = 0; i < g->mask_bytes; i++)
        if ((mask[i] != 0) != (g->mask[i] != 0))
            fail_msg("%s: stored mask byte %zu is %d, given %d", name, i, mask[i], g->mask[i]);
    free(mask);
}

static void run_golden(const char *name) {
    golden g = load_golden(name);
    mhfa_context *ctx = test_context();
    mhfa_module *m = module_for(ctx, &g);
    mhfa_mask mask = {g.mask, g.mask_ndim, {0}};
    memcpy(mask.dims, g.mask_dims, sizeof mask.dims);
    size_t out_n = (size_t)g.batch * g.n_query * g.embed_dim;
    float *out = checked_malloc(out_n * sizeof(float));
    poison(out, out_n);
    if (mhfa_forward(m, g.batch, g.n_query, g.graph_size, g.q, g.h, g.mask ? &mask : NULL, out) !=
        MHFA_SUCCESS)
        fail_msg("%s: forward: %s", name, mhfa_context_error_message(ctx));
    assert_matches(out, g.out, out_n, name);
    int dims[4];
    if (g.store)
        check_stored(m, &g, name);
    else /* the flash path stores nothing */
        assert_int_equal(mhfa_module_last_attention(m, dims, NULL, 0), MHFA_ERROR_NOT_AVAILABLE);
    free(out);
    mhfa_module_destroy(m);
    for (int i = 0; i < 12; i++)
        free(g.owned[i]);
    free(g.file);
}

/* One test per file, named as the file (without .bin); the list is explicit so that a missing
 * file fails rather than being skipped. */
#define GOLDEN(name)                                                                               \
    static void name(void **state) {                                                               \
        (void)state;                                                                               \
        run_golden(#name);                                                                         \
    }
GOLDEN(self_nomask_hd1)
GOLDEN(self_mask2_hd3_store)
GOLDEN(cross_mask3_hd16)
GOLDEN(cross_mask3_hd16_store)
GOLDEN(cross_mask4_hd32_store)
GOLDEN(cross_mask4_bcast_hd3)
GOLDEN(self_mask4_bcast_hd16_store)
GOLDEN(decoder_step_mask2_hd16)
GOLDEN(decoder_step_mask4_hd3_store)
GOLDEN(self_nomask_hd32_store)
GOLDEN(routing_mask2_e128_h8)

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(self_nomask_hd1),
        cmocka_unit_test(self_mask2_hd3_store),
        cmocka_unit_test(cross_mask3_hd16),
        cmocka_unit_test(cross_mask3_hd16_store),
        cmocka_unit_test(cross_mask4_hd32_store),
        cmocka_unit_test(cross_mask4_bcast_hd3),
        cmocka_unit_test(self_mask4_bcast_hd16_store),
        cmocka_unit_test(decoder_step_mask2_hd16),
        cmocka_unit_test(decoder_step_mask4_hd3_store),
        cmocka_unit_test(self_nomask_hd32_store),
        cmocka_unit_test(routing_mask2_e128_h8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
