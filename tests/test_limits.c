/* Limits: forwards too large for the device are refused before anything is allocated, with the
 * size asked and the limit in the message; nothing is written past the outputs, on the host or on
 * the device; a NaN or infinity in an input row gives NaN in the rows it reaches and changes no
 * other row (docs/semantics.md, "Non-finite inputs"). ctest runs it with each variant. */
#include "support.h"

#include "internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 4, NQ = 9, NK = 40, DIN = 12, E = 16, H = 4, CANARY = 64 };
#define OUT_SIZE  (B * NQ * E)
#define CANARY_AT 0xC3u /* a byte pattern no forward writes */

typedef struct problem {
    float *weight[4], *bias[4];
    float q[B * NQ * DIN], h[B * NK * DIN];
    unsigned char mask[B * NK];
} problem;

static mhfa_module *make_problem(mhfa_context *ctx, test_rng *rng, int store, problem *p) {
    test_case c = {B, NQ, NK, DIN, E, H, 1, 0, store, 0, 0, 0, 1.0, 0.0f, MHFA_FLOAT32, 0, 0};
    mhfa_module *m = make_module(ctx, &c, rng, p->weight, p->bias);
    fill_normal(rng, p->q, B * NQ * DIN, 1.0);
    fill_normal(rng, p->h, B * NK * DIN, 1.0);
    for (int i = 0; i < B * NK; i++)
        p->mask[i] = rng_uniform(rng) < 0.3;
    return m;
}

static size_t held_bytes(const mhfa_module *m) {
    size_t bytes = 0;
    assert_int_equal(mhfa_module_device_bytes(m, &bytes), MHFA_SUCCESS);
    return bytes;
}

static void assert_message_has(mhfa_context *ctx, const char *part) {
    const char *message = mhfa_context_error_message(ctx);
    if (!strstr(message, part)) fail_msg("message \"%s\" does not name \"%s\"", message, part);
}

static void assert_untouched(const unsigned char *bytes, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (bytes[i] != CANARY_AT) fail_msg("%s: byte %zu was written", what, i);
}

/* A module whose first forward of these sizes must allocate: one with only its weights. */
static void refused_before_allocation(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_context *ctx = test_context();
    problem p;
    mhfa_module *m = make_problem(ctx, &rng, 1, &p);
    float out[OUT_SIZE];
    memset(out, CANARY_AT, sizeof out);
    const size_t before = held_bytes(m);
    const mhfa_device_info saved = ctx->info;

    /* The stored weights, B * H * NQ * NK floats, are the largest buffer. */
    ctx->info.max_alloc_size = sizeof(float) * B * H * NQ * NK - 1;
    assert_int_equal(mhfa_forward(m, B, NQ, NK, p.q, p.h, NULL, out), MHFA_ERROR_OUT_OF_MEMORY);
    assert_message_has(ctx, "CL_DEVICE_MAX_MEM_ALLOC_SIZE");
    assert_message_has(ctx, "23040 bytes"); /* 4 * 4 * 9 * 40 floats */
    assert_message_has(ctx, "23039 bytes");
    assert_int_equal(held_bytes(m), before);
    assert_untouched((const unsigned char *)out, sizeof out, "out after a refused forward");
    ctx->info = saved;

    ctx->info.global_mem_size = before + 1000;
    assert_int_equal(mhfa_forward(m, B, NQ, NK, p.q, p.h, NULL, out), MHFA_ERROR_OUT_OF_MEMORY);
    assert_message_has(ctx, "CL_DEVICE_GLOBAL_MEM_SIZE");
    assert_int_equal(held_bytes(m), before);
    assert_untouched((const unsigned char *)out, sizeof out, "out after a refused forward");
    ctx->info = saved;

    /* The same forward once the limits are the device's own. */
    assert_int_equal(mhfa_forward(m, B, NQ, NK, p.q, p.h, NULL, out), MHFA_SUCCESS);
    mhfa_module_destroy(m);
    free_weights(p.weight, p.bias);
}

/* Sizes whose element or byte counts overflow are refused with the sizes in the message, before
 * the (far too small) arrays are read. */
