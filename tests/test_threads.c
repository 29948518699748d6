/* What mhfa.h promises about threads, checked: threads that each own a context and its module
 * run forwards at the same time on the same read-only host inputs and get the float64
 * reference's numbers, bitwise the same as one thread alone; a failed mhfa_context_create's
 * message belongs to the thread that made it. Run with 2 and with 8 threads, and under
 * ThreadSanitizer with -DMHFA_SANITIZE=thread. */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#include "support.h"

#include "reference.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 3, NQ = 11, NK = 19, DIN = 12, E = 16, H = 4, FORWARDS = 4, MAX_THREADS = 8 };
#define OUT_SIZE (B * NQ * E)

/* Shared by every thread, read only once the threads start. */
typedef struct shared_inputs {
    float *weight[4], *bias[4];
    float q[B * NQ * DIN], h[B * NK * DIN];
    unsigned char mask[B * NQ * NK];
    double ref[2][OUT_SIZE];     /* [masked] */
    float alone[2][2][OUT_SIZE]; /* [store][masked]: one thread's output, before the others run */
} shared_inputs;

typedef struct worker {
    const shared_inputs *in;
    pthread_barrier_t *failed, *read; /* every thread has failed its create; has read its message */
    int index;
    char problem[256]; /* empty: every check passed */
} worker;

static void record(worker *w, const char *what, const char *detail) {
    if (!w->problem[0])
        snprintf(w->problem, sizeof w->problem, "thread %d: %s: %s", w->index, what, detail);
}

/* SEMANTICS.md's bound, without CMocka (its assertions are not for other threads). */
static int within_bound(const float *out, const double *ref, size_t n) {
    double largest = 1.0, worst = 0.0;
    for (size_t i = 0; i < n; i++)
        largest = fmax(largest, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(out[i])) return 0;
        worst = fmax(worst, fabs(out[i] - ref[i]));
    }
    return worst <= 1e-5 * largest;
}

static mhfa_mask the_mask(const shared_inputs *in) {
    mhfa_mask mask = {in->mask, 3, {B, NQ, NK, 0}};
    return mask;
}

/* A module of the shared weights on ctx, flash or manual path. */
static mhfa_status make_shared_module(mhfa_context *ctx, const shared_inputs *in, int store,
                                      mhfa_module **m) {
    mhfa_config cfg = mhfa_config_default(H, DIN, E);
    cfg.store_attn_weights = store;
    mhfa_status status = mhfa_module_create(ctx, &cfg, m);
    for (int p = 0; p < 4 && status == MHFA_SUCCESS; p++)
        status = mhfa_module_set_projection(*m, (mhfa_projection)p, in->weight[p], in->bias[p]);
    return status;
}

static void *run_worker(void *arg) {
    worker *w = arg;
    const shared_inputs *in = w->in;
    /* First a create that fails, with a spec of this thread's own; its message must survive the
     * other threads' failures. */
    char spec[64], expected[64];
    snprintf(spec, sizeof spec, "no-such-device-%d", w->index);
    snprintf(expected, sizeof expected, "no-such-device-%d\"", w->index);
    mhfa_context *ctx = NULL;
    if (mhfa_context_create(spec, &ctx) == MHFA_SUCCESS) record(w, spec, "matched a device");
    pthread_barrier_wait(w->failed);
    if (!strstr(mhfa_last_create_error(), expected))
        record(w, "create error of another thread", mhfa_last_create_error());
    pthread_barrier_wait(w->read);

    const int store = w->index % 2;
    mhfa_module *m = NULL;
    if (mhfa_context_create(NULL, &ctx) != MHFA_SUCCESS) {
        record(w, "context_create", mhfa_last_create_error());
        return NULL;
    }
    if (make_shared_module(ctx, in, store, &m) != MHFA_SUCCESS)
        record(w, "module", mhfa_context_error_message(ctx));
    const mhfa_mask mask = the_mask(in);
    for (int f = 0; f < FORWARDS && m && !w->problem[0]; f++) {
        const int masked = (f + w->index) % 2;
        float out[OUT_SIZE];
        poison(out, OUT_SIZE);
        if (mhfa_forward(m, B, NQ, NK, in->q, in->h, masked ? &mask : NULL, out) != MHFA_SUCCESS)
            record(w, "forward", mhfa_context_error_message(ctx));
        else if (!within_bound(out, in->ref[masked], OUT_SIZE))
            record(w, "forward", "outside the bound of the float64 reference");
        else if (memcmp(out, in->alone[store][masked], sizeof out) != 0)
            record(w, "forward", "not bitwise equal to the same forward in one thread alone");
    }
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);
    return NULL;
}

