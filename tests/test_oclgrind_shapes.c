/* Small forwards for Oclgrind (tests/oclgrind/run.sh runs this under it, once per tuning file):
 * sizes that are multiples of no block (batch 2, n_query 5 against 7 keys; head_dim 3 and 16;
 * input_dim 5, 7 and 8, so that the projections run with and without float4 runs), every mask form
 * (none, [B][Nk], [B][Nq][Nk], the per-head [B][H][Nq][Nk] and a broadcast one, fully masked
 * rows), dropout, both paths, self- and cross-attention, and one or two queries against 19 or 131
 * keys (the decode and absorbed kernels). Each output is poisoned with NaN first and checked
 * against the float64 reference.
 * MHFA_OCLGRIND_TESTS (space-separated test names) runs only those, for the variants whose
 * emulated kernels are slow under Oclgrind. MHFA_OCLGRIND_COVERS (space-separated) names what the
 * forwards must have run, so that a tuning line that stops reaching its kernel fails here rather
 * than leaving it unchecked: "projection:V" (tiled, vector, clblast, mma), "flash:V" and
 * "manual:V" (tiled, vector, mma, wide, each with "+rows" where built with ROWS_LAYOUT), "decode",
 * "absorbed". MHFA_OCLGRIND_DTYPE (float16 or bfloat16) runs every forward in that storage type. */
#include "support.h"

#include "internal.h"
#include "reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef MHFA_HAVE_CLBLAST
#include <clblast_c.h>
#endif

/* Oclgrind (21.10 and its master) takes a host write that is not of a whole buffer as the whole
 * of what is known about it: its shadow is resized to the write and the rest reads as
 * uninitialized. The input projections' weights are written a column block at a time
 * (clEnqueueWriteBufferRect), so they are read back and written whole, unchanged, before a
 * forward; the kernels' own reads and writes are then tracked as they are. */
static void rewrite_whole(mhfa_context *ctx, cl_mem mem) {
    if (!mem) return;
    size_t bytes = 0;
    assert_int_equal(clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL), CL_SUCCESS);
    void *copy = checked_malloc(bytes);
    cl_command_queue queue = mhfa_context_queue(ctx);
    assert_int_equal(clEnqueueReadBuffer(queue, mem, CL_TRUE, 0, bytes, copy, 0, NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueWriteBuffer(queue, mem, CL_TRUE, 0, bytes, copy, 0, NULL, NULL),
                     CL_SUCCESS);
    free(copy);
}

/* Every module lives to the end of the run: Oclgrind keeps a released buffer's shadow for the next
 * buffer that takes its slot, which then reads as written where the old one was and as
 * uninitialized past the old one's size. Each module runs one forward, so that none of its
 * scratch buffers is replaced either. */
static mhfa_module *kept[128];
static int n_kept;

static int destroy_kept(void **state) {
    (void)state;
    while (n_kept > 0)
        mhfa_module_destroy(kept[--n_kept]);
#ifdef MHFA_HAVE_CLBLAST
    /* CLBlast's cached programs released while the runtime is whole: its cache's destructor at exit
     * releases them after Oclgrind's runtime has freed its per-thread state, and the run aborts. */
    CLBlastClearCache();
#endif
    return 0;
}

/* What the forwards ran, as MHFA_OCLGRIND_COVERS names it. */
static char covered[1024] = " ";

static void cover(const char *what) {
    char word[64];
    snprintf(word, sizeof word, " %s ", what);
    if (!strstr(covered, word) && strlen(covered) + strlen(what) + 2 < sizeof covered) {
        strcat(covered, what);
        strcat(covered, " ");
    }
}

static const char *projection_name(mhfa_projection_variant v) {
    return v == MHFA_PROJECT_TILED     ? "tiled"
           : v == MHFA_PROJECT_VECTOR  ? "vector"
           : v == MHFA_PROJECT_CLBLAST ? "clblast"
           : v == MHFA_PROJECT_MMA     ? "mma"
                                       : "none";
}

static const char *attention_name(mhfa_attention_variant v) {
    return v == MHFA_ATTEND_TILED    ? "tiled"
           : v == MHFA_ATTEND_VECTOR ? "vector"
           : v == MHFA_ATTEND_MMA    ? "mma"
           : v == MHFA_ATTEND_WIDE   ? "wide"
                                     : "none";
}

static void record_route(const mhfa_module *m, const test_case *c, int graph_size) {
    char what[64];
    snprintf(what, sizeof what, "projection:%s", projection_name(m->kernels.projection));
    cover(what);
    mhfa_forward_plan f = mhfa_plan_for_forward(m, c->n_query, graph_size, c->mask_ndim != 0, 0);
    if (f.route == MHFA_ROUTE_DECODE) cover("decode");
    if (f.route == MHFA_ROUTE_ABSORBED) cover("absorbed");
    if (f.route != MHFA_ROUTE_KERNEL) return;
    snprintf(what, sizeof what, "%s:%s%s", c->store ? "manual" : "flash",
             attention_name(f.kernel->variant), f.rows_layout ? "+rows" : "");
    cover(what);
}

/* What Oclgrind needs before a forward: the weights written whole (see rewrite_whole), and the
 * route recorded. */
static void prepare_for_oclgrind(mhfa_module *m, const test_case *c, int graph_size) {
    mhfa_context *ctx = test_context();
    rewrite_whole(ctx, m->in_t);
    rewrite_whole(ctx, m->in_bias);
    record_route(m, c, graph_size);
}

/* One forward of c on a module of its own, checked as run_case checks it; the module is kept
 * alive (a freed buffer's record would be reused). */
