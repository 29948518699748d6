/* Fault injection (lib/fault_hook.h, tests/faults.cmake): every host allocation and every OpenCL
 * object creation, program build, enqueue and transfer that context creation, module creation,
 * weights loading and forwards make is failed in turn. Each failed call must return an error
 * with a message, leak no OpenCL object or allocation, and leave what it was to change as it
 * was; the next call must then succeed with the fault-free run's result, bit for bit. A fault
 * the library gets around (the kernel cache, say) must give that result too. The kernel cache is
 * in folders of this test's own: warm, and for module creation also cold (a fresh folder each
 * time, so programs are really built). */
#define _POSIX_C_SOURCE           200809L
#define MHFA_FAULT_HOOK_NO_MACROS /* the test's own calls are not counted */
#include "support.h"

#include "internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WEIGHTS_FILE MHFA_TEST_DATA_DIR "/weights_f32_meta.safetensors"

/* The config of WEIGHTS_FILE: 4 heads of 4, input_dim 12, with biases. */
enum { HEADS = 4, IN_DIM = 12, EMBED = 16, MAX_BATCH = 2, MAX_QUERY = 5, MAX_KEYS = 128 };
static const float DROPOUT = 0.2f;
static const uint64_t DROPOUT_SEED = 1234;

static char warm_dir[64], cold_dir[64];
static float q_data[MAX_BATCH * MAX_QUERY * IN_DIM], h_data[MAX_BATCH * MAX_KEYS * IN_DIM];
static unsigned char mask_data[MAX_BATCH * MAX_QUERY * MAX_KEYS];

/* ---- the sequence driver ---- */

typedef struct sequence sequence;
struct sequence {
    const char *name;
    void (*setup)(sequence *s); /* hook disarmed */
    mhfa_status (*call)(sequence *s);
    void (*failed)(sequence *s);    /* after a failed call: its message, nothing changed */
    void (*succeeded)(sequence *s); /* after a successful call: the result (first: the reference) */
    void (*retry)(sequence *s);     /* after a failed call, disarmed: it succeeds, rightly */
    void (*teardown)(sequence *s);  /* destroys what setup and the calls made */
    mhfa_context *ctx;              /* where the message is (NULL: mhfa_last_create_error) */
    void *data;
    int reference_done;
    unsigned may_get_around; /* kinds (bits) whose faults may be got around: the kernel cache */
};

static const mhfa_fault_kind all_kinds[] = {
    MHFA_FAULT_HOST,   MHFA_FAULT_CONTEXT, MHFA_FAULT_BUFFER,  MHFA_FAULT_PROGRAM,
    MHFA_FAULT_KERNEL, MHFA_FAULT_ENQUEUE, MHFA_FAULT_TRANSFER};

static long total_points, total_recovered;

static void check_message(const sequence *s) {
    const char *message = s->ctx ? mhfa_context_error_message(s->ctx) : mhfa_last_create_error();
    if (!message || !message[0]) fail_msg("%s: a failed call left no message", s->name);
}

/* The live counts, with the context's message reset (a message that could not be allocated is
 * a static text, one allocation fewer). */
static void live_counts(mhfa_context *ctx, long *cl, long *host) {
    if (ctx) mhfa_clear_error(ctx);
    *cl = mhfa_fault_live_cl_objects();
    *host = mhfa_fault_live_host_allocations();
}

static void check_counts(const sequence *s, long cl0, long host0, const char *when) {
    long cl, host;
    live_counts(s->ctx, &cl, &host);
    if (cl != cl0 || host != host0)
        fail_msg("%s (%s): %ld OpenCL objects and %ld host allocations alive, %ld and %ld before",
                 s->name, when, cl, host, cl0, host0);
}

/* Runs the sequence once without faults (the reference, and how many calls of each kind it
 * makes), then once for every call of each kind given, failing that call. */