static void prepare(shared_inputs *in, test_rng *rng) {
    for (int p = 0; p < 4; p++) {
        const int in_features = p == 3 ? E : DIN;
        in->weight[p] = checked_malloc(sizeof(float) * E * in_features);
        in->bias[p] = checked_malloc(sizeof(float) * E);
        fill_normal(rng, in->weight[p], (size_t)E * in_features, 1.0 / sqrt(in_features));
        fill_normal(rng, in->bias[p], E, 0.1);
    }
    fill_normal(rng, in->q, B * NQ * DIN, 1.0);
    fill_normal(rng, in->h, B * NK * DIN, 1.0);
    for (int i = 0; i < B * NQ * NK; i++)
        in->mask[i] = rng_uniform(rng) < 0.3;
    for (int masked = 0; masked < 2; masked++) {
        ref_problem r = {B,
                         NQ,
                         NK,
                         DIN,
                         E,
                         H,
                         {0},
                         {0},
                         in->q,
                         in->h,
                         masked ? in->mask : NULL,
                         masked ? 3 : 0,
                         {B, NQ, NK, 0},
                         0.0f,
                         0,
                         0,
                         MHFA_FLOAT32};
        for (int p = 0; p < 4; p++)
            r.weight[p] = in->weight[p], r.bias[p] = in->bias[p];
        assert_int_equal(ref_forward(&r, in->ref[masked], NULL, NULL), 0);
    }
    /* The same forwards in this thread alone, each path, to compare the threads' outputs with. */
    mhfa_context *ctx = test_context();
    const mhfa_mask mask = the_mask(in);
    for (int store = 0; store < 2; store++) {
        mhfa_module *m = NULL;
        assert_int_equal(make_shared_module(ctx, in, store, &m), MHFA_SUCCESS);
        for (int masked = 0; masked < 2; masked++) {
            poison(in->alone[store][masked], OUT_SIZE);
            assert_int_equal(mhfa_forward(m, B, NQ, NK, in->q, in->h, masked ? &mask : NULL,
                                          in->alone[store][masked]),
                             MHFA_SUCCESS);
            assert_close(in->alone[store][masked], in->ref[masked], OUT_SIZE, "one thread");
        }
        mhfa_module_destroy(m);
    }
}

static void run_threads(int n_threads) {
    test_rng rng;
    rng_init(&rng, test_seed() + (uint64_t)n_threads);
    shared_inputs *in = checked_malloc(sizeof *in);
    prepare(in, &rng);
    pthread_barrier_t failed, read;
    assert_int_equal(pthread_barrier_init(&failed, NULL, (unsigned)n_threads), 0);
    assert_int_equal(pthread_barrier_init(&read, NULL, (unsigned)n_threads), 0);
    pthread_t threads[MAX_THREADS];
    worker workers[MAX_THREADS];
    for (int i = 0; i < n_threads; i++) {
        workers[i] = (worker){in, &failed, &read, i, ""};
        assert_int_equal(pthread_create(&threads[i], NULL, run_worker, &workers[i]), 0);
    }
    for (int i = 0; i < n_threads; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    for (int i = 0; i < n_threads; i++)
        if (workers[i].problem[0]) fail_msg("%s", workers[i].problem);
    pthread_barrier_destroy(&failed);
    pthread_barrier_destroy(&read);
    free_weights(in->weight, in->bias);
    free(in);
}

static void two_threads(void **state) {
    (void)state;
    run_threads(2);
}

static void eight_threads(void **state) {
    (void)state;
    run_threads(8);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_threads),
        cmocka_unit_test(eight_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
