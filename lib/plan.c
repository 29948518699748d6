/* The plan: the one place that decides which kernel runs each stage, with which parameters.
 *
 * Per module (mhfa_plan_lookup): each kind of choice takes the first line that is about the
 * device, from the tuning file (MHFA_TUNING_FILE, else tuning.txt in the cache folder; written by
 * tools/mhfa-tune), then from the built-in table below, whose last rows are generic ones for any
 * CPU or other device, so that every choice is made. One setting per line, fields split by '|':
 *   DEVICE | projection | tiled TILE_M TILE_N TILE_K WPT_M WPT_N
 *   DEVICE | projection | vector ROWS_PER_ITEM [VECTORS of 16 columns, default 1]
 *   DEVICE | projection | clblast
 *   DEVICE | projection | mma TILE_K WARPS_M WARPS_N WM WN  (project_mma.cl, tensor cores;
 *                                                     TILE_K a multiple of 16)
 *   DEVICE | flash | HEAD_DIM | BLOCK_Q BLOCK_K      (attention_tiled.cl)
 *   DEVICE | flash | HEAD_DIM | vector BLOCK_K       (attention_vector.cl)
 *   DEVICE | flash | HEAD_DIM | mma WARPS BLOCK_K [Q_TILES]  (attention_mma.cl, tensor cores;
 *                                                     for half storage attention_mma_half.cl,
 *                                                     Q_TILES tiles of 16 queries a warp, 1-4)
 *   DEVICE | flash | HEAD_DIM | wide BLOCK_Q TILE_KEYS (attention_wide.cl: few keys; both
 *                                                     multiples of 32)
 *   Any attention line may end in "rows": Q, K, V rows-major for that kernel (ROWS_LAYOUT in
 *   common.cl) where the tiled or mma projection makes them, instead of the per-head layout.
 *   DEVICE | flash masked | HEAD_DIM | ...           (any of those, for forwards with a mask on
 *                                                     the flash path; default: the flash line)
 *   DEVICE | manual | HEAD_DIM | BLOCK_Q BLOCK_K     (or vector BLOCK_K, or wide BLOCK_Q TILE_KEYS:
 *                                                     the manual path, weights stored; default:
 *                                                     the flash line)
 *   DEVICE | decode | CHUNK                          (attention_decode.cl: keys per work-item)
 *   DEVICE | absorbed | GROUP KEYS                   (attention_absorbed.cl, where it pays)
 *   DEVICE | absorbed | always [GROUP KEYS]          (for every forward it fits: tests)
 *   DEVICE | absorbed | off
 * Any kind may end in " half" ("flash half", "projection half"): such a line is for half storage
 * only, and half storage takes its lines before the others of the same file or table.
 * DEVICE is the device's exact name (in the table: a case-insensitive part of it), "cpu", "gpu"
 * (any device that is not a CPU) or *; HEAD_DIM a number or *; '#' starts a comment. Lines that
 * do not parse are skipped: a bad file can only leave the built-in choices in place. A choice that
 * does not fit the device when built (work-group limit, local memory) gives way to the fallback:
 * the tiled kernels, sized to the device.
 *
 * Per forward (mhfa_plan_for_forward): the absorbed path where its cost model says it saves work,
 * else the decode kernels for one or two queries against many keys, else the attention kernel
 * built for the path (masked forwards their own where one was chosen). */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

/* Splits line at '|' into at most max trimmed fields; returns how many. */
static int split(char *line, char **fields, int max) {
    int n = 0;
    for (char *p = line; n < max;) {
        char *bar = strchr(p, '|');
        if (bar) *bar = '\0';
        fields[n++] = trim(p);
        if (!bar) break;
        p = bar + 1;
    }
    return n;
}

/* Reads up to max blank-separated decimal numbers from text after the word `word` (NULL: from
 * the start); returns how many, stopping at the first other word, or -1 when the word is not
 * there or a number is beyond int (refused rather than wrapped, as sscanf's %d would). */
static int numbers_after(const char *text, const char *word, int *out, int max) {
    if (word) {
        size_t len = strlen(word);
        if (strncmp(text, word, len) != 0 || (text[len] && text[len] != ' ' && text[len] != '\t'))
            return -1;
        text += len;
    }
    int n = 0;
    while (n < max) {
        while (*text == ' ' || *text == '\t')
            text++;
        int sign = *text == '-' || *text == '+';
        if (!isdigit((unsigned char)text[sign])) break;
        char *end;
        errno = 0;
        long v = strtol(text, &end, 10);
        if (errno == ERANGE || v > INT_MAX || v < INT_MIN) return -1;
        out[n++] = (int)v;
        text = end;
    }
    return n;
}