static void overflowing_shapes(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_context *ctx = test_context();
    problem p;
    mhfa_module *m = make_problem(ctx, &rng, 1, &p);
    float out[OUT_SIZE];
    const int shapes[][3] = {{INT_MAX, INT_MAX, INT_MAX},
                             {1, 1, INT_MAX},
                             {INT_MAX, 1, 1},
                             {65536, 65536, 2},
                             {1 << 20, 64, 64}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        mhfa_status s =
            mhfa_forward(m, shapes[i][0], shapes[i][1], shapes[i][2], p.q, p.h, NULL, out);
        if (s != MHFA_ERROR_INVALID_SHAPE && s != MHFA_ERROR_OUT_OF_MEMORY)
            fail_msg("shape %d x %d x %d: status %d (%s)", shapes[i][0], shapes[i][1], shapes[i][2],
                     (int)s, mhfa_context_error_message(ctx));
        char sizes[64];
        snprintf(sizes, sizeof sizes, "%d", shapes[i][0]);
        assert_message_has(ctx, sizes);
    }
    mhfa_module_destroy(m);
    free_weights(p.weight, p.bias);
}

/* Nothing past the host outputs: out, the stored weights and the stored mask. */
static void host_canaries(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_context *ctx = test_context();
    problem p;
    mhfa_module *m = make_problem(ctx, &rng, 1, &p);
    const mhfa_mask mask = {p.mask, 2, {B, NK, 0, 0}};
    float *out = checked_malloc(sizeof(float) * (OUT_SIZE + CANARY));
    memset(out, CANARY_AT, sizeof(float) * (OUT_SIZE + CANARY));
    assert_int_equal(mhfa_forward(m, B, NQ, NK, p.q, p.h, &mask, out), MHFA_SUCCESS);
    assert_untouched((const unsigned char *)(out + OUT_SIZE), sizeof(float) * CANARY, "past out");

    const size_t n_weights = (size_t)B * H * NQ * NK;
    float *weights = checked_malloc(sizeof(float) * (n_weights + CANARY));
    memset(weights, CANARY_AT, sizeof(float) * (n_weights + CANARY));
    int dims[4];
    assert_int_equal(mhfa_module_last_attention(m, dims, weights, n_weights), MHFA_SUCCESS);
    assert_untouched((const unsigned char *)(weights + n_weights), sizeof(float) * CANARY,
                     "past the stored weights");
    unsigned char stored_mask[B * NK + CANARY];
    memset(stored_mask, CANARY_AT, sizeof stored_mask);
    int ndim;
    assert_int_equal(mhfa_module_last_mask(m, &ndim, dims, stored_mask, B * NK), MHFA_SUCCESS);
    assert_untouched(stored_mask + B * NK, CANARY, "past the stored mask");
    assert_memory_equal(stored_mask, p.mask, B * NK);
    free(weights);
    free(out);
    mhfa_module_destroy(m);
    free_weights(p.weight, p.bias);
}

static cl_mem buffer_with_canary(cl_context cl, size_t bytes, const void *data) {
    cl_int err;
    cl_mem mem = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes + CANARY, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    unsigned char *fill = checked_malloc(bytes + CANARY);
    memset(fill, CANARY_AT, bytes + CANARY);
    if (data) memcpy(fill, data, bytes);
    cl_command_queue queue = mhfa_context_queue(test_context());
    assert_int_equal(
        clEnqueueWriteBuffer(queue, mem, CL_TRUE, 0, bytes + CANARY, fill, 0, NULL, NULL),
        CL_SUCCESS);
    free(fill);
    return mem;
}

static void assert_canary_in(cl_mem mem, size_t bytes, const void *data, const char *what) {
    unsigned char *back = checked_malloc(bytes + CANARY);
    cl_command_queue queue = mhfa_context_queue(test_context());
    assert_int_equal(
        clEnqueueReadBuffer(queue, mem, CL_TRUE, 0, bytes + CANARY, back, 0, NULL, NULL),
        CL_SUCCESS);
    if (data && memcmp(back, data, bytes) != 0) fail_msg("%s: the input was changed", what);
    assert_untouched(back + bytes, CANARY, what);
    free(back);
}

