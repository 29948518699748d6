/* Kernel programs: the disk cache of binaries (MHFA_CACHE_DIR), kernel sources read from a folder
 * (MHFA_KERNEL_DIR) with the build log reported when a build fails, and the tuning file. */
#define _POSIX_C_SOURCE 200809L
#include "support.h"

#include "internal.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether the plan sends a forward of these sizes (no mask) to the absorbed kernel. */
static int takes_absorbed(const mhfa_module *m, int n_query, int graph_size) {
    return mhfa_plan_for_forward(m, n_query, graph_size, 0, 0).route == MHFA_ROUTE_ABSORBED;
}

static int count_files(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name), s = strlen(suffix);
        n += len > s && strcmp(e->d_name + len - s, suffix) == 0;
    }
    closedir(d);
    return n;
}

/* Creates a context and a module, runs one small forward; returns the status of module_create. */
static mhfa_status make_and_run(mhfa_context **ctx_out, mhfa_module **m_out) {
    mhfa_context *ctx = NULL;
    if (mhfa_context_create(NULL, &ctx) != MHFA_SUCCESS) fail_msg("%s", mhfa_last_create_error());
    mhfa_config cfg = mhfa_config_default(2, 6, 8);
    mhfa_module *m = NULL;
    mhfa_status s = mhfa_module_create(ctx, &cfg, &m);
    if (s == MHFA_SUCCESS) {
        float q[3 * 6], out[3 * 8];
        test_rng rng;
        rng_init(&rng, test_seed());
        fill_normal(&rng, q, 18, 1.0);
        poison(out, 24);
        assert_int_equal(mhfa_forward(m, 1, 3, 3, q, NULL, NULL, out), MHFA_SUCCESS);
        for (int i = 0; i < 24; i++)
            assert_true(out[i] == out[i]);
    }
    *ctx_out = ctx;
    *m_out = m;
    return s;
}

/* Programs made from a binary have no source text. */
static int all_from_binaries(const mhfa_context *ctx) {
    for (const mhfa_program_entry *e = ctx->programs; e; e = e->next) {
        size_t size = 0;
        clGetProgramInfo(e->program, CL_PROGRAM_SOURCE, 0, NULL, &size);
        if (size > 1) return 0;
    }
    return ctx->programs != NULL;
}

/* One context and module that run; returns whether every program came from the cache. */
static int run_and_check_cached(void) {
    mhfa_context *ctx;
    mhfa_module *m;
    assert_int_equal(make_and_run(&ctx, &m), MHFA_SUCCESS);
    int cached = all_from_binaries(ctx);
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);
    return cached;
}

static void binary_cache(void **state) {
    (void)state;
    char dir[] = "/tmp/mhfa-cache-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("MHFA_CACHE_DIR", dir, 1);
    assert_false(run_and_check_cached());
    assert_true(count_files(dir, ".bin") >= 2);
    assert_int_equal(count_files(dir, ".tmp"), 0);

    /* A new context finds every program in the cache. */
    assert_true(run_and_check_cached());

    /* Files whose header is damaged are ignored and rewritten (other damage:
     * binary_cache_bad_files). */
    DIR *d = opendir(dir);
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r+b");
        fseek(f, 8, SEEK_SET); /* the check of the key, after the 8-byte magic */
        fputs("damaged", f);
        fclose(f);
    }
    closedir(d);
    assert_false(run_and_check_cached());
    assert_true(run_and_check_cached());

    /* "off" writes nothing. */
    remove_files_in(dir);
    setenv("MHFA_CACHE_DIR", "off", 1);
    assert_false(run_and_check_cached());
    assert_int_equal(count_files(dir, ".bin"), 0);
    rmdir(dir);
}

/* ---- cache files that are not what they should be ---- */

enum { MAX_CACHE_FILES = 16 };

static int cache_files(const char *dir, char names[MAX_CACHE_FILES][512]) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < MAX_CACHE_FILES;) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".bin") == 0)
            snprintf(names[n++], 512, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    return n;
}

/* One context and module, a forward of fixed inputs into out; returns whether every program came
 * from the cache. */