static int positive(int v) {
    return v > 0 && v <= 4096;
}

static void parse_projection(const char *value, mhfa_projection_choice *c) {
    int a[5];
    if (c->variant) return;
    if (numbers_after(value, "tiled", a, 5) == 5) {
        for (int i = 0; i < 5; i++)
            if (!positive(a[i])) return;
        if (a[0] % a[3] || a[1] % a[4]) return;
        c->variant = MHFA_PROJECT_TILED;
        c->tiled = (mhfa_tiled_tile){a[0], a[1], a[2], a[3], a[4]};
    } else if (numbers_after(value, "mma", a, 5) == 5) {
        for (int i = 0; i < 5; i++)
            if (!positive(a[i])) return;
        if (a[0] % 16 || a[3] % 16 || a[4] % 8) return;
        c->variant = MHFA_PROJECT_MMA;
        c->mma = (mhfa_mma_tile){a[0], a[1], a[2], a[3], a[4]};
    } else if (strcmp(value, "clblast") == 0) {
        c->variant = MHFA_PROJECT_CLBLAST;
    } else if (numbers_after(value, "vector", a, 2) >= 1 && positive(a[0]) && a[0] <= 64) {
        if (numbers_after(value, "vector", a, 2) < 2) a[1] = 1;
        if (a[1] != 1 && a[1] != 2 && a[1] != 4) return; /* PoCL 3.1 crashed on 3 */
        c->variant = MHFA_PROJECT_VECTOR;
        c->vector = (mhfa_vector_tile){a[0], a[1]};
    }
}

static void parse_attention(const char *head_dim, const char *value, int want,
                            mhfa_attention_choice *c) {
    int dim;
    if (c->variant) return;
    if (strcmp(head_dim, "*") != 0 && (numbers_after(head_dim, NULL, &dim, 1) != 1 || dim != want))
        return;
    int v[3];
    int n_mma = numbers_after(value, "mma", v, 3);
    if (n_mma >= 2) {
        if (n_mma == 2) v[2] = 1;
        if (positive(v[0]) && v[0] <= 32 && positive(v[1]) && v[1] % 8 == 0 && v[2] >= 1 &&
            v[2] <= 4)
            *c = (mhfa_attention_choice){
                .variant = MHFA_ATTEND_MMA, .warps = v[0], .block_k = v[1], .q_tiles = v[2]};
    } else if (numbers_after(value, "wide", v, 2) == 2) {
        if (positive(v[0]) && v[0] % 32 == 0 && positive(v[1]) && v[1] % 32 == 0)
            *c = (mhfa_attention_choice){
                .variant = MHFA_ATTEND_WIDE, .block_q = v[0], .tile_keys = v[1]};
    } else if (numbers_after(value, "vector", v, 1) == 1) {
        if (positive(v[0]) && v[0] <= 256)
            *c = (mhfa_attention_choice){.variant = MHFA_ATTEND_VECTOR, .block_k = v[0]};
    } else if (numbers_after(value, NULL, v, 2) == 2 && positive(v[0]) && positive(v[1])) {
        *c =
            (mhfa_attention_choice){.variant = MHFA_ATTEND_TILED, .block_q = v[0], .block_k = v[1]};
    }
    size_t len = strlen(value); /* a line that does not parse leaves c as it was */
    if (c->variant) c->rows = len > 5 && strcmp(value + len - 5, " rows") == 0;
}

/* The first absorbed line decides, except that after a tuning file's "always" without sizes the
 * table's row gives them. */
static void parse_absorbed(const char *value, int from_file, mhfa_plan *p) {
    if (p->absorbed_group || p->absorbed_mode == MHFA_ABSORBED_OFF ||
        (p->absorbed_mode == MHFA_ABSORBED_ALWAYS && from_file))
        return;
    if (strcmp(value, "off") == 0) {
        if (!p->absorbed_mode) p->absorbed_mode = MHFA_ABSORBED_OFF;
        if (from_file) p->absorbed_source = MHFA_FROM_TUNING_FILE;
        return;
    }
    int two[2], always = numbers_after(value, "always", two, 0) == 0;
    int n = numbers_after(value, always ? "always" : NULL, two, 2);
    if (n == 2 && positive(two[0]) && positive(two[1])) {
        p->absorbed_group = two[0];
        p->absorbed_keys = two[1];
    } else if (!(always && n == 0)) {
        return;
    }
    if (always && !p->absorbed_mode) p->absorbed_mode = MHFA_ABSORBED_ALWAYS;
    if (from_file) p->absorbed_source = MHFA_FROM_TUNING_FILE;
}

