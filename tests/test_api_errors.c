/* Every invalid argument of API.md: its own status, a message that says why, no crash, and
 * nothing half-changed by the failed call. */
#include "support.h"

#include "internal.h" /* mhfa_clear_error: each failure must write its own message */

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The small layer every test here uses. */
enum { HEADS = 2, DIN = 6, EMBED = 8, BATCH = 2, NQ = 3, NK = 4 };

/* Checks a failed call's status, and that it left a message on the context. */
static void check_failure(const mhfa_context *ctx, mhfa_status expected, mhfa_status got,
                          const char *call, int line) {
    if (got != expected)
        fail_msg("line %d: %s returned %d (%s), want %d (%s)", line, call, (int)got,
                 mhfa_status_string(got), (int)expected, mhfa_status_string(expected));
    const char *message = mhfa_context_error_message(ctx);
    if (!message || !message[0]) fail_msg("line %d: %s left no message", line, call);
}
#define EXPECT_FAIL(ctx, expected, call)                                                           \
    do {                                                                                           \
        mhfa_clear_error(ctx);                                                                     \
        check_failure((ctx), (expected), (call), #call, __LINE__);                                 \
    } while (0)

/* For calls on a NULL module or context: only the status can tell. */
#define EXPECT_STATUS(expected, call) assert_int_equal((call), (expected))

static mhfa_module *create_module(int bias, int store) {
    mhfa_config cfg = mhfa_config_default(HEADS, DIN, EMBED);
    cfg.bias = bias;
    cfg.store_attn_weights = store;
    mhfa_module *m = NULL;
    if (mhfa_module_create(test_context(), &cfg, &m) != MHFA_SUCCESS)
        fail_msg("module_create: %s", mhfa_context_error_message(test_context()));
    return m;
}

/* Inputs for one forward of BATCH x NQ queries over NK keys. */
typedef struct inputs {
    float q[BATCH * NQ * DIN], h[BATCH * NK * DIN], out[BATCH * NQ * EMBED];
    unsigned char mask[BATCH * HEADS * NQ * NK];
} inputs;

static void fill_inputs(inputs *in, uint64_t seed) {
    test_rng rng;
    rng_init(&rng, seed);
    fill_normal(&rng, in->q, BATCH * NQ * DIN, 1.0);
    fill_normal(&rng, in->h, BATCH * NK * DIN, 1.0);
    for (size_t i = 0; i < sizeof in->mask; i++)
        in->mask[i] = rng_uniform(&rng) < 0.3;
    poison(in->out, BATCH * NQ * EMBED);
}

/* ---- NULL pointers ---- */

static void test_null_module_everywhere(void **state) {
    (void)state;
    float w[EMBED * EMBED], b[EMBED], x[BATCH * NQ * DIN], y[BATCH * NQ * EMBED];
    int dims[4], ndim;
    size_t bytes;
    mhfa_config cfg;
    cl_mem buf = (cl_mem)NULL;
    EXPECT_STATUS(MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_init_parameters(NULL, 0));
    EXPECT_STATUS(MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_set_projection(NULL, MHFA_W_OUT, w, b));
    EXPECT_STATUS(MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_get_projection(NULL, MHFA_W_OUT, w, b));
    EXPECT_STATUS(MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_set_training(NULL, 1, 0));
    EXPECT_STATUS(MHFA_ERROR_INVALID_ARGUMENT, mhfa_forward(NULL, BATCH, NQ, NQ, x, NULL, NULL, y));
    EXPECT_STATUS(MHFA_ERROR_INVALID_ARGUMENT,
                  mhfa_forward_enqueue(NULL, BATCH, NQ, NQ, buf, NULL, NULL, buf, 0, NULL, NULL));
    EXPECT_STATUS(MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_last_attention(NULL, dims, NULL, 0));
    EXPECT_STATUS(MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_last_mask(NULL, &ndim, dims, NULL, 0));
    EXPECT_STATUS(MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_device_bytes(NULL, &bytes));
    EXPECT_STATUS(MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_get_config(NULL, &cfg));
}

static void test_null_create_arguments(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_config cfg = mhfa_config_default(HEADS, DIN, EMBED);
    mhfa_module *m = NULL;
    EXPECT_STATUS(MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_create(NULL, &cfg, &m));
    assert_null(m);
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_create(ctx, NULL, &m));
    assert_null(m);
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_create(ctx, &cfg, NULL));

    mhfa_context *other = NULL;
    assert_int_equal(mhfa_context_create(NULL, NULL), MHFA_ERROR_INVALID_ARGUMENT);
    assert_true(mhfa_last_create_error()[0] != '\0');
    assert_int_equal(mhfa_context_create_from_queue(NULL, &other), MHFA_ERROR_INVALID_ARGUMENT);
    assert_null(other);
    assert_true(mhfa_last_create_error()[0] != '\0');
    assert_int_equal(mhfa_context_create_from_queue(mhfa_context_queue(ctx), NULL),
                     MHFA_ERROR_INVALID_ARGUMENT);
    assert_true(mhfa_last_create_error()[0] != '\0');
}

