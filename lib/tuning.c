/* The tuning file: tile sizes measured best on a device (tools/mhfa-tune writes it). Found at
 * MHFA_TUNING_FILE, else tuning.txt in the cache folder. One setting per line, fields split by '|':
 *   DEVICE | projection | tiled TILE_M TILE_N TILE_K WPT_M WPT_N
 *   DEVICE | projection | vector ROWS_PER_ITEM [VECTORS of 16 columns, default 1]
 *   DEVICE | projection | clblast
 *   DEVICE | projection | mma TILE_K WARPS_M WARPS_N WM WN  (project_mma.cl, tensor cores;
 *                                                     TILE_K a multiple of 16)
 *   DEVICE | flash | HEAD_DIM | BLOCK_Q BLOCK_K      (attention_tiled.cl)
 *   DEVICE | flash | HEAD_DIM | vector BLOCK_K       (attention_vector.cl)
 *   DEVICE | flash | HEAD_DIM | mma WARPS BLOCK_K    (attention_mma.cl, tensor cores)
 *   DEVICE | flash | HEAD_DIM | wide BLOCK_Q TILE_KEYS (attention_wide.cl: few keys; both
 *                                                     multiples of 32)
 *   Any attention line may end in "rows": Q, K, V rows-major for that kernel (ROWS_LAYOUT in
 *   common.cl) where the tiled or mma projection makes them, instead of the per-head layout.
 *   DEVICE | flash masked | HEAD_DIM | ...           (any of the three, for forwards with a mask
 *                                                     on the flash path; default: the flash line)
 *   DEVICE | manual | HEAD_DIM | BLOCK_Q BLOCK_K     (or vector BLOCK_K, or wide BLOCK_Q TILE_KEYS:
 *                                                     the manual path, weights stored; default:
 *                                                     the flash line)
 *   DEVICE | decode | CHUNK                          (attention_decode.cl: keys per work-item)
 *   DEVICE | absorbed | GROUP KEYS                   (attention_absorbed.cl, where it pays)
 *   DEVICE | absorbed | always [GROUP KEYS]          (for every forward it fits: tests)
 *   DEVICE | absorbed | off
 * DEVICE is the device's exact name or *, HEAD_DIM a number or *; '#' starts a comment. The first
 * matching line of each kind wins, then the built-in table below. Lines that do not parse are
 * skipped: a bad file can only leave the built-in choices in place, and the kernels' limits are
 * checked again when they are built. */
#include "internal.h"

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

static int positive(int v) {
    return v > 0 && v <= 4096;
}

static void parse_projection(const char *value, mhfa_tuning *t) {
    int a[5];
    if (t->projection_kind) return;
    if (sscanf(value, "tiled %d %d %d %d %d", &a[0], &a[1], &a[2], &a[3], &a[4]) == 5) {
        for (int i = 0; i < 5; i++)
            if (!positive(a[i])) return;
        if (a[0] % a[3] || a[1] % a[4]) return;
        t->projection_kind = MHFA_PROJECTION_TILED;
        memcpy(t->tiled, a, sizeof a);
    } else if (sscanf(value, "mma %d %d %d %d %d", &a[0], &a[1], &a[2], &a[3], &a[4]) == 5) {
        for (int i = 0; i < 5; i++)
            if (!positive(a[i])) return;
        if (a[0] % 16 || a[3] % 16 || a[4] % 8) return;
        t->projection_kind = MHFA_PROJECTION_MMA;
        memcpy(t->mma, a, sizeof a);
    } else if (strcmp(value, "clblast") == 0) {
        t->projection_kind = MHFA_PROJECTION_CLBLAST;
    } else if (sscanf(value, "vector %d", &a[0]) == 1 && positive(a[0]) && a[0] <= 64) {
        if (sscanf(value, "vector %d %d", &a[0], &a[1]) < 2) a[1] = 1;
        if (a[1] != 1 && a[1] != 2 && a[1] != 4) return; /* PoCL 3.1 crashed on 3 */
        t->projection_kind = MHFA_PROJECTION_VECTOR;
        t->rows_per_item = a[0];
        t->vectors = a[1];
    }
}