int mhfa_plan_tuning_file(char *path, size_t size) {
    const char *named = getenv("MHFA_TUNING_FILE");
    char dir[4000];
    if (named && named[0])
        snprintf(path, size, "%s", named);
    else if (mhfa_cache_dir(dir, sizeof dir))
        snprintf(path, size, "%s/tuning.txt", dir);
    else
        return 0;
    return 1;
}

/* Built in: devices measured with tools/mhfa-tune and mhfa-bench (BENCHMARKS.md), then the
 * generic rows every other device takes. The H100 takes the H200's lines: the same GH100
 * processor, with slower memory. The tensor-core projection only where measured faster: on GPUs
 * whose TF32 rate is not well above their float32 rate its three products per multiply-add lose
 * to the tiled kernel. Half storage keeps the tiled kernels there until its tensor-core kernels
 * have been measured on the device (they are chosen by a tuning file's half lines meanwhile). */
static const char builtin_table[] = "NVIDIA H200 | projection half | tiled 128 128 16 8 8\n"
                                    "NVIDIA H200 | flash half | * | 64 32\n"
                                    "NVIDIA H100 | projection half | tiled 128 128 16 8 8\n"
                                    "NVIDIA H100 | flash half | * | 64 32\n"
                                    "NVIDIA H200 | projection | mma 16 2 2 32 32\n"
                                    "NVIDIA H200 | flash | 16 | mma 4 16 rows\n"
                                    "NVIDIA H200 | flash masked | 16 | wide 128 128 rows\n"
                                    "NVIDIA H200 | manual | 16 | wide 128 128 rows\n"
                                    "NVIDIA H200 | flash | 64 | mma 8 16\n"
                                    "NVIDIA H100 | projection | mma 16 2 2 32 32\n"
                                    "NVIDIA H100 | flash | 16 | mma 4 16 rows\n"
                                    "NVIDIA H100 | flash masked | 16 | wide 128 128 rows\n"
                                    "NVIDIA H100 | manual | 16 | wide 128 128 rows\n"
                                    "NVIDIA H100 | flash | 64 | mma 8 16\n"
                                    "avx512 | projection | vector 16\n"
                                    "avx512 | flash | 16 | vector 16\n"
                                    "avx512 | flash | 64 | vector 64\n"
                                    "cpu | projection | vector 8\n"
                                    "gpu | projection | tiled 128 128 16 8 8\n"
                                    "cpu | flash | * | vector 16\n"
                                    "gpu | flash | * | 64 32\n"
                                    "* | decode | 64\n"
                                    "cpu | absorbed | 1 16\n"
                                    "gpu | absorbed | 128 32\n";

/* The tiled attention kernel's K and V tiles take at most this share of local memory, and at
 * most TILED_KV_BYTES_MAX: the rest is left to the runtime and to more groups per unit. */
#define TILED_KV_LOCAL_SHARE 0.5
enum { TILED_KV_BYTES_MAX = 24576, TILED_BLOCK_K_MAX = 32 };

/* Keys per step of the tiled attention kernel that fit the budget above. */
static int tiled_block_k(const mhfa_context *ctx, int head_dim) {
    cl_ulong budget = (cl_ulong)(TILED_KV_LOCAL_SHARE * (double)ctx->info.local_mem_size);
    if (budget > TILED_KV_BYTES_MAX) budget = TILED_KV_BYTES_MAX;
    int block_k = (int)(budget / (2 * sizeof(float) * (size_t)head_dim));
    return block_k > TILED_BLOCK_K_MAX ? TILED_BLOCK_K_MAX : block_k;
}

static int line_is_about(const mhfa_context *ctx, const char *field, int by_part) {
    if (strcmp(field, "*") == 0) return 1;
    if (strcmp(field, "cpu") == 0) return mhfa_is_cpu(ctx);
    if (strcmp(field, "gpu") == 0) return !mhfa_is_cpu(ctx);
    const char *device = ctx->info.device_name;
    return by_part ? mhfa_contains_ignoring_case(device, field) : strcmp(field, device) == 0;
}

/* Whether the kind of a line (its second field) ends in " half", which it then loses. */
static int cut_half(char *kind) {
    size_t len = strlen(kind);
    if (len < 5 || strcmp(kind + len - 5, " half") != 0) return 0;
    kind[len - 5] = '\0';
    return 1;
}