static void test_destroy_null_is_noop(void **state) {
    (void)state;
    mhfa_context_destroy(NULL);
    mhfa_module_destroy(NULL);
    assert_non_null(mhfa_context_error_message(NULL));
}

/* ---- configuration ---- */

/* module_create with cfg must fail with expected, leaving no module. */
static void expect_config_fails(const mhfa_config *cfg, mhfa_status expected, int line) {
    mhfa_context *ctx = test_context();
    mhfa_module *m = NULL;
    mhfa_clear_error(ctx);
    check_failure(ctx, expected, mhfa_module_create(ctx, cfg, &m), "module_create", line);
    assert_null(m);
}

static void test_config_sizes(void **state) {
    (void)state;
    const int bad[] = {0, -1, -8};
    for (int i = 0; i < 3; i++) {
        mhfa_config cfg = mhfa_config_default(bad[i], DIN, EMBED);
        expect_config_fails(&cfg, MHFA_ERROR_INVALID_ARGUMENT, __LINE__);
        cfg = mhfa_config_default(HEADS, bad[i], EMBED);
        expect_config_fails(&cfg, MHFA_ERROR_INVALID_ARGUMENT, __LINE__);
        cfg = mhfa_config_default(HEADS, DIN, bad[i]);
        expect_config_fails(&cfg, MHFA_ERROR_INVALID_ARGUMENT, __LINE__);
    }
    mhfa_config cfg = mhfa_config_default(4, DIN, 10); /* 10 % 4 != 0 */
    expect_config_fails(&cfg, MHFA_ERROR_INVALID_SHAPE, __LINE__);
    cfg = mhfa_config_default(3, DIN, EMBED);
    expect_config_fails(&cfg, MHFA_ERROR_INVALID_SHAPE, __LINE__);
}

static void test_config_dropout(void **state) {
    (void)state;
    const float bad[] = {-0.1f, -1e-7f, 1.0f, 1.5f, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mhfa_config cfg = mhfa_config_default(HEADS, DIN, EMBED);
        cfg.attention_dropout = bad[i];
        expect_config_fails(&cfg, MHFA_ERROR_INVALID_ARGUMENT, __LINE__);
    }
    /* The edges of [0, 1) are accepted. */
    const float good[] = {0.0f, 0.999f};
    for (int i = 0; i < 2; i++) {
        mhfa_config cfg = mhfa_config_default(HEADS, DIN, EMBED);
        cfg.attention_dropout = good[i];
        mhfa_module *m = NULL;
        assert_int_equal(mhfa_module_create(test_context(), &cfg, &m), MHFA_SUCCESS);
        mhfa_module_destroy(m);
    }
}

/* ---- projections ---- */

