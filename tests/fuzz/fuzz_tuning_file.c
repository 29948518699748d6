/* Fuzz target: any text as the tuning file (MHFA_TUNING_FILE, plan.c's line grammar), looked up
 * by mhfa_plan_lookup for a fake device, no device needed. Every lookup must end in a well-formed
 * plan (every choice made, sizes in range, the kernels' divisibility rules kept), a choice the file
 * did not make must be the built-in table's, and comments and the spaces around fields must not
 * matter: the same text with those removed gives the same plan.
 *
 * Input: line 1 describes the device, "cpu|gpu HEAD_DIM LOCAL_KIB NAME..." (missing words take
 * defaults), the rest is the tuning file. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int in_range(int v, int lo, int hi) {
    return v >= lo && v <= hi;
}

static void check_projection(const mhfa_projection_choice *c) {
    const mhfa_tiled_tile *t = &c->tiled;
    const mhfa_mma_tile *m = &c->mma;
    switch (c->variant) {
    case MHFA_PROJECT_TILED:
        if (!in_range(t->tile_m, 1, 4096) || !in_range(t->tile_n, 1, 4096) ||
            !in_range(t->tile_k, 1, 4096) || !in_range(t->wpt_m, 1, 4096) ||
            !in_range(t->wpt_n, 1, 4096) || t->tile_m % t->wpt_m || t->tile_n % t->wpt_n)
            abort();
        break;
    case MHFA_PROJECT_VECTOR:
        if (!in_range(c->vector.rows_per_item, 1, 64) ||
            (c->vector.vectors != 1 && c->vector.vectors != 2 && c->vector.vectors != 4))
            abort();
        break;
    case MHFA_PROJECT_MMA:
        if (!in_range(m->tile_k, 1, 4096) || !in_range(m->warps_m, 1, 4096) ||
            !in_range(m->warps_n, 1, 4096) || !in_range(m->wm, 1, 4096) ||
            !in_range(m->wn, 1, 4096) || m->tile_k % 16 || m->wm % 16 || m->wn % 8)
            abort();
        break;
    case MHFA_PROJECT_CLBLAST:
        break;
    default:
        abort(); /* every lookup chooses a projection */
    }
    if (c->source != MHFA_FROM_TABLE && c->source != MHFA_FROM_TUNING_FILE) abort();
}

/* An attention choice: made (or, where optional, NONE and all zero), its sizes the kernel's. */
static void check_attention(const mhfa_attention_choice *c, int optional) {
    const int from_file = c->source == MHFA_FROM_TUNING_FILE;
    if (c->source != MHFA_FROM_TABLE && !from_file) abort();
    if (c->variant != MHFA_ATTEND_MMA && c->q_tiles) abort(); /* the mma kernel's alone */
    if (c->rows != 0 && c->rows != 1) abort();
    switch (c->variant) {
    case MHFA_ATTEND_NONE:
        if (!optional || c->block_q || c->block_k || c->warps || c->tile_keys || c->rows ||
            c->q_tiles || from_file)
            abort();
        break;
    case MHFA_ATTEND_TILED: /* the table's rows shrink block_k to local memory, maybe to 0 */
        if (!in_range(c->block_q, 1, 4096) || !in_range(c->block_k, from_file ? 1 : 0, 4096) ||
            c->warps || c->tile_keys)
            abort();
        break;
    case MHFA_ATTEND_VECTOR:
        if (!in_range(c->block_k, 1, 256) || c->block_q || c->warps || c->tile_keys) abort();
        break;
    case MHFA_ATTEND_MMA:
        if (!in_range(c->warps, 1, 32) || !in_range(c->block_k, 1, 4096) || c->block_k % 8 ||
            !in_range(c->q_tiles, 1, 4) || c->block_q || c->tile_keys)
            abort();
        break;
    case MHFA_ATTEND_WIDE:
        if (!in_range(c->block_q, 1, 4096) || c->block_q % 32 || !in_range(c->tile_keys, 1, 4096) ||
            c->tile_keys % 32 || c->block_k || c->warps)
            abort();
        break;
    default:
        abort();
    }
}

static void check_plan(const mhfa_context *ctx, const mhfa_plan *p) {
    check_projection(&p->projection);
    check_attention(&p->flash, 0);
    check_attention(&p->flash_masked, 1);
    check_attention(&p->manual, 1);
    if (p->fallback.variant != MHFA_ATTEND_TILED || p->fallback.source != MHFA_FROM_TABLE ||
        p->fallback.block_q != (mhfa_is_cpu(ctx) ? 16 : 64) || p->fallback.block_k < 0)
        abort();
    if (!in_range(p->decode_chunk, 1, 4096)) abort();
    if (p->decode_source != MHFA_FROM_TABLE && p->decode_source != MHFA_FROM_TUNING_FILE) abort();
    if (p->absorbed_mode != MHFA_ABSORBED_WHEN_CHEAPER && p->absorbed_mode != MHFA_ABSORBED_OFF &&
        p->absorbed_mode != MHFA_ABSORBED_ALWAYS)
        abort();
    if (p->absorbed_group || p->absorbed_keys)
        if (!in_range(p->absorbed_group, 1, 4096) || !in_range(p->absorbed_keys, 1, 4096)) abort();
    if (p->absorbed_source != MHFA_FROM_TABLE && p->absorbed_source != MHFA_FROM_TUNING_FILE)
        abort();
}