static int fixed_forward(float out[24]) {
    mhfa_context *ctx = NULL;
    if (mhfa_context_create(NULL, &ctx) != MHFA_SUCCESS) fail_msg("%s", mhfa_last_create_error());
    mhfa_config cfg = mhfa_config_default(2, 6, 8);
    mhfa_module *m = NULL;
    if (mhfa_module_create(ctx, &cfg, &m) != MHFA_SUCCESS)
        fail_msg("%s", mhfa_context_error_message(ctx));
    float q[3 * 6];
    test_rng rng;
    rng_init(&rng, 42);
    fill_normal(&rng, q, 18, 1.0);
    poison(out, 24);
    assert_int_equal(mhfa_forward(m, 1, 3, 3, q, NULL, NULL, out), MHFA_SUCCESS);
    int cached = all_from_binaries(ctx);
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);
    return cached;
}

typedef enum damage {
    TRUNCATED,     /* cut in the middle of the binary */
    EMPTY,         /* no bytes */
    HEADER_ONLY,   /* cut after the header */
    RANDOM,        /* random bytes throughout */
    RANDOM_BINARY, /* a right header, random bytes after it */
    FLIPPED_BIT,   /* one bit of the binary changed */
    HUGE_SIZE,     /* the header claims more bytes than there are */
    FOREIGN,       /* another program's (another key's) file under this name */
    UNREADABLE,    /* mode 000 (nothing to a root user) */
    DIRECTORY,     /* a folder where the file should be */
    FIFO,          /* a named pipe: reading it would block */
    DAMAGES
} damage;

static const char *const damage_names[DAMAGES] = {
    "truncated", "empty",   "header only", "random",    "random binary", "flipped bit",
    "huge size", "foreign", "unreadable",  "directory", "fifo"};

static void randomize(FILE *f, long from, long to, test_rng *rng) {
    fseek(f, from, SEEK_SET);
    for (long i = from; i < to; i++)
        fputc((int)(rng_next(rng) & 255), f);
}

static void apply_damage(damage d, char names[MAX_CACHE_FILES][512], int n) {
    test_rng rng;
    rng_init(&rng, 7);
    enum { HEADER = 32 }; /* magic, key check, size, binary check */
    if (d == FOREIGN) {   /* each file takes the next one's place */
        char first[600];
        snprintf(first, sizeof first, "%.500s.foreign", names[0]);
        assert_int_equal(rename(names[0], first), 0);
        for (int i = 0; i + 1 < n; i++)
            assert_int_equal(rename(names[i + 1], names[i]), 0);
        assert_int_equal(rename(first, names[n - 1]), 0);
        return;
    }
    for (int i = 0; i < n; i++) {
        struct stat info;
        if (stat(names[i], &info) != 0) fail_msg("%s: %s", damage_names[d], names[i]);
        long size = (long)info.st_size;
        FILE *f = NULL;
        switch (d) {
        case TRUNCATED:
            assert_int_equal(truncate(names[i], HEADER + (size - HEADER) / 2), 0);
            break;
        case EMPTY:
            assert_int_equal(truncate(names[i], 0), 0);
            break;
        case HEADER_ONLY:
            assert_int_equal(truncate(names[i], HEADER), 0);
            break;
        case RANDOM:
        case RANDOM_BINARY:
        case FLIPPED_BIT:
        case HUGE_SIZE:
            assert_non_null(f = fopen(names[i], "r+b"));
            if (d == RANDOM) randomize(f, 0, size, &rng);
            if (d == RANDOM_BINARY) randomize(f, HEADER, size, &rng);
            if (d == FLIPPED_BIT) {
                long at = HEADER + (size - HEADER) / 2;
                fseek(f, at, SEEK_SET);
                int c = fgetc(f);
                fseek(f, at, SEEK_SET);
                fputc(c ^ 0x10, f);
            }
            if (d == HUGE_SIZE) {
                uint64_t huge = (uint64_t)1 << 30;
                fseek(f, 16, SEEK_SET);
                fwrite(&huge, sizeof huge, 1, f);
            }
            fclose(f);
            break;
        case UNREADABLE:
            assert_int_equal(chmod(names[i], 0), 0);
            break;
        case DIRECTORY:
        case FIFO:
            assert_int_equal(remove(names[i]), 0);
            assert_int_equal(d == DIRECTORY ? mkdir(names[i], 0755) : mkfifo(names[i], 0644), 0);
            break;
        default:
            break;
        }
    }
}