typedef struct projection {
    float weight[EMBED * EMBED], bias[EMBED];
} projection;

static void read_all(const mhfa_module *m, int bias, projection p[4]) {
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            mhfa_module_get_projection(m, (mhfa_projection)i, p[i].weight, bias ? p[i].bias : NULL),
            MHFA_SUCCESS);
}

static void assert_all_unchanged(const mhfa_module *m, int bias, const projection before[4]) {
    projection after[4];
    memset(after, 0, sizeof after);
    read_all(m, bias, after);
    assert_memory_equal(after, before, sizeof after);
}

static void test_projection_bad_arguments(int bias) {
    mhfa_context *ctx = test_context();
    mhfa_module *m = create_module(bias, 0);
    projection before[4], fresh;
    memset(before, 0, sizeof before);
    read_all(m, bias, before);
    for (size_t i = 0; i < EMBED * EMBED; i++)
        fresh.weight[i] = 7.0f;
    for (int i = 0; i < EMBED; i++)
        fresh.bias[i] = -7.0f;
    float *w = fresh.weight, *b = fresh.bias, *right_bias = bias ? b : NULL;
    float *wrong_bias = bias ? NULL : b;

    const int bad_which[] = {-1, 4, 100};
    for (int i = 0; i < 3; i++) {
        mhfa_projection which = (mhfa_projection)bad_which[i];
        EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                    mhfa_module_set_projection(m, which, w, right_bias));
        EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                    mhfa_module_get_projection(m, which, w, right_bias));
    }
    for (int i = 0; i < 4; i++) {
        mhfa_projection which = (mhfa_projection)i;
        EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                    mhfa_module_set_projection(m, which, NULL, right_bias));
        EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                    mhfa_module_get_projection(m, which, NULL, right_bias));
        EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                    mhfa_module_set_projection(m, which, w, wrong_bias));
        EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                    mhfa_module_get_projection(m, which, w, wrong_bias));
    }
    /* Nothing half-changed: every failed set left the weights as they were. */
    assert_all_unchanged(m, bias, before);
    /* And the same arguments, made right, do change them. */
    assert_int_equal(mhfa_module_set_projection(m, MHFA_W_OUT, w, right_bias), MHFA_SUCCESS);
    projection after[4];
    read_all(m, bias, after);
    assert_memory_equal(after[MHFA_W_OUT].weight, w, sizeof fresh.weight);
    mhfa_module_destroy(m);
}

static void test_projection_with_bias(void **state) {
    (void)state;
    test_projection_bad_arguments(1);
}

static void test_projection_without_bias(void **state) {
    (void)state;
    test_projection_bad_arguments(0);
}

/* ---- forward ---- */

static void test_forward_sizes_and_pointers(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_module *m = create_module(1, 0);
    inputs in;
    fill_inputs(&in, 1);
    const int bad[] = {0, -1};
    for (int i = 0; i < 2; i++) {
        EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                    mhfa_forward(m, bad[i], NQ, NK, in.q, in.h, NULL, in.out));
        EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                    mhfa_forward(m, BATCH, bad[i], NK, in.q, in.h, NULL, in.out));
        EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                    mhfa_forward(m, BATCH, NQ, bad[i], in.q, in.h, NULL, in.out));
    }
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                mhfa_forward(m, BATCH, NQ, NK, NULL, in.h, NULL, in.out));
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, NULL, NULL));
    /* Self-attention needs graph_size == n_query. */
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_SHAPE,
                mhfa_forward(m, BATCH, NQ, NK, in.q, NULL, NULL, in.out));
    /* The failures wrote nothing into out. */
    for (size_t i = 0; i < BATCH * NQ * EMBED; i++)
        assert_true(isnan(in.out[i]));
    /* The same module runs the right call. */
    assert_int_equal(mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, NULL, in.out), MHFA_SUCCESS);
    assert_int_equal(mhfa_forward(m, BATCH, NQ, NQ, in.q, NULL, NULL, in.out), MHFA_SUCCESS);
    mhfa_module_destroy(m);
}