static void parse_flash(const char *head_dim, const char *value, int want, mhfa_flash_tuning *t) {
    int q, k;
    if (t->block_q) return;
    if (strcmp(head_dim, "*") != 0 && atoi(head_dim) != want) return;
    if (sscanf(value, "mma %d %d", &q, &k) == 2 && positive(q) && q <= 32 && positive(k) &&
        k % 8 == 0) {
        t->mma = 1;
        t->block_q = q;
        t->block_k = k;
    } else if (sscanf(value, "wide %d %d", &q, &k) == 2 && positive(q) && q % 32 == 0 &&
               positive(k) && k % 32 == 0) {
        t->wide = 1;
        t->block_q = q;
        t->block_k = k;
    } else if (sscanf(value, "vector %d", &k) == 1 && positive(k) && k <= 256) {
        t->vector = 1;
        t->block_q = 16;
        t->block_k = k;
    } else if (sscanf(value, "%d %d", &q, &k) == 2 && positive(q) && positive(k)) {
        t->block_q = q;
        t->block_k = k;
    }
    size_t len = strlen(value); /* a line that does not parse leaves t as it was */
    if (t->block_q) t->rows = len > 5 && strcmp(value + len - 5, " rows") == 0;
}

static void parse_absorbed(const char *value, mhfa_tuning *t) {
    int group = 0, keys = 0, always = strncmp(value, "always", 6) == 0;
    if (t->absorbed_mode || t->absorbed_group) return;
    if (strcmp(value, "off") == 0) {
        t->absorbed_mode = MHFA_ABSORBED_OFF;
        return;
    }
    int n = sscanf(always ? value + 6 : value, "%d %d", &group, &keys);
    if (n == 2 && positive(group) && positive(keys)) {
        t->absorbed_group = group;
        t->absorbed_keys = keys;
    } else if (!(always && n <= 0)) {
        return;
    }
    if (always) t->absorbed_mode = MHFA_ABSORBED_ALWAYS;
}

static FILE *open_tuning_file(void) {
    const char *path = getenv("MHFA_TUNING_FILE");
    if (path && path[0]) return fopen(path, "r");
    char dir[4000], file[4100];
    if (!mhfa_cache_dir(dir, sizeof dir)) return NULL;
    snprintf(file, sizeof file, "%s/tuning.txt", dir);
    return fopen(file, "r");
}

/* Built in, for devices measured with tools/mhfa-tune and mhfa-bench (BENCHMARKS.md): the same
 * format, but the device field is a case-insensitive part of the name. Used where the tuning file
 * says nothing; other devices get choices derived from their limits (module_kernels.c). The H100
 * takes the H200's lines: the same GH100 processor, with slower memory (not measured here). */
static const char builtin_table[] = "NVIDIA H200 | projection | mma 16 2 2 32 32\n"
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
                                    "avx512 | flash | 64 | vector 64\n";

/* Applies one line (comment already cut) if it is about this device. */
static void apply_line(char *line, const char *device, int by_part, int head_dim, mhfa_tuning *t) {
    char *fields[4];
    int n = split(line, fields, 4);
    if (n < 3) return;
    int ours =
        strcmp(fields[0], "*") == 0 ||
        (by_part ? mhfa_contains_ignoring_case(device, fields[0]) : strcmp(fields[0], device) == 0);
    if (!ours) return;
    if (n == 3 && strcmp(fields[1], "projection") == 0) parse_projection(fields[2], t);
    if (n == 3 && strcmp(fields[1], "decode") == 0 && !t->decode_chunk) {
        int chunk = atoi(fields[2]);
        if (positive(chunk)) t->decode_chunk = chunk;
    }
    if (n == 3 && strcmp(fields[1], "absorbed") == 0) parse_absorbed(fields[2], t);
    if (n == 4 && strcmp(fields[1], "flash") == 0)
        parse_flash(fields[2], fields[3], head_dim, &t->flash);
    if (n == 4 && strcmp(fields[1], "flash masked") == 0)
        parse_flash(fields[2], fields[3], head_dim, &t->flash_masked);
    if (n == 4 && strcmp(fields[1], "manual") == 0)
        parse_flash(fields[2], fields[3], head_dim, &t->manual);
}

void mhfa_tuning_lookup(const mhfa_context *ctx, int head_dim, mhfa_tuning *t) {
    memset(t, 0, sizeof *t);
    char line[512];
    FILE *f = open_tuning_file();
    if (f) {
        while (fgets(line, sizeof line, f)) {
            char *hash = strchr(line, '#');
            if (hash) *hash = '\0';
            apply_line(line, ctx->info.device_name, 0, head_dim, t);
        }
        fclose(f);
    }
    for (const char *p = builtin_table; *p;) {
        size_t len = strcspn(p, "\n");
        if (len < sizeof line) {
            memcpy(line, p, len);
            line[len] = '\0';
            apply_line(line, ctx->info.device_name, 1, head_dim, t);
        }
        p += len + (p[len] == '\n');
    }
}