/* Applies one line (comment already cut) if it is about this device and is a half line (its
 * kind ends in " half") exactly when half_lines; from_file: the tuning file's, else the
 * built-in table's (found by a part of the device name). */
static void apply_line(const mhfa_context *ctx, char *line, int from_file, int head_dim,
                       int half_lines, mhfa_plan *p) {
    char *fields[4];
    int n = split(line, fields, 4);
    if (n < 3 || !line_is_about(ctx, fields[0], !from_file)) return;
    if (cut_half(fields[1]) != half_lines) return;
    const mhfa_plan_source source = from_file ? MHFA_FROM_TUNING_FILE : MHFA_FROM_TABLE;
    if (n == 3 && strcmp(fields[1], "projection") == 0 && !p->projection.variant) {
        parse_projection(fields[2], &p->projection);
        if (p->projection.variant) p->projection.source = source;
    }
    if (n == 3 && strcmp(fields[1], "decode") == 0 && !p->decode_chunk) {
        int chunk;
        if (numbers_after(fields[2], NULL, &chunk, 1) == 1 && positive(chunk))
            p->decode_chunk = chunk, p->decode_source = source;
    }
    if (n == 3 && strcmp(fields[1], "absorbed") == 0) parse_absorbed(fields[2], from_file, p);
    mhfa_attention_choice *c = NULL;
    if (n == 4 && strcmp(fields[1], "flash") == 0) c = &p->flash;
    if (n == 4 && strcmp(fields[1], "flash masked") == 0) c = &p->flash_masked;
    if (n == 4 && strcmp(fields[1], "manual") == 0) c = &p->manual;
    if (!c || c->variant) return;
    parse_attention(fields[2], fields[3], head_dim, c);
    if (c->variant) c->source = source;
    /* The table's tiled rows are sized to the device's local memory. */
    if (!from_file && c->variant == MHFA_ATTEND_TILED) {
        int fitting = tiled_block_k(ctx, head_dim);
        if (c->block_k > fitting) c->block_k = fitting;
    }
}

/* The next line of f, without its '\n', whole however long (a piece of a long line, such as a
 * comment's tail, must not pass for a line) into *line, grown as needed; 0 at the end of the
 * file or out of memory. */
static int read_line(FILE *f, char **line, size_t *capacity) {
    size_t used = 0;
    int c = getc(f);
    if (c == EOF) return 0;
    for (;; c = getc(f)) {
        if (used + 1 >= *capacity) {
            size_t grown = *capacity ? 2 * *capacity : 256;
            char *bigger = realloc(*line, grown);
            if (!bigger) return 0;
            *line = bigger;
            *capacity = grown;
        }
        if (c == EOF || c == '\n') break;
        (*line)[used++] = (char)c;
    }
    (*line)[used] = '\0';
    return 1;
}

/* Half storage: CLBlast's SGEMM reads and writes only float32, so it gives way to the tiled or
 * vector projection, whatever the lines said. (The tensor-core kernels have half twins.) */
static void keep_to_half_kernels(const mhfa_context *ctx, mhfa_plan *p) {
    mhfa_projection_choice *c = &p->projection;
    if (c->variant != MHFA_PROJECT_CLBLAST) return;
    mhfa_projection_choice generic = {0};
    if (mhfa_is_cpu(ctx)) {
        generic.variant = MHFA_PROJECT_VECTOR;
        generic.vector = (mhfa_vector_tile){8, 1};
    } else {
        generic.variant = MHFA_PROJECT_TILED;
        mhfa_plan_tiled_fallback(0, &generic.tiled);
    }
    *c = generic;
}

/* Applies the tuning file's lines: the half lines only, or the others. */
static void apply_file_lines(const mhfa_context *ctx, int head_dim, int half_lines, mhfa_plan *p) {
    char path[4200];
    FILE *f = mhfa_plan_tuning_file(path, sizeof path) ? fopen(path, "r") : NULL;
    if (!f) return;
    char *text = NULL;
    size_t capacity = 0;
    while (read_line(f, &text, &capacity)) {
        char *hash = strchr(text, '#');
        if (hash) *hash = '\0';
        apply_line(ctx, text, 1, head_dim, half_lines, p);
    }
    free(text);
    fclose(f);
}

/* The same for the built-in table. */
static void apply_table_lines(const mhfa_context *ctx, int head_dim, int half_lines, mhfa_plan *p) {
    char line[512];
    for (const char *t = builtin_table; *t;) {
        size_t len = strcspn(t, "\n");
        if (len < sizeof line) {
            memcpy(line, t, len);
            line[len] = '\0';
            apply_line(ctx, line, 0, head_dim, half_lines, p);
        }
        t += len + (t[len] == '\n');
    }
}