typedef struct mask_shape {
    int ndim, dims[4];
} mask_shape;

/* Masks that must be refused for a BATCH x NQ x NK forward with HEADS heads. */
static const mask_shape bad_masks[] = {
    {-1, {BATCH, NK}},
    {1, {NK}},
    {5, {BATCH, HEADS, NQ, NK}}, /* the fifth dim is never read */
    {2, {BATCH + 1, NK}},
    {2, {BATCH, NK + 1}},
    {2, {BATCH, NQ}},
    {2, {BATCH, 0}},
    {2, {-1, NK}},
    {3, {BATCH, NQ + 1, NK}},
    {3, {BATCH, NK, NQ}},
    {3, {BATCH, NQ, 2}},
    {4, {BATCH, HEADS + 1, NQ, NK}},
    {4, {BATCH, HEADS, NQ, NK + 1}},
    {4, {1, 1, 1, 3}},
    {4, {BATCH, NQ, HEADS, NK}},
};

/* Masks that fit, broadcasts included. */
static const mask_shape good_masks[] = {
    {2, {BATCH, NK}},       {2, {1, NK}},      {3, {BATCH, NQ, NK}},
    {3, {1, 1, NK}},        {4, {1, 1, 1, 1}}, {4, {BATCH, HEADS, NQ, NK}},
    {4, {1, HEADS, 1, NK}},
};

static void test_forward_masks(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_module *m = create_module(1, 0);
    inputs in;
    fill_inputs(&in, 2);
    for (size_t i = 0; i < sizeof bad_masks / sizeof bad_masks[0]; i++) {
        const mask_shape *b = &bad_masks[i];
        mhfa_mask mask = {in.mask, b->ndim, {b->dims[0], b->dims[1], b->dims[2], b->dims[3]}};
        mhfa_clear_error(ctx);
        mhfa_status s = mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, &mask, in.out);
        if (s != MHFA_ERROR_INVALID_SHAPE || !mhfa_context_error_message(ctx)[0])
            fail_msg("mask %zu (ndim %d): got %d (%s)", i, b->ndim, (int)s, mhfa_status_string(s));
    }
    for (size_t i = 0; i < sizeof good_masks / sizeof good_masks[0]; i++) {
        const mask_shape *g = &good_masks[i];
        mhfa_mask mask = {in.mask, g->ndim, {g->dims[0], g->dims[1], g->dims[2], g->dims[3]}};
        mhfa_status s = mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, &mask, in.out);
        if (s != MHFA_SUCCESS) fail_msg("good mask %zu: %s", i, mhfa_context_error_message(ctx));
    }
    mhfa_mask no_data = {NULL, 2, {BATCH, NK, 0, 0}};
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, &no_data, in.out));
    mhfa_module_destroy(m);
}

/* A mask given with ndim 0 is refused like any ndim outside 2..4 (it once passed as a mask of no
 * shape, and the kernels read stale scratch). */
static void test_forward_mask_ndim_zero(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_module *m = create_module(1, 0);
    inputs in;
    fill_inputs(&in, 8);
    mhfa_mask mask = {in.mask, 0, {BATCH, NK, 0, 0}};
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_SHAPE,
                mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, &mask, in.out));
    mhfa_module_destroy(m);
}

/* ---- last attention ---- */

static void test_last_attention_before_forward(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_module *m = create_module(1, 1);
    int dims[4], ndim;
    float w[BATCH * HEADS * NQ * NK];
    EXPECT_FAIL(ctx, MHFA_ERROR_NOT_AVAILABLE, mhfa_module_last_attention(m, dims, w, 1000));
    EXPECT_FAIL(ctx, MHFA_ERROR_NOT_AVAILABLE, mhfa_module_last_attention(m, dims, NULL, 0));
    EXPECT_FAIL(ctx, MHFA_ERROR_NOT_AVAILABLE, mhfa_module_last_mask(m, &ndim, dims, NULL, 0));
    mhfa_module_destroy(m);
}

