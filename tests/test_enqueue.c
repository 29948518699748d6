/* The forward on the application's buffers: wait lists and events, the application's own queue
 * (in order and out of order), and the attention_fn replacement core. */
#include "support.h"

#include "internal.h"
#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, NQ = 13, NK = 21, DIN = 12, E = 16, H = 4 };

typedef struct problem {
    float *q, *h, *weight[4], *bias[4];
    unsigned char mask[B * NK];
    double ref[B * NQ * E];
} problem;

/* Whether the plan sends a forward of these sizes (no mask) to the absorbed kernel. */
static int takes_absorbed(const mhfa_module *m, int n_query, int graph_size) {
    return mhfa_plan_for_forward(m, n_query, graph_size, 0, 0).route == MHFA_ROUTE_ABSORBED;
}

static void make_problem(test_rng *rng, problem *p) {
    p->q = checked_malloc(sizeof(float) * B * NQ * DIN);
    p->h = checked_malloc(sizeof(float) * B * NK * DIN);
    fill_normal(rng, p->q, B * NQ * DIN, 1.0);
    fill_normal(rng, p->h, B * NK * DIN, 1.0);
    for (int i = 0; i < B * NK; i++)
        p->mask[i] = rng_uniform(rng) < 0.3;
}

static void compute_reference(problem *p) {
    ref_problem r = {B,
                     NQ,
                     NK,
                     DIN,
                     E,
                     H,
                     {p->weight[0], p->weight[1], p->weight[2], p->weight[3]},
                     {p->bias[0], p->bias[1], p->bias[2], p->bias[3]},
                     p->q,
                     p->h,
                     p->mask,
                     2,
                     {B, NK},
                     0.0f,
                     0,
                     0,
                     MHFA_FLOAT32};
    assert_int_equal(ref_forward(&r, p->ref, NULL, NULL), 0);
}

static cl_mem buffer_with(cl_context cl, size_t bytes, const void *data) {
    cl_int err;
    cl_mem mem =
        clCreateBuffer(cl, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, (void *)data, &err);
    assert_int_equal(err, CL_SUCCESS);
    return mem;
}

/* Runs the forward on buffers of the given queue, gated by a user event, and checks the result. */
static void forward_on_queue(cl_command_queue queue, test_rng *rng) {
    mhfa_context *ctx = NULL;
    if (mhfa_context_create_from_queue(queue, &ctx) != MHFA_SUCCESS)
        fail_msg("create_from_queue: %s", mhfa_last_create_error());
    assert_ptr_equal(mhfa_context_queue(ctx), queue);
    problem p;
    make_problem(rng, &p);
    test_case c = {B, NQ, NK, DIN, E, H, 1, 0, 0, 0, 0, 0, 1.0, 0.0f, MHFA_FLOAT32, 0, 0};
    mhfa_module *m = make_module(ctx, &c, rng, p.weight, p.bias);
    compute_reference(&p);

    cl_context cl = mhfa_context_cl_context(ctx);
    float poisoned[B * NQ * E], out[B * NQ * E];
    poison(poisoned, B * NQ * E);
    cl_mem q = buffer_with(cl, sizeof(float) * B * NQ * DIN, p.q);
    cl_mem h = buffer_with(cl, sizeof(float) * B * NK * DIN, p.h);
    cl_mem mask = buffer_with(cl, sizeof p.mask, p.mask);
    cl_mem out_mem = buffer_with(cl, sizeof poisoned, poisoned);
    cl_int err;
    cl_event gate = clCreateUserEvent(cl, &err), done = NULL;
    assert_int_equal(err, CL_SUCCESS);
    mhfa_mask_buffer mask_desc = {mask, 2, {B, NK, 0, 0}};
    mhfa_status s = mhfa_forward_enqueue(m, B, NQ, NK, q, h, &mask_desc, out_mem, 1, &gate, &done);
    if (s != MHFA_SUCCESS) fail_msg("forward_enqueue: %s", mhfa_context_error_message(ctx));
    assert_non_null(done);

    /* Nothing may run before the gate opens. */
    cl_int state;
    clFlush(queue);
    assert_int_equal(
        clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof state, &state, NULL),
        CL_SUCCESS);
    assert_true(state != CL_COMPLETE);
    assert_int_equal(clSetUserEventStatus(gate, CL_COMPLETE), CL_SUCCESS);
    assert_int_equal(clWaitForEvents(1, &done), CL_SUCCESS);
    assert_int_equal(
        clEnqueueReadBuffer(queue, out_mem, CL_TRUE, 0, sizeof out, out, 1, &done, NULL),
        CL_SUCCESS);
    assert_close(out, p.ref, B * NQ * E, "forward_enqueue");

    clReleaseEvent(done);
    clReleaseEvent(gate);
    cl_mem all[4] = {q, h, mask, out_mem};
    for (int i = 0; i < 4; i++)
        clReleaseMemObject(all[i]);
    free_weights(p.weight, p.bias);
    free(p.q);
    free(p.h);
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);
}