void mhfa_plan_lookup(const mhfa_context *ctx, int head_dim, mhfa_dtype dtype, mhfa_plan *p) {
    memset(p, 0, sizeof *p);
    /* The tuning file before the table; within each, half storage takes its own lines first. */
    const int half = dtype != MHFA_FLOAT32;
    if (half) apply_file_lines(ctx, head_dim, 1, p);
    apply_file_lines(ctx, head_dim, 0, p);
    if (half) apply_table_lines(ctx, head_dim, 1, p);
    apply_table_lines(ctx, head_dim, 0, p);
    p->fallback = (mhfa_attention_choice){.variant = MHFA_ATTEND_TILED,
                                          .block_q = mhfa_is_cpu(ctx) ? 16 : 64,
                                          .block_k = tiled_block_k(ctx, head_dim)};
    if (half) keep_to_half_kernels(ctx, p);
}

/* Tiled projection sizes, largest first, for where the chosen projection does not fit. */
static const mhfa_tiled_tile tiled_fallbacks[] = {
    {128, 128, 16, 8, 8}, {128, 128, 8, 8, 8}, {64, 64, 8, 4, 4},
    {32, 32, 8, 2, 2},    {16, 16, 8, 1, 1},   {1, 1, 1, 1, 1},
};

int mhfa_plan_tiled_fallback(size_t i, mhfa_tiled_tile *tile) {
    if (i >= sizeof tiled_fallbacks / sizeof tiled_fallbacks[0]) return 0;
    *tile = tiled_fallbacks[i];
    return 1;
}

/* ---- per forward ---- */

/* The decode kernels (MHFA_DECODE_*, plan.h) spread the keys over work-items where the usual
 * kernels would have one or two work-items per head. */

static int absorbed_saves_work(const mhfa_module *m, int n_query, int graph_size) {
    double din = m->cfg.input_dim, e = m->cfg.embed_dim, h = m->cfg.n_heads, d = m->head_dim;
    double nq = n_query, nk = graph_size;
    /* Multiply-adds per batch element: Q, K, V, attention, output; Q, absorbed query, keys,
     * context, output. */
    double usual = nq * din * e + 2.0 * nk * din * e + 2.0 * h * nq * nk * d + nq * e * e;
    double absorbed = nq * (3.0 * din * e + 2.0 * h * nk * din + e * e);
    return MHFA_ABSORBED_MIN_SAVING * absorbed <= usual;
}

mhfa_forward_plan mhfa_plan_for_forward(const mhfa_module *m, int n_query, int graph_size,
                                        int masked, int output_may_alias) {
    const mhfa_config *cfg = &m->cfg;
    const mhfa_kernels *k = &m->kernels;
    mhfa_forward_plan f;
    memset(&f, 0, sizeof f);
    f.clblast = k->projection == MHFA_PROJECT_CLBLAST;
    /* The built-in kernels read the mask as given. The keep mask is made only for an
     * application's core, which is promised it, and for the manual path, which keeps it for
     * mhfa_module_last_attention. */
    int given = !mhfa_uses_application_core(cfg) && !cfg->store_attn_weights;
    f.mask_kind = !masked ? MHFA_MASK_NONE : given ? MHFA_MASK_GIVEN : MHFA_MASK_KEEP;
    /* The absorbed kernel's groups read every key row while others write their output rows. */
    if (k->absorbed && !output_may_alias &&
        (m->plan.absorbed_mode == MHFA_ABSORBED_ALWAYS ||
         absorbed_saves_work(m, n_query, graph_size))) {
        f.route = MHFA_ROUTE_ABSORBED;
        return f;
    }
    if (mhfa_uses_application_core(cfg)) {
        f.route = MHFA_ROUTE_APPLICATION;
        return f;
    }
    if (!cfg->store_attn_weights && k->decode_partial && n_query <= MHFA_DECODE_MAX_QUERIES &&
        graph_size >= MHFA_DECODE_MIN_CHUNKS * m->plan.decode_chunk) {
        f.route = MHFA_ROUTE_DECODE;
        return f;
    }
    f.route = MHFA_ROUTE_KERNEL;
    f.kernel = masked && k->attention_masked.kernel ? &k->attention_masked : &k->attention;
    f.rows_layout = f.kernel->rows_layout;
    return f;
}