static void test_last_attention_flash_path(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_module *m = create_module(1, 0);
    inputs in;
    fill_inputs(&in, 3);
    assert_int_equal(mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, NULL, in.out), MHFA_SUCCESS);
    int dims[4];
    float w[BATCH * HEADS * NQ * NK];
    EXPECT_FAIL(ctx, MHFA_ERROR_NOT_AVAILABLE, mhfa_module_last_attention(m, dims, w, 1000));
    EXPECT_FAIL(ctx, MHFA_ERROR_NOT_AVAILABLE, mhfa_module_last_attention(m, dims, NULL, 0));
    mhfa_module_destroy(m);
}

static void test_last_attention_capacity(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_module *m = create_module(1, 1);
    inputs in;
    fill_inputs(&in, 4);
    assert_int_equal(mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, NULL, in.out), MHFA_SUCCESS);
    enum { COUNT = BATCH * HEADS * NQ * NK };
    float w[COUNT];
    int dims[4] = {0};
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                mhfa_module_last_attention(m, dims, w, COUNT - 1));
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_last_attention(m, dims, w, 0));
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT, mhfa_module_last_attention(m, NULL, w, COUNT));
    /* weights NULL asks for the dims only, whatever the capacity. */
    assert_int_equal(mhfa_module_last_attention(m, dims, NULL, 0), MHFA_SUCCESS);
    const int want[4] = {BATCH, HEADS, NQ, NK};
    assert_memory_equal(dims, want, sizeof want);
    assert_int_equal(mhfa_module_last_attention(m, dims, w, COUNT), MHFA_SUCCESS);
    mhfa_module_destroy(m);
}

/* What last_attention and last_mask report, compared whole. */
typedef struct stored {
    int dims[4], mask_ndim, mask_dims[4];
    float weights[BATCH * HEADS * NQ * NK];
    unsigned char mask[BATCH * HEADS * NQ * NK];
} stored;

static void read_stored(const mhfa_module *m, stored *s) {
    memset(s, 0, sizeof *s);
    assert_int_equal(mhfa_module_last_attention(m, s->dims, s->weights, BATCH * HEADS * NQ * NK),
                     MHFA_SUCCESS);
    assert_int_equal(mhfa_module_last_mask(m, &s->mask_ndim, s->mask_dims, s->mask, sizeof s->mask),
                     MHFA_SUCCESS);
}

static void test_failed_forward_keeps_stored_attention(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_module *m = create_module(1, 1);
    inputs in;
    fill_inputs(&in, 5);
    /* A good forward of 1 x 2 queries over 3 keys with a 2-D mask. */
    mhfa_mask small = {in.mask, 2, {1, 3, 0, 0}};
    in.mask[0] = 0, in.mask[1] = 1, in.mask[2] = 0;
    assert_int_equal(mhfa_forward(m, 1, 2, 3, in.q, in.h, &small, in.out), MHFA_SUCCESS);
    stored before, after;
    read_stored(m, &before);

    /* Failed forwards of another shape: bad masks, bad sizes, NULL data. */
    for (size_t i = 0; i < sizeof bad_masks / sizeof bad_masks[0]; i++) {
        const mask_shape *b = &bad_masks[i];
        mhfa_mask mask = {in.mask, b->ndim, {b->dims[0], b->dims[1], b->dims[2], b->dims[3]}};
        EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_SHAPE,
                    mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, &mask, in.out));
    }
    mhfa_mask no_data = {NULL, 2, {BATCH, NK, 0, 0}};
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, &no_data, in.out));
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_SHAPE,
                mhfa_forward(m, BATCH, NQ, NK, in.q, NULL, NULL, in.out));
    read_stored(m, &after);
    assert_memory_equal(&after, &before, sizeof before);
    mhfa_module_destroy(m);
}