/* A choice the file did not make is the one the table makes alone (the choices are apart). */
static void check_against_table(const mhfa_plan *p, const mhfa_plan *table) {
    if (p->projection.source == MHFA_FROM_TABLE &&
        memcmp(&p->projection, &table->projection, sizeof p->projection) != 0)
        abort();
    const mhfa_attention_choice *mine[3] = {&p->flash, &p->flash_masked, &p->manual};
    const mhfa_attention_choice *its[3] = {&table->flash, &table->flash_masked, &table->manual};
    for (int i = 0; i < 3; i++)
        if (mine[i]->source == MHFA_FROM_TABLE && memcmp(mine[i], its[i], sizeof *mine[i]) != 0)
            abort();
    if (p->decode_source == MHFA_FROM_TABLE && p->decode_chunk != table->decode_chunk) abort();
}

/* The text with what must not matter taken out: each line's comment (from '#', or from a NUL,
 * which ends the line's text for the reader), the spaces and tabs that start or end it, and those
 * around each '|' (carriage returns before a '|' and at the end are trimmed as well). */
static size_t without_comments(const char *text, size_t size, char *out) {
    size_t n = 0;
    for (size_t start = 0; start < size;) {
        const char *nl = memchr(text + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - text) : size, cut = start;
        while (cut < end && text[cut] != '#' && text[cut] != '\0')
            cut++;
        size_t line_start = n;
        int after_bar = 1; /* at the line's start, as after a bar: drop spaces and tabs */
        for (size_t i = start; i < cut; i++) {
            char c = text[i];
            if (after_bar && (c == ' ' || c == '\t')) continue;
            after_bar = 0;
            if (c == '|') {
                while (n > line_start &&
                       (out[n - 1] == ' ' || out[n - 1] == '\t' || out[n - 1] == '\r'))
                    n--;
                after_bar = 1;
            }
            out[n++] = c;
        }
        while (n > line_start && (out[n - 1] == ' ' || out[n - 1] == '\t' || out[n - 1] == '\r'))
            n--;
        if (nl) out[n++] = '\n';
        start = end + 1;
    }
    return n;
}

static const char *tuning_path(void) {
    static char path[64];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/mhfa-fuzz-tuning-%ld.txt", (long)getpid());
        setenv("MHFA_TUNING_FILE", path, 1);
    }
    return path;
}

static int lookup(const mhfa_context *ctx, int head_dim, mhfa_dtype dtype, const char *text,
                  size_t size, mhfa_plan *plan) {
    FILE *f = fopen(tuning_path(), "wb");
    if (!f) return 0;
    size_t written = fwrite(text, 1, size, f);
    if (fclose(f) != 0 || written != size) return 0;
    mhfa_plan_lookup(ctx, head_dim, dtype, plan);
    return 1;
}

/* Half storage takes no kernel that reads float32 only (CLBlast), whatever the file says. */
static void check_half_plan(const mhfa_plan *p) {
    if (p->projection.variant == MHFA_PROJECT_CLBLAST) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    size_t first = nl ? (size_t)(nl - text) : size;
    char header[300] = "";
    memcpy(header, text, first < sizeof header - 1 ? first : sizeof header - 1);
    const char *file = nl ? nl + 1 : text + size;
    size_t file_size = (size_t)(text + size - file);

    /* A context that only describes its device: the lookup reads nothing else of it. */
    mhfa_context ctx;
    memset(&ctx, 0, sizeof ctx);
    char type[8] = "gpu";
    int head_dim = 16, local_kib = 48, name_at = 0;
    sscanf(header, "%7s %d %d %n", type, &head_dim, &local_kib, &name_at);
    ctx.info.type = strcmp(type, "cpu") == 0 ? CL_DEVICE_TYPE_CPU : CL_DEVICE_TYPE_GPU;
    if (!in_range(head_dim, 1, 65536)) head_dim = 16;
    if (!in_range(local_kib, 0, 1024)) local_kib = 48;
    ctx.info.local_mem_size = (cl_ulong)local_kib * 1024;
    snprintf(ctx.info.device_name, sizeof ctx.info.device_name, "%s", header + name_at);

    mhfa_plan plan, plain, table, half, half_plain;
    char *stripped = malloc(file_size + 1);
    if (!stripped) return 0;
    size_t stripped_size = without_comments(file, file_size, stripped);
    if (lookup(&ctx, head_dim, MHFA_FLOAT32, file, file_size, &plan) &&
        lookup(&ctx, head_dim, MHFA_FLOAT32, stripped, stripped_size, &plain) &&
        lookup(&ctx, head_dim, MHFA_FLOAT32, "", 0, &table) &&
        lookup(&ctx, head_dim, MHFA_BFLOAT16, file, file_size, &half) &&
        lookup(&ctx, head_dim, MHFA_BFLOAT16, stripped, stripped_size, &half_plain)) {
        check_plan(&ctx, &half);
        check_half_plan(&half);
        if (memcmp(&half, &half_plain, sizeof half) != 0) abort();
        check_plan(&ctx, &plan);
        check_plan(&ctx, &table);
        if (memcmp(&plan, &plain, sizeof plan) != 0) abort();
        check_against_table(&plan, &table);
        if (table.projection.source || table.flash.source || table.decode_source ||
            table.absorbed_source)
            abort(); /* an empty file decides nothing */
    }
    free(stripped);
    remove(tuning_path());
    return 0;
}