/* Every kind of bad cache file is ignored: the programs are compiled, the forward gives the same
 * bits as before, and the file is written anew where it can be (not over a folder). A folder that
 * cannot be written to only keeps the cache from filling. */
static void binary_cache_bad_files(void **state) {
    (void)state;
    unsetenv("MHFA_KERNEL_DIR");
    unsetenv("MHFA_TUNING_FILE");
    char dir[] = "/tmp/mhfa-cache-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("MHFA_CACHE_DIR", dir, 1);
    float reference[24], out[24];
    assert_false(fixed_forward(reference));
    char names[MAX_CACHE_FILES][512];
    const int n = cache_files(dir, names);
    assert_true(n >= 2);
    for (damage d = 0; d < DAMAGES; d++) {
        if (d == UNREADABLE && geteuid() == 0) continue;
        apply_damage(d, names, n);
        int cached = fixed_forward(out);
        if (cached) fail_msg("a %s cache file was used", damage_names[d]);
        assert_memory_equal(out, reference, sizeof out);
        const int replaced = d != DIRECTORY; /* rename() replaces a FIFO, not a folder */
        if (fixed_forward(out) != replaced)
            fail_msg("after a %s cache file, the next run %s the cache", damage_names[d],
                     replaced ? "did not use" : "used");
        assert_memory_equal(out, reference, sizeof out);
        assert_int_equal(count_files(dir, ".tmp"), 0);
        if (!replaced) {
            for (int i = 0; i < n; i++)
                assert_int_equal(remove(names[i]), 0);
            assert_false(fixed_forward(out));
        }
    }

    /* A folder that cannot be written to (root writes anyway), and one that cannot be made. */
    remove_files_in(dir);
    if (geteuid() != 0) {
        assert_int_equal(chmod(dir, 0555), 0);
        assert_false(fixed_forward(out));
        assert_memory_equal(out, reference, sizeof out);
        assert_int_equal(count_files(dir, ".bin") + count_files(dir, ".tmp"), 0);
        assert_int_equal(chmod(dir, 0755), 0);
    }
    char file[600], below[700];
    snprintf(file, sizeof file, "%s/plain-file", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(below, sizeof below, "%s/cache", file);
    setenv("MHFA_CACHE_DIR", below, 1);
    assert_false(fixed_forward(out));
    assert_memory_equal(out, reference, sizeof out);
    remove(file);
    rmdir(dir);
    setenv("MHFA_CACHE_DIR", "off", 1);
}

static void copy_file(const char *from, const char *to, const char *extra_text) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, in)) > 0;)
        fwrite(buf, 1, n, out);
    if (extra_text) fputs(extra_text, out);
    fclose(in);
    fclose(out);
}

static void kernel_dir(void **state) {
    (void)state;
    setenv("MHFA_CACHE_DIR", "off", 1);
    char dir[] = "/tmp/mhfa-kernels-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char from[512], to[512];
    DIR *sources = opendir(MHFA_SOURCE_KERNELS);
    assert_non_null(sources);
    int copied = 0;
    for (struct dirent *e; (e = readdir(sources));) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".cl") != 0) continue;
        snprintf(from, sizeof from, "%s/%s", MHFA_SOURCE_KERNELS, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, e->d_name);
        copy_file(from, to, NULL);
        copied++;
    }
    closedir(sources);
    assert_true(copied >= 5);
    setenv("MHFA_KERNEL_DIR", dir, 1);
    mhfa_context *ctx;
    mhfa_module *m;
    assert_int_equal(make_and_run(&ctx, &m), MHFA_SUCCESS);
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);

    /* A kernel that does not compile: BUILD_FAILED, and the log names the problem. */
    snprintf(from, sizeof from, "%s/common.cl", MHFA_SOURCE_KERNELS);
    snprintf(to, sizeof to, "%s/common.cl", dir);
    copy_file(from, to, "\n__constant int broken = this_is_not_opencl_42;\n");
    assert_int_equal(make_and_run(&ctx, &m), MHFA_ERROR_BUILD_FAILED);
    const char *message = mhfa_context_error_message(ctx);
    assert_non_null(strstr(message, "build log"));
    assert_non_null(strstr(message, "this_is_not_opencl_42"));
    mhfa_context_destroy(ctx);

    /* A folder without the sources: IO. */
    remove_files_in(dir);
    assert_int_equal(make_and_run(&ctx, &m), MHFA_ERROR_IO);
    mhfa_context_destroy(ctx);
    rmdir(dir);
    unsetenv("MHFA_KERNEL_DIR");
}