/* A failed forward in training mode does not advance the dropout stream. */
static void test_failed_forward_keeps_dropout_offset(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_config cfg = mhfa_config_default(HEADS, DIN, EMBED);
    cfg.attention_dropout = 0.5f;
    mhfa_module *m = NULL;
    assert_int_equal(mhfa_module_create(ctx, &cfg, &m), MHFA_SUCCESS);
    inputs in;
    fill_inputs(&in, 6);
    float first[BATCH * NQ * EMBED], second[BATCH * NQ * EMBED];
    mask_shape b = bad_masks[2]; /* ndim 1 */
    mhfa_mask mask = {in.mask, b.ndim, {b.dims[0], b.dims[1], b.dims[2], b.dims[3]}};

    /* Two forwards with a failed one between them... */
    assert_int_equal(mhfa_module_set_training(m, 1, 42), MHFA_SUCCESS);
    assert_int_equal(mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, NULL, first), MHFA_SUCCESS);
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_SHAPE,
                mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, &mask, in.out));
    assert_int_equal(mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, NULL, second), MHFA_SUCCESS);
    assert_true(memcmp(first, second, sizeof first) != 0); /* dropout is on */
    /* ...replay as two forwards without it. */
    assert_int_equal(mhfa_module_set_training(m, 1, 42), MHFA_SUCCESS);
    assert_int_equal(mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, NULL, in.out), MHFA_SUCCESS);
    assert_memory_equal(in.out, first, sizeof first);
    assert_int_equal(mhfa_forward(m, BATCH, NQ, NK, in.q, in.h, NULL, in.out), MHFA_SUCCESS);
    assert_memory_equal(in.out, second, sizeof second);
    mhfa_module_destroy(m);
}

/* ---- context creation ---- */

static void expect_no_device(const char *spec) {
    static int sentinel;
    mhfa_context *ctx = (mhfa_context *)&sentinel; /* must come back NULL */
    mhfa_status s = mhfa_context_create(spec, &ctx);
    if (s != MHFA_ERROR_DEVICE_NOT_FOUND)
        fail_msg("spec \"%s\": got %d (%s)", spec, (int)s, mhfa_status_string(s));
    assert_null(ctx);
    /* The message lists the devices there are: the test device among them. */
    const char *message = mhfa_last_create_error();
    const char *name = mhfa_context_device_name(test_context());
    assert_true(name[0] != '\0');
    if (!strstr(message, name))
        fail_msg("spec \"%s\": message does not list \"%s\":\n%s", spec, name, message);
}

static void test_context_spec_matches_nothing(void **state) {
    (void)state;
    expect_no_device("no-such-platform");
    expect_no_device("0:99");
    expect_no_device("99");
    expect_no_device(":no-such-device");
}

static void test_context_spec_malformed(void **state) {
    (void)state;
    mhfa_context *ctx = NULL;
    assert_int_equal(mhfa_context_create("a:b:c", &ctx), MHFA_ERROR_DEVICE_NOT_FOUND);
    assert_null(ctx);
    assert_true(mhfa_last_create_error()[0] != '\0');
}

/* ---- forward_enqueue ---- */