static void application_queues(void **state) {
    (void)state;
    test_rng rng;
    rng_init(&rng, test_seed() + 31);
    mhfa_context *base = test_context();
    cl_context cl = mhfa_context_cl_context(base);
    cl_device_id device = mhfa_context_device(base);
    cl_int err;
    cl_command_queue in_order = clCreateCommandQueue(cl, device, 0, &err);
    assert_int_equal(err, CL_SUCCESS);
    forward_on_queue(in_order, &rng);
    clReleaseCommandQueue(in_order);

    cl_command_queue_properties supported = 0;
    clGetDeviceInfo(device, CL_DEVICE_QUEUE_PROPERTIES, sizeof supported, &supported, NULL);
    if (!(supported & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)) {
        print_message("the device has no out-of-order queues: that part is not run\n");
        return;
    }
    cl_command_queue out_of_order =
        clCreateCommandQueue(cl, device, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
    assert_int_equal(err, CL_SUCCESS);
    forward_on_queue(out_of_order, &rng);
    clReleaseCommandQueue(out_of_order);
}

/* A replacement core that attends each query to the key of the same index: out = V. It also
 * reads back the queries it gets, to check their layout. */
typedef struct hook_record {
    int calls;
    mhfa_attention_args args;
    mhfa_status answer;
    float queries[B * NQ * E];
} hook_record;

static mhfa_status copy_values(void *user_data, cl_command_queue queue,
                               const mhfa_attention_args *a) {
    hook_record *record = user_data;
    record->calls++;
    record->args = *a;
    if (record->answer != MHFA_SUCCESS) return record->answer;
    /* the queries, and the values copied out: [B][H][Nq][head_dim] each */
    size_t bytes = sizeof(float) * a->batch * a->n_heads * a->n_query * a->head_dim;
    if (bytes > sizeof record->queries ||
        clEnqueueReadBuffer(queue, a->q, CL_TRUE, 0, bytes, record->queries, 0, NULL, NULL) !=
            CL_SUCCESS)
        return MHFA_ERROR_OPENCL;
    return clEnqueueCopyBuffer(queue, a->v, a->out, 0, 0, bytes, 0, NULL, NULL) == CL_SUCCESS
               ? MHFA_SUCCESS
               : MHFA_ERROR_OPENCL;
}

static void attention_fn_hook(void **state) {
    (void)state;
    mhfa_context *ctx = test_context();
    test_rng rng;
    rng_init(&rng, test_seed() + 32);
    const int n = NQ;
    test_case c = {B, n, n, DIN, E, H, 1, 1, 0, 0, 0, 0, 1.0, 0.0f, MHFA_FLOAT32, 0, 0};
    float *weight[4], *bias[4];
    mhfa_module *plain = make_module(ctx, &c, &rng, weight, bias);
    mhfa_config cfg;
    mhfa_module_get_config(plain, &cfg);
    hook_record record = {0};
    record.answer = MHFA_SUCCESS;
    cfg.attention_fn = copy_values;
    cfg.attention_fn_data = &record;
    mhfa_module *hooked = NULL;
    assert_int_equal(mhfa_module_create(ctx, &cfg, &hooked), MHFA_SUCCESS);
    for (int i = 0; i < 4; i++)
        mhfa_module_set_projection(hooked, i, weight[i], bias[i]);

    float q[B * NQ * DIN], expected[B * NQ * E], out[B * NQ * E];
    fill_normal(&rng, q, B * n * DIN, 1.0);
    /* The built-in core with a mask that leaves only the diagonal computes the same. */
    unsigned char diagonal_only[B * NQ * NQ];
    for (int i = 0; i < B * n * n; i++)
        diagonal_only[i] = (i / n) % n != i % n;
    mhfa_mask diag = {diagonal_only, 3, {B, n, n, 0}};
    assert_int_equal(mhfa_forward(plain, B, n, n, q, NULL, &diag, expected), MHFA_SUCCESS);
    poison(out, B * n * E);
    assert_int_equal(mhfa_forward(hooked, B, n, n, q, NULL, NULL, out), MHFA_SUCCESS);
    double as_double[B * NQ * E];
    for (int i = 0; i < B * n * E; i++)
        as_double[i] = expected[i];
    assert_close(out, as_double, B * n * E, "attention_fn");

    /* The core gets the queries projected, in the per-head layout [B][H][Nq][head_dim]. */
    const int d = E / H;
    double projected[B * NQ * E];
    for (int b = 0; b < B; b++)
        for (int head = 0; head < H; head++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < d; j++) {
                    const int feature = head * d + j;
                    double sum = bias[0][feature];
                    for (int k = 0; k < DIN; k++)
                        sum += (double)q[(b * n + i) * DIN + k] * weight[0][feature * DIN + k];
                    projected[((b * H + head) * n + i) * d + j] = sum;
                }
    assert_close(record.queries, projected, B * n * E, "the queries the core gets");

    const mhfa_attention_args *a = &record.args;
    assert_int_equal(record.calls, 1);
    assert_null(a->keep);
    assert_int_equal(a->batch, B);
    assert_int_equal(a->n_heads, H);
    assert_int_equal(a->n_query, n);
    assert_int_equal(a->graph_size, n);
    assert_int_equal(a->head_dim, E / H);
    assert_true(fabsf(a->scale - 1.0f / sqrtf((float)(E / H))) < 1e-7f);
    assert_true(a->dropout_p == 0.0f);

    /* With a mask the core gets the keep mask and its dims. */
    unsigned char key_mask[B * NQ] = {0};
    mhfa_mask mask2 = {key_mask, 2, {B, n, 0, 0}};
    assert_int_equal(mhfa_forward(hooked, B, n, n, q, NULL, &mask2, out), MHFA_SUCCESS);
    assert_non_null(a->keep);
    int want[4] = {B, 1, 1, n};
    for (int i = 0; i < 4; i++)
        assert_int_equal(a->keep_dims[i], want[i]);

    /* A failing core fails the forward with its status. */
    record.answer = MHFA_ERROR_UNSUPPORTED;
    assert_int_equal(mhfa_forward(hooked, B, n, n, q, NULL, NULL, out), MHFA_ERROR_UNSUPPORTED);
    assert_true(strlen(mhfa_context_error_message(ctx)) > 0);

    free_weights(weight, bias);
    mhfa_module_destroy(plain);
    mhfa_module_destroy(hooked);
}

/* V is kept in the output buffer while that is free (one scratch buffer less), but never when
 * the output is the input itself: a forward in place must still be right. Self-attention with
 * input_dim == embed_dim, first into a separate output, then in place. */
static void output_buffer_as_scratch(void **state) {
    (void)state;
    enum { N = 17, D = 16 };
    mhfa_context *ctx = test_context();
    test_rng rng;
    rng_init(&rng, test_seed() + 31);
    test_case c = {B, N, N, D, D, H, 1, 1, 0, 0, 0, 0, 1.0, 0.0f, MHFA_FLOAT32, 0, 0};
    float *weight[4], *bias[4], q[B * N * D], out[B * N * D];
    mhfa_module *m = make_module(ctx, &c, &rng, weight, bias);
    fill_normal(&rng, q, B * N * D, 1.0);
    double ref[B * N * D];
    ref_problem r = {B,
                     N,
                     N,
                     D,
                     D,
                     H,
                     {weight[0], weight[1], weight[2], weight[3]},
                     {bias[0], bias[1], bias[2], bias[3]},
                     q,
                     NULL,
                     NULL,
                     0,
                     {0},
                     0.0f,
                     0,
                     0,
                     MHFA_FLOAT32};
    assert_int_equal(ref_forward(&r, ref, NULL, NULL), 0);

    cl_context cl = mhfa_context_cl_context(ctx);
    cl_command_queue queue = mhfa_context_queue(ctx);
    poison(out, B * N * D);
    cl_mem q_mem = buffer_with(cl, sizeof q, q), out_mem = buffer_with(cl, sizeof out, out);
    size_t separate = 0, in_place = 0;
    assert_int_equal(mhfa_forward_enqueue(m, B, N, N, q_mem, NULL, NULL, out_mem, 0, NULL, NULL),
                     MHFA_SUCCESS);
    assert_int_equal(
        clEnqueueReadBuffer(queue, out_mem, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL),
        CL_SUCCESS);
    assert_close(out, ref, B * N * D, "separate output");
    assert_int_equal(mhfa_module_device_bytes(m, &separate), MHFA_SUCCESS);

    assert_int_equal(mhfa_forward_enqueue(m, B, N, N, q_mem, NULL, NULL, q_mem, 0, NULL, NULL),
                     MHFA_SUCCESS);
    assert_int_equal(clEnqueueReadBuffer(queue, q_mem, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL),
                     CL_SUCCESS);
    assert_close(out, ref, B * N * D, "in place");
    assert_int_equal(mhfa_module_device_bytes(m, &in_place), MHFA_SUCCESS);
    /* In place, V needed a scratch buffer of its own; before, it did not (unless the absorbed
     * kernel, which needs none, took the separate forward: the absorbed test variant). */
    if (!takes_absorbed(m, N, N)) assert_int_equal(in_place - separate, sizeof(float) * B * N * D);

    clReleaseMemObject(q_mem);
    clReleaseMemObject(out_mem);
    free_weights(weight, bias);
    mhfa_module_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(application_queues),
        cmocka_unit_test(attention_fn_hook),
        cmocka_unit_test(output_buffer_as_scratch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