static mhfa_module *module_with_head_dim_store(mhfa_context *ctx, int head_dim, int store) {
    mhfa_config cfg = mhfa_config_default(2, 5, 2 * head_dim);
    cfg.store_attn_weights = store;
    mhfa_module *m = NULL;
    if (mhfa_module_create(ctx, &cfg, &m) != MHFA_SUCCESS)
        fail_msg("%s", mhfa_context_error_message(ctx));
    return m;
}

static mhfa_module *module_with_head_dim(mhfa_context *ctx, int head_dim) {
    return module_with_head_dim_store(ctx, head_dim, 0);
}

/* The tuning file picks kernels and tile sizes; other devices' lines, other head sizes and lines
 * that do not parse are skipped. */
static void tuning_file(void **state) {
    (void)state;
    setenv("MHFA_CACHE_DIR", "off", 1);
    unsetenv("MHFA_KERNEL_DIR");
    char path[] = "/tmp/mhfa-tuning-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# comment\n"
          "some other device | projection | vector 5\n"
          "* | projection | tiled 0 16 4 4 4\n"
          "* | projection | tiled 32 16 4 4 4  # the first valid line wins\n"
          "* | projection | tiled 64 64 8 4 4\n"
          "* | flash | 16 | 4294967298 5  # past int: refused, not wrapped to 2\n"
          "* | flash | 16 | 8 5\n"
          "* | flash masked | 16 | 4 3\n"
          "* | manual | 4294967312 | 3 3  # no head size 16 in disguise\n"
          "* | manual | 16 | 2 3\n"
          "* | decode | 4294967299\n"
          "* | flash | garbage\n"
          "* | flash | 8 | garbage rows  # skipped whole: no rows-major layout\n"
          "* | absorbed | 4\n"
          "* | absorbed | 4 3\n",
          f);
    fclose(f);
    setenv("MHFA_TUNING_FILE", path, 1);
    mhfa_context *ctx = NULL;
    assert_int_equal(mhfa_context_create(NULL, &ctx), MHFA_SUCCESS);
    mhfa_module *m16 = module_with_head_dim(ctx, 16), *m8 = module_with_head_dim(ctx, 8);
    assert_int_equal(m16->kernels.projection, MHFA_PROJECT_TILED);
    assert_int_equal(m16->kernels.projection_tile[0], 16);
    assert_int_equal(m16->kernels.projection_tile[1], 32);
    assert_int_equal(m16->kernels.projection_local[0], 4);
    assert_int_equal(m16->kernels.projection_local[1], 8);
    assert_int_equal(m16->kernels.attention.block_q, 8);
    assert_int_equal(m16->kernels.attention_masked.block_q, 4); /* masked forwards' own */
    assert_int_equal(m16->plan.decode_source, MHFA_FROM_TABLE);
    assert_true(m8->kernels.attention.block_q != 8); /* no line for head_dim 8 */
    assert_null(m8->kernels.attention_masked.kernel);
    assert_int_equal(m8->kernels.attention.rows_layout, 0);
    assert_non_null(m16->kernels.absorbed);
    assert_int_equal(m16->kernels.absorbed_group, 4);
    assert_int_equal(m16->plan.absorbed_mode, MHFA_ABSORBED_WHEN_CHEAPER);
    mhfa_module_destroy(m16);
    mhfa_module_destroy(m8);
    m16 = module_with_head_dim_store(ctx, 16, 1); /* the manual path's own line */
    assert_int_equal(m16->kernels.attention.block_q, 2);
    assert_null(m16->kernels.attention_masked.kernel); /* flash path only */
    mhfa_module_destroy(m16);

    /* CLBlast, where the library was built with it. */
    f = fopen(path, "w");
    fputs("* | projection | clblast\n", f);
    fclose(f);
    mhfa_module *m = module_with_head_dim(ctx, 4);
    assert_int_equal(m->kernels.projection == MHFA_PROJECT_CLBLAST, mhfa_clblast_available());
    mhfa_module_destroy(m);

    /* The tensor-core projection (emulated where there is no PTX mma): 2 x 1 warps of 16 x 8. */
    f = fopen(path, "w");
    fputs("* | projection | mma 16 2 1 16 8\n", f);
    fclose(f);
    m = module_with_head_dim(ctx, 4);
    assert_int_equal(m->kernels.projection_local[0], 64);
    assert_int_equal(m->kernels.projection_tile[0], 8);
    assert_int_equal(m->kernels.projection_tile[1], 32);
    mhfa_module_destroy(m);

    /* Half lines: for half storage only, and before the others of the file. */
    f = fopen(path, "w");
    fputs("* | flash | 16 | 8 5\n* | flash half | 16 | 4 5\n* | projection half | tiled 32 16 4 4 "
          "4\n",
          f);
    fclose(f);
    mhfa_config cfg = mhfa_config_default(2, 5, 32);
    assert_int_equal(mhfa_module_create(ctx, &cfg, &m), MHFA_SUCCESS);
    assert_int_equal(m->kernels.attention.block_q, 8);
    assert_int_equal(m->plan.projection.source, MHFA_FROM_TABLE);
    mhfa_module_destroy(m);
    cfg.dtype = MHFA_BFLOAT16;
    assert_int_equal(mhfa_module_create(ctx, &cfg, &m), MHFA_SUCCESS);
    assert_int_equal(m->kernels.attention.block_q, 4);
    assert_int_equal(m->kernels.projection, MHFA_PROJECT_TILED);
    assert_int_equal(m->kernels.projection_tile[1], 32);
    assert_int_equal(m->plan.projection.source, MHFA_FROM_TUNING_FILE);
    mhfa_module_destroy(m);

    /* The absorbed kernel: off, or for every forward. */
    f = fopen(path, "w");
    fputs("* | absorbed | off\n* | absorbed | always\n", f);
    fclose(f);
    m = module_with_head_dim(ctx, 4);
    assert_null(m->kernels.absorbed);
    assert_int_equal(takes_absorbed(m, 1, 100), 0);
    mhfa_module_destroy(m);
    f = fopen(path, "w");
    fputs("* | absorbed | always\n", f);
    fclose(f);
    m = module_with_head_dim(ctx, 4);
    assert_int_equal(m->plan.absorbed_mode, MHFA_ABSORBED_ALWAYS);
    assert_int_equal(takes_absorbed(m, 300, 300), 1);
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);
    unsetenv("MHFA_TUNING_FILE");
    remove(path);
}

