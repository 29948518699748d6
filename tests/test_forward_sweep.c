/* Both paths against the float64 reference over a sweep of shapes: head_dim 1, 3, 16, 64, 128;
 * input_dim not always a multiple of 4 (the projections read runs of 4 only when it is);
 * n_query and graph_size from {1, 7, 63, 64, 65, 129, 300}, mostly unequal; batch 1-3; bias on
 * and off; self- and cross-attention; every mask form, broadcast and fully masked rows; and one
 * case of long sums (4096 keys, 1024 input features).
 * Built twice: STORE_WEIGHTS 0 (flash path) and 1 (manual path, stored weights checked too). */
#include "support.h"

static const int sizes[7] = {1, 7, 63, 64, 65, 129, 300};
static const struct {
    int head_dim, n_heads, input_dim;
} heads[5] = {{1, 3, 5}, {3, 2, 7}, {16, 4, 30}, {64, 2, 100}, {128, 1, 64}};

static void sweep_head_dim(int which) {
    mhfa_context *ctx = test_context();
    test_rng rng;
    rng_init(&rng, test_seed() + 1000u * (unsigned)which + STORE_WEIGHTS);
    static const int mask_forms[4] = {0, 2, 3, 4};
    for (int i = 0; i < 7; i++) {
        test_case c = {0};
        c.n_heads = heads[which].n_heads;
        c.embed_dim = heads[which].head_dim * c.n_heads;
        c.input_dim = heads[which].input_dim;
        c.batch = 1 + i % 3;
        c.n_query = sizes[i];
        c.graph_size = sizes[(i + 2 + which) % 7];
        c.self_attention = i == 3;
        c.bias = (i + which) % 2;
        c.store = STORE_WEIGHTS;
        c.mask_ndim = mask_forms[(i + which) % 4];
        c.broadcast_mask = c.mask_ndim == 4 && i % 2;
        c.fully_masked_rows = c.mask_ndim && i % 3 == 0;
        c.input_scale = 1.0;
        run_case(ctx, &c, &rng);
    }
}

static void head_dim_1(void **state) {
    (void)state;
    sweep_head_dim(0);
}
static void head_dim_3(void **state) {
    (void)state;
    sweep_head_dim(1);
}
static void head_dim_16(void **state) {
    (void)state;
    sweep_head_dim(2);
}
static void head_dim_64(void **state) {
    (void)state;
    sweep_head_dim(3);
}
static void head_dim_128(void **state) {
    (void)state;
    sweep_head_dim(4);
}

/* One case on its own random numbers (seed offset salt). */
static void run_single(const test_case *c, unsigned salt) {
    test_rng rng;
    rng_init(&rng, test_seed() + salt + STORE_WEIGHTS);
    run_case(test_context(), c, &rng);
}

/* The routing shapes users run: E 128, 8 heads, 20-100 nodes, and one query per step. */
static void routing_shapes(void **state) {
    (void)state;
    test_case enc = {4, 20, 20,  128,  128,          8, 1, 1, STORE_WEIGHTS, 3,
                     0, 0,  1.0, 0.0f, MHFA_FLOAT32, 0, 0};
    run_single(&enc, 77);
    test_case dec = {8, 1, 100, 128,  128,          8, 1, 0, STORE_WEIGHTS, 2,
                     0, 0, 1.0, 0.0f, MHFA_FLOAT32, 0, 0};
    run_single(&dec, 78);
}

/* Long sums: 4096 keys and 1024 input features, where a sum whose rounding leans one way (tensor
 * cores truncate their sums) drifts past the tolerance. */
static void long_sums(void **state) {
    (void)state;
    test_case c = {1, 16, 4096, 1024, 64,           1, 1, 0, STORE_WEIGHTS, 0,
                   0, 0,  1.0,  0.0f, MHFA_FLOAT32, 0, 0};
    run_single(&c, 99);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(head_dim_1),   cmocka_unit_test(head_dim_3),
        cmocka_unit_test(head_dim_16),  cmocka_unit_test(head_dim_64),
        cmocka_unit_test(head_dim_128), cmocka_unit_test(routing_shapes),
        cmocka_unit_test(long_sums),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