static cl_mem make_buffer(size_t bytes) {
    cl_int err;
    cl_mem mem = clCreateBuffer(mhfa_context_cl_context(test_context()), CL_MEM_READ_WRITE, bytes,
                                NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    return mem;
}

typedef struct device_io {
    cl_mem q, h, out, mask, small;
} device_io;

static void make_device_io(device_io *io) {
    io->q = make_buffer(BATCH * NQ * DIN * sizeof(float));
    io->h = make_buffer(BATCH * NK * DIN * sizeof(float));
    io->out = make_buffer(BATCH * NQ * EMBED * sizeof(float));
    io->mask = make_buffer(BATCH * NK);
    io->small = make_buffer(4);
    /* Defined contents, so the good forwards below read no garbage. */
    inputs in;
    fill_inputs(&in, 7);
    memset(in.mask, 0, sizeof in.mask);
    cl_command_queue queue = mhfa_context_queue(test_context());
    assert_int_equal(
        clEnqueueWriteBuffer(queue, io->q, CL_TRUE, 0, sizeof in.q, in.q, 0, NULL, NULL),
        CL_SUCCESS);
    assert_int_equal(
        clEnqueueWriteBuffer(queue, io->h, CL_TRUE, 0, sizeof in.h, in.h, 0, NULL, NULL),
        CL_SUCCESS);
    assert_int_equal(
        clEnqueueWriteBuffer(queue, io->mask, CL_TRUE, 0, BATCH * NK, in.mask, 0, NULL, NULL),
        CL_SUCCESS);
}

static void release_device_io(device_io *io) {
    clReleaseMemObject(io->q);
    clReleaseMemObject(io->h);
    clReleaseMemObject(io->out);
    clReleaseMemObject(io->mask);
    clReleaseMemObject(io->small);
}

/* enqueue must fail with expected and hand back no event. */
#define EXPECT_ENQUEUE_FAIL(expected, q, h, mask, out, num_wait, wait_list)                        \
    do {                                                                                           \
        cl_event event = NULL;                                                                     \
        EXPECT_FAIL(                                                                               \
            ctx, expected,                                                                         \
            mhfa_forward_enqueue(m, BATCH, NQ, NK, q, h, mask, out, num_wait, wait_list, &event)); \
        assert_null(event);                                                                        \
    } while (0)

static void test_enqueue_bad_buffers(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_module *m = create_module(1, 0);
    device_io io;
    make_device_io(&io);
    mhfa_mask_buffer mask = {io.mask, 2, {BATCH, NK, 0, 0}};
    mhfa_mask_buffer small_mask = {io.small, 2, {BATCH, NK, 0, 0}};
    mhfa_mask_buffer null_mask = {NULL, 2, {BATCH, NK, 0, 0}};
    mhfa_mask_buffer bad_ndim = {io.mask, 1, {NK, 0, 0, 0}};
    EXPECT_ENQUEUE_FAIL(MHFA_ERROR_INVALID_ARGUMENT, NULL, io.h, &mask, io.out, 0, NULL);
    EXPECT_ENQUEUE_FAIL(MHFA_ERROR_INVALID_ARGUMENT, io.q, io.h, &mask, NULL, 0, NULL);
    EXPECT_ENQUEUE_FAIL(MHFA_ERROR_INVALID_ARGUMENT, io.small, io.h, &mask, io.out, 0, NULL);
    EXPECT_ENQUEUE_FAIL(MHFA_ERROR_INVALID_ARGUMENT, io.q, io.small, &mask, io.out, 0, NULL);
    EXPECT_ENQUEUE_FAIL(MHFA_ERROR_INVALID_ARGUMENT, io.q, io.h, &mask, io.small, 0, NULL);
    EXPECT_ENQUEUE_FAIL(MHFA_ERROR_INVALID_ARGUMENT, io.q, io.h, &small_mask, io.out, 0, NULL);
    EXPECT_ENQUEUE_FAIL(MHFA_ERROR_INVALID_ARGUMENT, io.q, io.h, &null_mask, io.out, 0, NULL);
    EXPECT_ENQUEUE_FAIL(MHFA_ERROR_INVALID_SHAPE, io.q, io.h, &bad_ndim, io.out, 0, NULL);
    /* Self-attention with graph_size != n_query. */
    EXPECT_ENQUEUE_FAIL(MHFA_ERROR_INVALID_SHAPE, io.q, NULL, NULL, io.out, 0, NULL);
    /* The right buffers work, and the event completes. */
    cl_event event = NULL;
    assert_int_equal(
        mhfa_forward_enqueue(m, BATCH, NQ, NK, io.q, io.h, &mask, io.out, 0, NULL, &event),
        MHFA_SUCCESS);
    assert_non_null(event);
    assert_int_equal(clWaitForEvents(1, &event), CL_SUCCESS);
    clReleaseEvent(event);
    release_device_io(&io);
    mhfa_module_destroy(m);
}

/* The same as test_forward_mask_ndim_zero, through forward_enqueue. */
static void test_enqueue_mask_ndim_zero(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_module *m = create_module(1, 0);
    device_io io;
    make_device_io(&io);
    mhfa_mask_buffer mask = {io.mask, 0, {BATCH, NK, 0, 0}};
    cl_event event = NULL;
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_SHAPE,
                mhfa_forward_enqueue(m, BATCH, NQ, NK, io.q, io.h, &mask, io.out, 0, NULL, &event));
    if (event) clReleaseEvent(event);
    clFinish(mhfa_context_queue(ctx));
    release_device_io(&io);
    mhfa_module_destroy(m);
}