static void run_sequence(sequence *s, const mhfa_fault_kind *kinds, int n_kinds) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long cl0, host0, calls[MHFA_FAULT_KINDS];
    live_counts(s->ctx, &cl0, &host0);
    s->setup(s);
    mhfa_fault_arm(MHFA_FAULT_HOST, 0);
    mhfa_status status = s->call(s);
    for (int k = 0; k < MHFA_FAULT_KINDS; k++)
        calls[k] = mhfa_fault_calls((mhfa_fault_kind)k);
    if (status != MHFA_SUCCESS)
        fail_msg("%s without faults: %s", s->name,
                 s->ctx ? mhfa_context_error_message(s->ctx) : mhfa_last_create_error());
    s->succeeded(s);
    s->reference_done = 1;
    s->teardown(s);
    check_counts(s, cl0, host0, "without faults");
    long points = 0, recovered = 0;
    const char *verbose_env = getenv("MHFA_FAULT_VERBOSE");
    const int verbose = verbose_env && verbose_env[0] == '1';
    char counts[256] = "";
    for (int i = 0; i < n_kinds; i++) {
        mhfa_fault_kind kind = kinds[i];
        snprintf(counts + strlen(counts), sizeof counts - strlen(counts), "%s%s %ld", i ? ", " : "",
                 mhfa_fault_kind_name(kind), calls[kind]);
        for (long n = 1; n <= calls[kind]; n++) {
            s->setup(s);
            if (s->ctx) mhfa_clear_error(s->ctx); /* the message must be the call's own */
            mhfa_fault_arm(kind, n);
            status = s->call(s);
            int fired = mhfa_fault_fired();
            mhfa_fault_disarm();
            if (!fired)
                fail_msg("%s: %s call %ld of %ld was not reached", s->name,
                         mhfa_fault_kind_name(kind), n, calls[kind]);
            if (verbose) {
                const char *message =
                    s->ctx ? mhfa_context_error_message(s->ctx) : mhfa_last_create_error();
                printf("#   %s %ld: %s: %.160s\n", mhfa_fault_kind_name(kind), n,
                       mhfa_status_string(status), status == MHFA_SUCCESS ? "" : message);
            }
            if (status == MHFA_SUCCESS) {
                if (!(s->may_get_around & 1u << kind))
                    fail_msg("%s: %s call %ld failed but the call succeeded", s->name,
                             mhfa_fault_kind_name(kind), n);
                recovered++;
                s->succeeded(s);
            } else {
                check_message(s);
                s->failed(s);
                s->retry(s);
            }
            s->teardown(s);
            char when[96];
            snprintf(when, sizeof when, "%s call %ld failed", mhfa_fault_kind_name(kind), n);
            check_counts(s, cl0, host0, when);
            points++;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("# %s: %ld fault points (%s), %ld got around, %.1f s\n", s->name, points, counts,
           recovered, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    fflush(stdout);
    total_points += points;
    total_recovered += recovered;
}

/* ---- helpers ---- */

static mhfa_context *new_context(void) {
    mhfa_context *ctx = NULL;
    if (mhfa_context_create(NULL, &ctx) != MHFA_SUCCESS)
        fail_msg("context: %s", mhfa_last_create_error());
    return ctx;
}

static mhfa_config flash_config(void) {
    return mhfa_config_default(HEADS, IN_DIM, EMBED);
}

static mhfa_config manual_config(void) {
    mhfa_config cfg = flash_config();
    cfg.store_attn_weights = 1;
    cfg.attention_dropout = DROPOUT;
    return cfg;
}

/* The application's core: the queries copied as the context, in the queue's order. */
static mhfa_status copy_core(void *data, cl_command_queue queue, const mhfa_attention_args *a) {
    (void)data;
    size_t bytes = (size_t)a->batch * a->n_heads * a->n_query * a->head_dim * sizeof(float);
    cl_int err = clEnqueueCopyBuffer(queue, a->q, a->out, 0, 0, bytes, 0, NULL, NULL);
    return err == CL_SUCCESS ? MHFA_SUCCESS : MHFA_ERROR_OPENCL;
}

static mhfa_config half_config(void) {
    mhfa_config cfg = flash_config();
    cfg.dtype = MHFA_BFLOAT16;
    return cfg;
}

static mhfa_config application_config(void) {
    mhfa_config cfg = flash_config();
    cfg.attention_fn = copy_core;
    return cfg;
}

/* A context on an out-of-order queue of the device's own (the test's references dropped). */
static mhfa_context *new_out_of_order_context(void) {
    mhfa_context *probe = new_context();
    cl_device_id device = mhfa_context_device(probe);
    mhfa_context_destroy(probe);
    cl_int err;
    cl_context cl_ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_command_queue queue =
        clCreateCommandQueue(cl_ctx, device, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
    if (err != CL_SUCCESS) {
        clReleaseContext(cl_ctx);
        return NULL;
    }
    mhfa_context *ctx = NULL;
    if (mhfa_context_create_from_queue(queue, &ctx) != MHFA_SUCCESS)
        fail_msg("context from a queue: %s", mhfa_last_create_error());
    clReleaseCommandQueue(queue);
    clReleaseContext(cl_ctx);
    return ctx;
}

/* Each config's programs, built into the context before the counts are taken. */
static void build_programs(mhfa_context *ctx);

static mhfa_module *new_module(mhfa_context *ctx, const mhfa_config *cfg) {
    mhfa_module *m = NULL;
    if (mhfa_module_create(ctx, cfg, &m) != MHFA_SUCCESS)
        fail_msg("module: %s", mhfa_context_error_message(ctx));
    if (cfg->store_attn_weights) mhfa_module_set_training(m, 1, DROPOUT_SEED);
    return m;
}

static void assert_same_bits(const void *a, const void *b, size_t bytes, const char *name,
                             const char *what) {
    if (memcmp(a, b, bytes) != 0) fail_msg("%s: %s differs from the fault-free run", name, what);
}

enum { CHECK_5 = MAX_BATCH * MAX_QUERY * EMBED, CHECK_OUT = CHECK_5 + MAX_BATCH * EMBED };

/* The forwards that check a module: cross-attention with a 3-D mask for 5 queries, then for one
 * (the absorbed kernel's, on the flash path), on the host. */
static void check_forward(mhfa_module *m, float out[CHECK_OUT]) {
    mhfa_mask mask = {mask_data, 3, {2, 5, 8}};
    memset(out, 0x7f, CHECK_OUT * sizeof(float));
    if (mhfa_forward(m, 2, 5, 8, q_data, h_data, &mask, out) != MHFA_SUCCESS ||
        mhfa_forward(m, 2, 1, 8, q_data, h_data, NULL, out + CHECK_5) != MHFA_SUCCESS)
        fail_msg("check forward: %s", mhfa_context_error_message(m->ctx));
}

/* ---- context creation ---- */

typedef struct context_seq {
    int from_queue;
    cl_context cl_ctx;
    cl_command_queue queue;
    mhfa_context *made;
} context_seq;

static void context_setup(sequence *s) {
    context_seq *c = s->data;
    c->made = NULL;
    s->ctx = NULL;
    if (!c->from_queue) return;
    mhfa_context *probe = new_context();
    cl_device_id device = mhfa_context_device(probe);
    mhfa_context_destroy(probe);
    cl_int err;
    c->cl_ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    c->queue = clCreateCommandQueue(c->cl_ctx, device, 0, &err);
    assert_int_equal(err, CL_SUCCESS);
}

static mhfa_status context_call(sequence *s) {
    context_seq *c = s->data;
    return c->from_queue ? mhfa_context_create_from_queue(c->queue, &c->made)
                         : mhfa_context_create(NULL, &c->made);
}

static void context_failed(sequence *s) {
    context_seq *c = s->data;
    assert_null(c->made);
}

static void context_succeeded(sequence *s) {
    context_seq *c = s->data;
    assert_non_null(c->made);
    assert_string_equal(mhfa_context_error_message(c->made), "");
}

static void context_retry(sequence *s) {
    assert_int_equal(context_call(s), MHFA_SUCCESS);
    context_succeeded(s);
}

static void context_teardown(sequence *s) {
    context_seq *c = s->data;
    mhfa_context_destroy(c->made);
    c->made = NULL;
    if (c->from_queue) {
        clReleaseCommandQueue(c->queue);
        clReleaseContext(c->cl_ctx);
    }
}

static void context_creation(void **state) {
    (void)state;
    context_seq c = {0};
    sequence s = {.name = "context create",
                  .setup = context_setup,
                  .call = context_call,
                  .failed = context_failed,
                  .succeeded = context_succeeded,
                  .retry = context_retry,
                  .teardown = context_teardown,
                  .ctx = NULL,
                  .data = &c};
    run_sequence(&s, all_kinds, MHFA_FAULT_KINDS);
    c.from_queue = 1;
    s.name = "context create from queue";
    run_sequence(&s, all_kinds, MHFA_FAULT_KINDS);
}

/* ---- module creation (and from a file), cold and warm ---- */

typedef struct module_seq {
    mhfa_config cfg;
    int from_file, cold;
    mhfa_module *made;
    float reference[CHECK_OUT];
    int reference_absorbed;
} module_seq;

static void module_setup(sequence *s) {
    module_seq *c = s->data;
    if (c->cold) {
        remove_files_in(cold_dir);
        setenv("MHFA_CACHE_DIR", cold_dir, 1);
    } else {
        setenv("MHFA_CACHE_DIR", warm_dir, 1);
    }
    s->ctx = new_context();
    c->made = NULL;
}

static mhfa_status module_call(sequence *s) {
    module_seq *c = s->data;
    return c->from_file ? mhfa_module_create_from_file(s->ctx, WEIGHTS_FILE, NULL, &c->made)
                        : mhfa_module_create(s->ctx, &c->cfg, &c->made);
}

static void module_failed(sequence *s) {
    assert_null(((module_seq *)s->data)->made);
}

static void module_succeeded(sequence *s) {
    module_seq *c = s->data;
    assert_non_null(c->made);
    if (c->cfg.store_attn_weights) mhfa_module_set_training(c->made, 1, DROPOUT_SEED);
    float out[CHECK_OUT];
    check_forward(c->made, out);
    const int absorbed = c->made->kernels.absorbed != NULL;
    if (!s->reference_done) {
        memcpy(c->reference, out, sizeof out);
        c->reference_absorbed = absorbed;
        return;
    }
    if (absorbed == c->reference_absorbed) {
        assert_same_bits(out, c->reference, sizeof out, s->name, "the forward");
        return;
    }
    /* A failed build of the absorbed kernel is got around without it (absorbed.c): the one-query
     * forward then takes other kernels, whose rounding differs. */
    assert_true(c->reference_absorbed);
    assert_same_bits(out, c->reference, CHECK_5 * sizeof(float), s->name, "the forward");
    double ref[CHECK_OUT - CHECK_5];
    for (int i = 0; i < CHECK_OUT - CHECK_5; i++)
        ref[i] = c->reference[CHECK_5 + i];
    assert_close(out + CHECK_5, ref, CHECK_OUT - CHECK_5, s->name);
}

static void module_retry(sequence *s) {
    if (module_call(s) != MHFA_SUCCESS)
        fail_msg("%s, next call: %s", s->name, mhfa_context_error_message(s->ctx));
    module_succeeded(s);
}

static void module_teardown(sequence *s) {
    module_seq *c = s->data;
    mhfa_module_destroy(c->made);
    c->made = NULL;
    mhfa_context_destroy(s->ctx);
    s->ctx = NULL;
}

static void run_module_sequence(const char *name, const mhfa_config *cfg, int from_file, int cold,
                                const mhfa_fault_kind *kinds, int n_kinds) {
    module_seq c = {*cfg, from_file, cold, NULL, {0}, 0};
    sequence s = {.name = name,
                  .setup = module_setup,
                  .call = module_call,
                  .failed = module_failed,
                  .succeeded = module_succeeded,
                  .retry = module_retry,
                  .teardown = module_teardown,
                  .ctx = NULL,
                  .data = &c,
                  .may_get_around = 1u << MHFA_FAULT_HOST | 1u << MHFA_FAULT_PROGRAM};
    run_sequence(&s, kinds, n_kinds);
}

static void module_creation_warm(void **state) {
    (void)state;
    mhfa_config flash = flash_config(), manual = manual_config();
    run_module_sequence("module create (flash, warm cache)", &flash, 0, 0, all_kinds,
                        MHFA_FAULT_KINDS);
    run_module_sequence("module create (manual, warm cache)", &manual, 0, 0, all_kinds,
                        MHFA_FAULT_KINDS);
    run_module_sequence("module create from file (warm cache)", &flash, 1, 0, all_kinds,
                        MHFA_FAULT_KINDS);
}

/* Cold: a fresh cache folder for every call, so that every program is compiled (and stored). */
static void module_creation_cold(void **state) {
    (void)state;
    mhfa_config flash = flash_config(), manual = manual_config();
    run_module_sequence("module create (flash, cold cache)", &flash, 0, 1, all_kinds,
                        MHFA_FAULT_KINDS);
    run_module_sequence("module create (manual, cold cache)", &manual, 0, 1, all_kinds,
                        MHFA_FAULT_KINDS);
    setenv("MHFA_CACHE_DIR", warm_dir, 1);
}

/* ---- loading weights ---- */

/* What changes the weights: a load, one projection set, new initial values. */
typedef enum weights_op { LOAD, SET_PROJECTION, INIT_PARAMETERS } weights_op;

typedef struct load_seq {
    weights_op op;
    mhfa_module *m;
    float before[CHECK_OUT], reference[CHECK_OUT];
    float *weight[4], *bias[4]; /* the module's before the load */
} load_seq;

static void load_setup(sequence *s) {
    load_seq *c = s->data;
    mhfa_config cfg = flash_config();
    c->m = new_module(s->ctx, &cfg);
    check_forward(c->m, c->before);
    for (int i = 0; i < 4; i++) {
        size_t in = i == MHFA_W_OUT ? EMBED : IN_DIM;
        c->weight[i] = checked_malloc(in * EMBED * sizeof(float));
        c->bias[i] = checked_malloc(EMBED * sizeof(float));
        assert_int_equal(mhfa_module_get_projection(c->m, i, c->weight[i], c->bias[i]),
                         MHFA_SUCCESS);
    }
}

static mhfa_status load_call(sequence *s) {
    load_seq *c = s->data;
    if (c->op == INIT_PARAMETERS) return mhfa_module_init_parameters(c->m, 7);
    if (c->op == LOAD) return mhfa_module_load(c->m, WEIGHTS_FILE, "");
    static float w[EMBED * IN_DIM], b[EMBED]; /* W_key also has a copy as given (absorbed) */
    for (int i = 0; i < EMBED * IN_DIM; i++)
        w[i] = 0.25f * (float)((i * 7919) % 13 - 6) / 6.0f;
    for (int i = 0; i < EMBED; i++)
        b[i] = 0.01f * (float)i;
    return mhfa_module_set_projection(c->m, MHFA_W_KEY, w, b);
}

static void load_failed(sequence *s) {
    load_seq *c = s->data;
    float out[CHECK_OUT];
    check_forward(c->m, out);
    assert_same_bits(out, c->before, sizeof out, s->name, "the forward after a failed load");
    for (int i = 0; i < 4; i++) {
        size_t in = i == MHFA_W_OUT ? EMBED : IN_DIM;
        float w[EMBED * EMBED], b[EMBED];
        assert_int_equal(mhfa_module_get_projection(c->m, i, w, b), MHFA_SUCCESS);
        assert_same_bits(w, c->weight[i], in * EMBED * sizeof(float), s->name, "a weight");
        assert_same_bits(b, c->bias[i], sizeof b, s->name, "a bias");
    }
}

static void load_succeeded(sequence *s) {
    load_seq *c = s->data;
    float out[CHECK_OUT];
    check_forward(c->m, out);
    if (!s->reference_done)
        memcpy(c->reference, out, sizeof out);
    else
        assert_same_bits(out, c->reference, sizeof out, s->name, "the forward after the load");
}

static void load_retry(sequence *s) {
    if (load_call(s) != MHFA_SUCCESS)
        fail_msg("%s, next call: %s", s->name, mhfa_context_error_message(s->ctx));
    load_succeeded(s);
}

static void load_teardown(sequence *s) {
    load_seq *c = s->data;
    mhfa_module_destroy(c->m);
    for (int i = 0; i < 4; i++) {
        free(c->weight[i]);
        free(c->bias[i]);
    }
}

static void cjson_counted(int on) {
    cJSON_Hooks hooks = {mhfa_fault_malloc, mhfa_fault_free};
    cJSON_InitHooks(on ? &hooks : NULL);
}

static void weights_load(void **state) {
    (void)state;
    setenv("MHFA_CACHE_DIR", warm_dir, 1);
    static load_seq c;
    memset(&c, 0, sizeof c);
    sequence s = {.name = "module load",
                  .setup = load_setup,
                  .call = load_call,
                  .failed = load_failed,
                  .succeeded = load_succeeded,
                  .retry = load_retry,
                  .teardown = load_teardown,
                  .ctx = NULL,
                  .data = &c};
    s.ctx = new_context();
    build_programs(s.ctx);
    run_sequence(&s, all_kinds, MHFA_FAULT_KINDS);
    mhfa_context_destroy(s.ctx);
    /* Where the weights' writes are ordered by barriers. */
    s.ctx = new_out_of_order_context();
    if (!s.ctx) return;
    s.name = "module load (out-of-order queue)";
    s.reference_done = 0;
    build_programs(s.ctx);
    run_sequence(&s, all_kinds, MHFA_FAULT_KINDS);
    mhfa_context_destroy(s.ctx);
}

static void weights_set(void **state) {
    (void)state;
    setenv("MHFA_CACHE_DIR", warm_dir, 1);
    static load_seq c;
    memset(&c, 0, sizeof c);
    c.op = SET_PROJECTION;
    sequence s = {.name = "module set_projection (W_key)",
                  .setup = load_setup,
                  .call = load_call,
                  .failed = load_failed,
                  .succeeded = load_succeeded,
                  .retry = load_retry,
                  .teardown = load_teardown,
                  .ctx = new_context(),
                  .data = &c};
    build_programs(s.ctx);
    run_sequence(&s, all_kinds, MHFA_FAULT_KINDS);
    c.op = INIT_PARAMETERS;
    s.name = "module init_parameters";
    s.reference_done = 0;
    run_sequence(&s, all_kinds, MHFA_FAULT_KINDS);
    mhfa_context_destroy(s.ctx);
}

/* ---- saving weights: the file is the old one or the whole new one ---- */

typedef struct save_seq {
    mhfa_module *m;
    char path[128];
    unsigned char *old, *reference;
    size_t old_size, reference_size;
} save_seq;

static unsigned char *read_whole(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = checked_malloc(*size);
    assert_int_equal(fread(bytes, 1, *size, f), *size);
    fclose(f);
    return bytes;
}

static int files_in(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void save_setup(sequence *s) {
    save_seq *c = s->data;
    mhfa_config cfg = flash_config();
    c->m = new_module(s->ctx, &cfg);
    /* An older file at the path, of the initial weights, under another prefix. */
    snprintf(c->path, sizeof c->path, "%s/weights.safetensors", cold_dir);
    assert_int_equal(mhfa_module_save(c->m, c->path, "old."), MHFA_SUCCESS);
    c->old = read_whole(c->path, &c->old_size);
    assert_int_equal(mhfa_module_load(c->m, WEIGHTS_FILE, NULL), MHFA_SUCCESS);
}

static mhfa_status save_call(sequence *s) {
    save_seq *c = s->data;
    return mhfa_module_save(c->m, c->path, "layer.");
}

static void save_failed(sequence *s) {
    save_seq *c = s->data;
    size_t size;
    unsigned char *now = read_whole(c->path, &size);
    assert_int_equal(size, c->old_size);
    assert_same_bits(now, c->old, size, s->name, "the file after a failed save");
    free(now);
    assert_int_equal(files_in(cold_dir), 1); /* no temporary file left */
}

static void save_succeeded(sequence *s) {
    save_seq *c = s->data;
    size_t size;
    unsigned char *now = read_whole(c->path, &size);
    assert_int_equal(files_in(cold_dir), 1);
    if (!s->reference_done) {
        c->reference = now;
        c->reference_size = size;
        return;
    }
    assert_int_equal(size, c->reference_size);
    assert_same_bits(now, c->reference, size, s->name, "the saved file");
    free(now);
}

static void save_retry(sequence *s) {
    if (save_call(s) != MHFA_SUCCESS)
        fail_msg("%s, next call: %s", s->name, mhfa_context_error_message(s->ctx));
    save_succeeded(s);
}

static void save_teardown(sequence *s) {
    save_seq *c = s->data;
    mhfa_module_destroy(c->m);
    free(c->old);
    remove(c->path);
}

static void weights_save(void **state) {
    (void)state;
    setenv("MHFA_CACHE_DIR", warm_dir, 1);
    remove_files_in(cold_dir);
    save_seq c;
    memset(&c, 0, sizeof c);
    sequence s = {.name = "module save",
                  .setup = save_setup,
                  .call = save_call,
                  .failed = save_failed,
                  .succeeded = save_succeeded,
                  .retry = save_retry,
                  .teardown = save_teardown,
                  .ctx = new_context(),
                  .data = &c};
    build_programs(s.ctx);
    run_sequence(&s, all_kinds, MHFA_FAULT_KINDS);
    free(c.reference);
    mhfa_context_destroy(s.ctx);
}

/* ---- forwards ---- */

enum { FLASH, MANUAL, APPLICATION, HALF }; /* the attention core (HALF: flash, bfloat16) */

typedef struct forward_case {
    const char *name;
    int core, enqueue;
    int in_place;     /* enqueued with out the same buffer as q */
    int out_of_order; /* on a context made from an out-of-order queue */
    int wait_list;    /* enqueued after an event */
    int batch, n_query, graph_size, cross, mask_ndim;
    mhfa_attention_route route; /* the one the plan must take: its calls are the ones counted */
} forward_case;

static const forward_case forward_cases[] = {
    {"forward flash self", FLASH, .batch = 2, 5, 5, 0, 0, MHFA_ROUTE_KERNEL},
    {"forward flash cross, 3-D mask", FLASH, .batch = 2, 5, 8, 1, 3, MHFA_ROUTE_KERNEL},
    {"forward flash one query (absorbed), 2-D mask", FLASH, .batch = 2, 1, 8, 1, 2,
     MHFA_ROUTE_ABSORBED},
    {"enqueue flash cross, 2-D mask", FLASH, 1, .batch = 2, 5, 8, 1, 2, MHFA_ROUTE_KERNEL},
    {"enqueue flash in place (decode)", FLASH, 1, 1, .batch = 1, 2, 128, 1, 0, MHFA_ROUTE_DECODE},
    {"forward manual self, 2-D mask, dropout", MANUAL, .batch = 2, 5, 5, 0, 2, MHFA_ROUTE_KERNEL},
    {"enqueue manual cross, 3-D mask, dropout", MANUAL, 1, .batch = 2, 5, 8, 1, 3,
     MHFA_ROUTE_KERNEL},
    {"forward application core, 2-D mask", APPLICATION, .batch = 2, 5, 8, 1, 2,
     MHFA_ROUTE_APPLICATION},
    {"forward bfloat16 cross, 3-D mask", HALF, .batch = 2, 5, 8, 1, 3, MHFA_ROUTE_KERNEL},
    {"out-of-order: forward flash cross, 3-D mask", FLASH, .out_of_order = 1, .batch = 2, 5, 8, 1,
     3, MHFA_ROUTE_KERNEL},
    {"out-of-order: enqueue flash after an event, 2-D mask", FLASH, 1, .out_of_order = 1, 1,
     .batch = 2, 5, 8, 1, 2, MHFA_ROUTE_KERNEL},
    {"out-of-order: enqueue manual self, 2-D mask, dropout", MANUAL, 1, .out_of_order = 1,
     .batch = 2, 5, 5, 0, 2, MHFA_ROUTE_KERNEL},
    {"out-of-order: enqueue application core after an event", APPLICATION, 1, .out_of_order = 1, 1,
     .batch = 2, 5, 8, 1, 3, MHFA_ROUTE_APPLICATION},
};

enum { MAX_WEIGHTS = MAX_BATCH * HEADS * MAX_QUERY * MAX_KEYS };

typedef struct attention_state { /* what mhfa_module_last_attention and _last_mask give */
    mhfa_status status, mask_status;
    int dims[4], mask_ndim, mask_dims[4];
    float weights[MAX_WEIGHTS];
    unsigned char mask[MAX_BATCH * MAX_QUERY * MAX_KEYS];
} attention_state;

typedef struct forward_seq {
    const forward_case *fc;
    mhfa_module *m;
    mhfa_mask mask;
    cl_mem q, h, mask_buffer, out; /* the enqueue's, the test's own */
    cl_event event, wait;          /* wait: a marker of the test's own */
    float out_host[CHECK_OUT], sentinel[CHECK_OUT], reference[CHECK_OUT];
    size_t out_floats;
    attention_state before, after, reference_attention;
} forward_seq;

static void read_attention(const forward_seq *c, attention_state *a) {
    memset(a, 0, sizeof *a);
    a->status = mhfa_module_last_attention(c->m, a->dims, a->weights, MAX_WEIGHTS);
    a->mask_status =
        mhfa_module_last_mask(c->m, &a->mask_ndim, a->mask_dims, a->mask, sizeof a->mask);
}

static cl_mem test_buffer(mhfa_context *ctx, size_t bytes, const void *data) {
    cl_int err;
    cl_mem mem = clCreateBuffer(mhfa_context_cl_context(ctx), CL_MEM_READ_WRITE, bytes, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    if (data)
        assert_int_equal(clEnqueueWriteBuffer(mhfa_context_queue(ctx), mem, CL_TRUE, 0, bytes, data,
                                              0, NULL, NULL),
                         CL_SUCCESS);
    return mem;
}

static size_t q_bytes(const forward_case *fc) {
    return (size_t)fc->batch * fc->n_query * IN_DIM * sizeof(float);
}

static size_t h_bytes(const forward_case *fc) {
    return (size_t)fc->batch * fc->graph_size * IN_DIM * sizeof(float);
}

static size_t mask_bytes(const forward_seq *c) {
    size_t n = 1;
    for (int i = 0; i < c->mask.ndim; i++)
        n *= (size_t)c->mask.dims[i];
    return c->mask.ndim ? n : 0;
}

static void forward_setup(sequence *s) {
    forward_seq *c = s->data;
    const forward_case *fc = c->fc;
    mhfa_config cfg = fc->core == MANUAL        ? manual_config()
                      : fc->core == APPLICATION ? application_config()
                      : fc->core == HALF        ? half_config()
                                                : flash_config();
    c->m = new_module(s->ctx, &cfg);
    /* A smaller forward first: the module then has scratch to grow and (manual path) stored
     * attention that a failed forward must leave. */
    float small_out[2 * EMBED];
    if (mhfa_forward(c->m, 1, 2, 2, q_data, NULL, NULL, small_out) != MHFA_SUCCESS)
        fail_msg("first forward: %s", mhfa_context_error_message(s->ctx));
    read_attention(c, &c->before);
    const int *d = (const int[3]){fc->batch, fc->n_query, fc->graph_size};
    c->mask = (mhfa_mask){mask_data, fc->mask_ndim, {0}};
    if (fc->mask_ndim == 2) c->mask.dims[0] = d[0], c->mask.dims[1] = d[2];
    if (fc->mask_ndim == 3) c->mask.dims[0] = d[0], c->mask.dims[1] = d[1], c->mask.dims[2] = d[2];
    assert_int_equal(
        mhfa_plan_for_forward(c->m, fc->n_query, fc->graph_size, fc->mask_ndim != 0, fc->in_place)
            .route,
        fc->route);
    c->out_floats = (size_t)fc->batch * fc->n_query * EMBED;
    memset(c->sentinel, 0x7f, sizeof c->sentinel);
    memcpy(c->out_host, c->sentinel, sizeof c->out_host);
    c->event = NULL;
    if (!fc->enqueue) return;
    size_t out_bytes = c->out_floats * sizeof(float);
    size_t qb = q_bytes(fc) > out_bytes || !fc->in_place ? q_bytes(fc) : out_bytes;
    c->q = test_buffer(s->ctx, qb, NULL);
    assert_int_equal(clEnqueueWriteBuffer(mhfa_context_queue(s->ctx), c->q, CL_TRUE, 0, q_bytes(fc),
                                          q_data, 0, NULL, NULL),
                     CL_SUCCESS);
    c->h = fc->cross ? test_buffer(s->ctx, h_bytes(fc), h_data) : NULL;
    c->mask_buffer = fc->mask_ndim ? test_buffer(s->ctx, mask_bytes(c), mask_data) : NULL;
    c->out = fc->in_place ? c->q : test_buffer(s->ctx, out_bytes, c->sentinel);
    if (fc->wait_list)
        assert_int_equal(clEnqueueMarkerWithWaitList(mhfa_context_queue(s->ctx), 0, NULL, &c->wait),
                         CL_SUCCESS);
}

static mhfa_status forward_call(sequence *s) {
    forward_seq *c = s->data;
    const forward_case *fc = c->fc;
    if (!fc->enqueue)
        return mhfa_forward(c->m, fc->batch, fc->n_query, fc->graph_size, q_data,
                            fc->cross ? h_data : NULL, fc->mask_ndim ? &c->mask : NULL,
                            c->out_host);
    mhfa_mask_buffer mask = {c->mask_buffer, c->mask.ndim, {0}};
    memcpy(mask.dims, c->mask.dims, sizeof mask.dims);
    return mhfa_forward_enqueue(c->m, fc->batch, fc->n_query, fc->graph_size, c->q, c->h,
                                fc->mask_ndim ? &mask : NULL, c->out, fc->wait_list ? 1 : 0,
                                fc->wait_list ? &c->wait : NULL, &c->event);
}

static void assert_buffer_holds(mhfa_context *ctx, cl_mem mem, const void *data, size_t bytes,
                                const char *name, const char *what) {
    unsigned char *copy = checked_malloc(bytes);
    assert_int_equal(
        clEnqueueReadBuffer(mhfa_context_queue(ctx), mem, CL_TRUE, 0, bytes, copy, 0, NULL, NULL),
        CL_SUCCESS);
    assert_same_bits(copy, data, bytes, name, what);
    free(copy);
}

static void assert_same_attention(const attention_state *a, const attention_state *b,
                                  const char *name, const char *what) {
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->mask_status, b->mask_status);
    assert_same_bits(a->dims, b->dims, sizeof a->dims, name, what);
    assert_int_equal(a->mask_ndim, b->mask_ndim);
    size_t n = 1;
    for (int i = 0; i < 4; i++)
        n *= (size_t)a->dims[i];
    if (a->status == MHFA_SUCCESS)
        assert_same_bits(a->weights, b->weights, n * sizeof(float), name, what);
    assert_same_bits(a->mask, b->mask, sizeof a->mask, name, what);
}

static void forward_failed(sequence *s) {
    forward_seq *c = s->data;
    const forward_case *fc = c->fc;
    if (fc->enqueue) {
        /* The application's out may hold what the forward had written (mhfa.h); its inputs and
         * the event are left alone. */
        assert_null(c->event);
        clFinish(mhfa_context_queue(s->ctx));
        if (!fc->in_place)
            assert_buffer_holds(s->ctx, c->q, q_data, q_bytes(fc), s->name, "q after a failure");
        if (c->h) assert_buffer_holds(s->ctx, c->h, h_data, h_bytes(fc), s->name, "h");
        if (c->mask_buffer)
            assert_buffer_holds(s->ctx, c->mask_buffer, mask_data, mask_bytes(c), s->name,
                                "the mask");
        if (fc->in_place)
            assert_int_equal(clEnqueueWriteBuffer(mhfa_context_queue(s->ctx), c->q, CL_TRUE, 0,
                                                  q_bytes(fc), q_data, 0, NULL, NULL),
                             CL_SUCCESS);
    } else {
        assert_same_bits(c->out_host, c->sentinel, sizeof c->out_host, s->name,
                         "out after a failed forward");
    }
    read_attention(c, &c->after);
    assert_same_attention(&c->after, &c->before, s->name, "the stored attention");
}

static void forward_succeeded(sequence *s) {
    forward_seq *c = s->data;
    float out[CHECK_OUT];
    memcpy(out, c->sentinel, sizeof out);
    if (c->fc->enqueue) {
        assert_non_null(c->event);
        assert_int_equal(clWaitForEvents(1, &c->event), CL_SUCCESS);
        assert_int_equal(mhfa_fault_clReleaseEvent(c->event), CL_SUCCESS);
        c->event = NULL;
        assert_int_equal(clEnqueueReadBuffer(mhfa_context_queue(s->ctx), c->out, CL_TRUE, 0,
                                             c->out_floats * sizeof(float), out, 0, NULL, NULL),
                         CL_SUCCESS);
    } else {
        memcpy(out, c->out_host, c->out_floats * sizeof(float));
    }
    read_attention(c, &c->after);
    if (!s->reference_done) {
        memcpy(c->reference, out, sizeof out);
        c->reference_attention = c->after;
        return;
    }
    assert_same_bits(out, c->reference, sizeof out, s->name, "the output");
    assert_same_attention(&c->after, &c->reference_attention, s->name, "the stored attention");
}

static void forward_retry(sequence *s) {
    if (forward_call(s) != MHFA_SUCCESS)
        fail_msg("%s, next call: %s", s->name, mhfa_context_error_message(s->ctx));
    forward_succeeded(s);
}

static void forward_teardown(sequence *s) {
    forward_seq *c = s->data;
    if (c->fc->wait_list) clReleaseEvent(c->wait);
    if (c->fc->enqueue) {
        clReleaseMemObject(c->q);
        if (c->h) clReleaseMemObject(c->h);
        if (c->mask_buffer) clReleaseMemObject(c->mask_buffer);
        if (!c->fc->in_place) clReleaseMemObject(c->out);
    }
    mhfa_module_destroy(c->m);
}

static void forwards(void **state) {
    (void)state;
    setenv("MHFA_CACHE_DIR", warm_dir, 1);
    mhfa_context *in_order = new_context(), *out_of_order = new_out_of_order_context();
    if (!out_of_order) printf("# the device has no out-of-order queues: those cases are skipped\n");
    build_programs(in_order);
    if (out_of_order) build_programs(out_of_order);
    static forward_seq c; /* large: the stored attention, three times */
    for (size_t i = 0; i < sizeof forward_cases / sizeof forward_cases[0]; i++) {
        memset(&c, 0, sizeof c);
        c.fc = &forward_cases[i];
        mhfa_context *ctx = c.fc->out_of_order ? out_of_order : in_order;
        if (!ctx) continue;
        sequence s = {.name = c.fc->name,
                      .setup = forward_setup,
                      .call = forward_call,
                      .failed = forward_failed,
                      .succeeded = forward_succeeded,
                      .retry = forward_retry,
                      .teardown = forward_teardown,
                      .ctx = ctx,
                      .data = &c};
        run_sequence(&s, all_kinds, MHFA_FAULT_KINDS);
    }
    mhfa_context_destroy(in_order);
    mhfa_context_destroy(out_of_order);
}

static void build_programs(mhfa_context *ctx) {
    mhfa_config flash = flash_config(), manual = manual_config(), app = application_config();
    mhfa_config half = half_config();
    mhfa_module_destroy(new_module(ctx, &flash));
    mhfa_module_destroy(new_module(ctx, &manual));
    mhfa_module_destroy(new_module(ctx, &app));
    mhfa_module_destroy(new_module(ctx, &half));
}

static int setup_all(void **state) {
    (void)state;
    unsetenv("MHFA_TUNING_FILE");
    unsetenv("MHFA_KERNEL_DIR");
    snprintf(warm_dir, sizeof warm_dir, "/tmp/mhfa-faults-warm-XXXXXX");
    snprintf(cold_dir, sizeof cold_dir, "/tmp/mhfa-faults-cold-XXXXXX");
    if (!mkdtemp(warm_dir) || !mkdtemp(cold_dir)) return -1;
    setenv("MHFA_CACHE_DIR", warm_dir, 1);
    test_rng rng;
    rng_init(&rng, test_seed());
    fill_normal(&rng, q_data, sizeof q_data / sizeof q_data[0], 1.0);
    fill_normal(&rng, h_data, sizeof h_data / sizeof h_data[0], 1.0);
    for (size_t i = 0; i < sizeof mask_data; i++)
        mask_data[i] = rng_uniform(&rng) < 0.3;
    /* cJSON's allocations (the weights file's header) are counted and failed too. */
    cjson_counted(1);
    /* Fill the warm cache. */
    mhfa_context *ctx = new_context();
    mhfa_config flash = flash_config(), manual = manual_config();
    mhfa_module_destroy(new_module(ctx, &flash));
    mhfa_module_destroy(new_module(ctx, &manual));
    mhfa_context_destroy(ctx);
    return 0;
}

static int teardown_all(void **state) {
    (void)state;
    cjson_counted(0);
    remove_files_in(warm_dir);
    remove_files_in(cold_dir);
    rmdir(warm_dir);
    rmdir(cold_dir);
    printf("# %ld fault points in all, %ld got around\n", total_points, total_recovered);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(context_creation),
        cmocka_unit_test(module_creation_warm),
        cmocka_unit_test(module_creation_cold),
        cmocka_unit_test(weights_load),
        cmocka_unit_test(weights_set),
        cmocka_unit_test(weights_save),
        cmocka_unit_test(forwards),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