/* Nothing past the application's device buffers, and the inputs unchanged. */
static void device_canaries(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_context *ctx = test_context();
    problem p;
    for (int store = 0; store < 2; store++) {
        mhfa_module *m = make_problem(ctx, &rng, store, &p);
        cl_context cl = mhfa_context_cl_context(ctx);
        cl_mem q = buffer_with_canary(cl, sizeof p.q, p.q);
        cl_mem h = buffer_with_canary(cl, sizeof p.h, p.h);
        cl_mem mask_mem = buffer_with_canary(cl, sizeof p.mask, p.mask);
        cl_mem out = buffer_with_canary(cl, sizeof(float) * OUT_SIZE, NULL);
        const mhfa_mask_buffer mask = {mask_mem, 2, {B, NK, 0, 0}};
        assert_int_equal(mhfa_forward_enqueue(m, B, NQ, NK, q, h, &mask, out, 0, NULL, NULL),
                         MHFA_SUCCESS);
        assert_int_equal(clFinish(mhfa_context_queue(ctx)), CL_SUCCESS);
        assert_canary_in(q, sizeof p.q, p.q, "q");
        assert_canary_in(h, sizeof p.h, p.h, "h");
        assert_canary_in(mask_mem, sizeof p.mask, p.mask, "mask");
        assert_canary_in(out, sizeof(float) * OUT_SIZE, NULL, "out");
        clReleaseMemObject(q);
        clReleaseMemObject(h);
        clReleaseMemObject(mask_mem);
        clReleaseMemObject(out);
        mhfa_module_destroy(m);
        free_weights(p.weight, p.bias);
    }
}

static int row_all_nan(const float *out, int row) {
    for (int c = 0; c < E; c++)
        if (!isnan(out[row * E + c])) return 0;
    return 1;
}

/* One bad element in a query row, then in a key row (cross-attention, both paths, with and
 * without a mask, many queries and one): the rows it reaches are NaN, every other row is bitwise
 * the clean output. */
static void bad_rows(mhfa_context *ctx, test_rng *rng, int store, int masked, int nq, float bad) {
    problem p;
    mhfa_module *m = make_problem(ctx, rng, store, &p);
    const mhfa_mask mask = {p.mask, 2, {B, NK, 0, 0}};
    const mhfa_mask *use_mask = masked ? &mask : NULL;
    float clean[OUT_SIZE], out[OUT_SIZE];
    const int rows = B * nq;
    assert_int_equal(mhfa_forward(m, B, nq, NK, p.q, p.h, use_mask, clean), MHFA_SUCCESS);

    const int bad_row = nq + nq / 2; /* batch element 1 */
    const float kept = p.q[bad_row * DIN + 5];
    p.q[bad_row * DIN + 5] = bad;
    assert_int_equal(mhfa_forward(m, B, nq, NK, p.q, p.h, use_mask, out), MHFA_SUCCESS);
    p.q[bad_row * DIN + 5] = kept;
    if (!row_all_nan(out, bad_row))
        fail_msg("store %d, mask %d, n_query %d, %g in a query row: its output is not NaN", store,
                 masked, nq, (double)bad);
    for (int r = 0; r < rows; r++)
        if (r != bad_row && memcmp(out + r * E, clean + r * E, sizeof(float) * E))
            fail_msg("store %d, mask %d, n_query %d: a bad query row changed row %d", store, masked,
                     nq, r);

    /* The first key of batch element 2 that the mask leaves (its keys before it masked, so that
     * nothing attendable precedes it). */
    int key = 0;
    while (masked && key < NK - 1 && p.mask[2 * NK + key])
        key++;
    p.mask[2 * NK + key] = 0;
    assert_int_equal(mhfa_forward(m, B, nq, NK, p.q, p.h, use_mask, clean), MHFA_SUCCESS);
    p.h[(2 * NK + key) * DIN + 7] = bad;
    assert_int_equal(mhfa_forward(m, B, nq, NK, p.q, p.h, use_mask, out), MHFA_SUCCESS);
    for (int r = 0; r < rows; r++) {
        const int reached = r / nq == 2;
        if (reached && !row_all_nan(out, r))
            fail_msg("store %d, mask %d, n_query %d, %g in key %d: row %d is not NaN", store,
                     masked, nq, (double)bad, key, r);
        if (!reached && memcmp(out + r * E, clean + r * E, sizeof(float) * E))
            fail_msg("store %d, mask %d, n_query %d: a bad key row changed row %d", store, masked,
                     nq, r);
    }
    mhfa_module_destroy(m);
    free_weights(p.weight, p.bias);
}

static void non_finite_inputs(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed());
    mhfa_context *ctx = test_context();
    const float bad_values[2] = {NAN, INFINITY};
    const int n_queries[2] = {NQ, 1};
    for (int store = 0; store < 2; store++)
        for (int masked = 0; masked < 2; masked++)
            for (int n = 0; n < 2; n++)
                for (int v = 0; v < 2; v++)
                    bad_rows(ctx, &rng, store, masked, n_queries[n], bad_values[v]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_before_allocation),
        cmocka_unit_test(overflowing_shapes),
        cmocka_unit_test(host_canaries),
        cmocka_unit_test(device_canaries),
        cmocka_unit_test(non_finite_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