static void test_enqueue_bad_sizes_and_wait_list(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    mhfa_module *m = create_module(1, 0);
    device_io io;
    make_device_io(&io);
    cl_event event = NULL;
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                mhfa_forward_enqueue(m, 0, NQ, NK, io.q, io.h, NULL, io.out, 0, NULL, &event));
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                mhfa_forward_enqueue(m, BATCH, -1, NK, io.q, io.h, NULL, io.out, 0, NULL, &event));
    EXPECT_FAIL(ctx, MHFA_ERROR_INVALID_ARGUMENT,
                mhfa_forward_enqueue(m, BATCH, NQ, 0, io.q, io.h, NULL, io.out, 0, NULL, &event));
    EXPECT_ENQUEUE_FAIL(MHFA_ERROR_INVALID_ARGUMENT, io.q, io.h, NULL, io.out, 1, NULL);
    EXPECT_ENQUEUE_FAIL(MHFA_ERROR_INVALID_ARGUMENT, io.q, io.h, NULL, io.out, 3, NULL);
    assert_null(event);
    /* A real wait list is accepted. */
    cl_event ready = NULL;
    assert_int_equal(clEnqueueMarkerWithWaitList(mhfa_context_queue(ctx), 0, NULL, &ready),
                     CL_SUCCESS);
    assert_int_equal(
        mhfa_forward_enqueue(m, BATCH, NQ, NK, io.q, io.h, NULL, io.out, 1, &ready, NULL),
        MHFA_SUCCESS);
    assert_int_equal(clFinish(mhfa_context_queue(ctx)), CL_SUCCESS);
    clReleaseEvent(ready);
    release_device_io(&io);
    mhfa_module_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_module_everywhere),
        cmocka_unit_test(test_null_create_arguments),
        cmocka_unit_test(test_destroy_null_is_noop),
        cmocka_unit_test(test_config_sizes),
        cmocka_unit_test(test_config_dropout),
        cmocka_unit_test(test_projection_with_bias),
        cmocka_unit_test(test_projection_without_bias),
        cmocka_unit_test(test_forward_sizes_and_pointers),
        cmocka_unit_test(test_forward_masks),
        cmocka_unit_test(test_forward_mask_ndim_zero),
        cmocka_unit_test(test_last_attention_before_forward),
        cmocka_unit_test(test_last_attention_flash_path),
        cmocka_unit_test(test_last_attention_capacity),
        cmocka_unit_test(test_failed_forward_keeps_stored_attention),
        cmocka_unit_test(test_failed_forward_keeps_dropout_offset),
        cmocka_unit_test(test_context_spec_matches_nothing),
        cmocka_unit_test(test_context_spec_malformed),
        cmocka_unit_test(test_enqueue_bad_buffers),
        cmocka_unit_test(test_enqueue_bad_sizes_and_wait_list),
        cmocka_unit_test(test_enqueue_mask_ndim_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