/* Without a tuning file the absorbed kernel takes the forwards where it saves work: one query
 * against the routing decoder's 100 keys, not the encoder (100 x 100) nor one key. */
static void absorbed_choice(void **state) {
    (void)state;
    setenv("MHFA_CACHE_DIR", "off", 1);
    unsetenv("MHFA_KERNEL_DIR");
    unsetenv("MHFA_TUNING_FILE");
    mhfa_context *ctx = NULL;
    assert_int_equal(mhfa_context_create(NULL, &ctx), MHFA_SUCCESS);
    mhfa_config cfg = mhfa_config_default(8, 128, 128);
    mhfa_module *m = NULL;
    assert_int_equal(mhfa_module_create(ctx, &cfg, &m), MHFA_SUCCESS);
    assert_non_null(m->kernels.absorbed);
    assert_int_equal(takes_absorbed(m, 1, 100), 1);
    assert_int_equal(takes_absorbed(m, 100, 100), 0);
    assert_int_equal(takes_absorbed(m, 1, 1), 0);
    mhfa_module_destroy(m);
    cfg.store_attn_weights = 1; /* the manual path keeps its weights: never absorbed */
    assert_int_equal(mhfa_module_create(ctx, &cfg, &m), MHFA_SUCCESS);
    assert_null(m->kernels.absorbed);
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binary_cache),    cmocka_unit_test(binary_cache_bad_files),
        cmocka_unit_test(kernel_dir),      cmocka_unit_test(tuning_file),
        cmocka_unit_test(absorbed_choice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