static void run_checked(mhfa_context *ctx, const test_case *c, test_rng *rng) {
    assert_true(n_kept < (int)(sizeof kept / sizeof kept[0]));
    kept[n_kept++] = run_case_with(ctx, c, rng, prepare_for_oclgrind, 1);
}

/* The storage type MHFA_OCLGRIND_DTYPE names (float16, bfloat16; else float32). */
static mhfa_dtype storage_type(void) {
    const char *name = getenv("MHFA_OCLGRIND_DTYPE");
    if (name && strcmp(name, "float16") == 0) return MHFA_FLOAT16;
    if (name && strcmp(name, "bfloat16") == 0) return MHFA_BFLOAT16;
    return MHFA_FLOAT32;
}

/* head_dim 3 (two heads, input_dim 5: no float4 runs anywhere) or 16 (two heads, input_dim 8 or,
 * on odd cases, 7: the input projections with and without float4 runs, the tensor-core
 * attention). */
static test_case shape(int head_dim, int odd) {
    test_case c = {0};
    c.dtype = storage_type();
    c.n_heads = 2;
    c.embed_dim = 2 * head_dim;
    c.input_dim = head_dim == 3 ? 5 : odd ? 7 : 8;
    c.input_scale = 1.0;
    return c;
}

/* n_query 5 against 7 keys, batch 2, on one path: every mask form, with and without dropout;
 * self-attention (5 keys) on one. */
static void encoder(int head_dim, int store) {
    mhfa_context *ctx = test_context();
    test_rng rng;
    rng_init(&rng, test_seed() + 10u * (unsigned)head_dim + (unsigned)store);
    static const int forms[5][2] = {{0, 0}, {2, 0}, {3, 0}, {4, 0}, {4, 1}}; /* ndim, broadcast */
    for (int i = 0; i < 5; i++) {
        test_case c = shape(head_dim, i % 2);
        c.batch = 2;
        c.n_query = 5;
        c.graph_size = 7;
        c.store = store;
        c.bias = (i + store) % 2;
        c.self_attention = i == 2;
        c.mask_ndim = forms[i][0];
        c.broadcast_mask = forms[i][1];
        c.fully_masked_rows = i == 1 || i == 3;
        c.dropout_p = (i + store) % 2 ? 0.3f : 0.0f;
        run_checked(ctx, &c, &rng);
    }
}

/* One or two queries against 19 keys (chunks of 7, or of 1: several, the last ragged) and 131
 * keys (chunks of 64), masked or not, both paths. input_dim 7 with head_dim 3 keeps the absorbed
 * kernel's cost above the decode kernels' for two queries, so that the default plan runs both. */
static void decode(int head_dim) {
    mhfa_context *ctx = test_context();
    test_rng rng;
    rng_init(&rng, test_seed() + 100u + (unsigned)head_dim);
    static const int forms[4] = {0, 2, 3, 4};
    for (int i = 0; i < 8; i++) {
        test_case c = shape(head_dim, i % 2);
        if (head_dim == 3) c.input_dim = 7;
        c.batch = 2;
        c.n_query = 1 + i % 2;
        c.graph_size = i / 2 % 2 ? 131 : 19;
        c.store = i >= 6;
        c.bias = i % 3 != 0;
        c.mask_ndim = forms[i % 4];
        c.fully_masked_rows = i == 3;
        c.dropout_p = i == 1 || i == 4 || i == 7 ? 0.25f : 0.0f;
        run_checked(ctx, &c, &rng);
    }
}

static void hd3_flash(void **state) {
    (void)state;
    encoder(3, 0);
}
static void hd3_manual(void **state) {
    (void)state;
    encoder(3, 1);
}
static void hd16_flash(void **state) {
    (void)state;
    encoder(16, 0);
}
static void hd16_manual(void **state) {
    (void)state;
    encoder(16, 1);
}
static void hd3_decode(void **state) {
    (void)state;
    decode(3);
}
static void hd16_decode(void **state) {
    (void)state;
    decode(16);
}

/* Last: every name in MHFA_OCLGRIND_COVERS was run by the forwards above. */
static void covers_the_variant(void **state) {
    (void)state;
    printf("# ran: %s\n", covered);
    const char *want = getenv("MHFA_OCLGRIND_COVERS");
    if (!want) return;
    char list[1024];
    snprintf(list, sizeof list, "%s", want);
    for (char *name = strtok(list, " "); name; name = strtok(NULL, " ")) {
        char word[64];
        snprintf(word, sizeof word, " %s ", name);
        if (!strstr(covered, word)) fail_msg("no forward ran %s (ran:%s)", name, covered);
    }
}

int main(void) {
    const struct CMUnitTest all[] = {
        cmocka_unit_test(hd3_flash),   cmocka_unit_test(hd3_manual), cmocka_unit_test(hd16_flash),
        cmocka_unit_test(hd16_manual), cmocka_unit_test(hd3_decode), cmocka_unit_test(hd16_decode),
    };
    const char *only = getenv("MHFA_OCLGRIND_TESTS");
    struct CMUnitTest tests[sizeof all / sizeof all[0] + 1];
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        char word[64];
        snprintf(word, sizeof word, " %s ", all[i].name);
        char padded[512];
        snprintf(padded, sizeof padded, " %s ", only ? only : "");
        if (!only || strstr(padded, word)) tests[n++] = all[i];
    }
    size_t named = 0;
    for (const char *w = only; w && *w;) {
        w += strspn(w, " ");
        named += *w != '\0';
        w += strcspn(w, " ");
    }
    if (only && named != n) {
        fprintf(stderr, "MHFA_OCLGRIND_TESTS (%s) names a test that does not exist\n", only);
        return 1;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(covers_the_variant);
    return _cmocka_run_group_tests("test_oclgrind_shapes", tests, n, NULL, destroy_kept);
}
