/* Soak: cycles of context create, module from a weights file, forwards (both paths, a mask,
 * cross-attention), destroy; resident memory must stay flat. Usage: test_soak [CYCLES [MB]]
 * (default 1000 cycles, at most 8 MiB of growth after the first 50). Prints the resident size
 * every 100 cycles. Also run under valgrind for leaks (tests/CMakeLists.txt). */
#include "mhfa.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 3, NQ = 7, NK = 12, WARM_UP = 50 };

/* Resident set size in KiB, from /proc/self/status (0 where there is none). */
static long resident_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    long kib = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

/* One cycle; returns 0, or prints why and returns 1. */
static int cycle(const char *weights_path, const float *q, const float *h,
                 const unsigned char *mask_data) {
    mhfa_context *ctx = NULL;
    if (mhfa_context_create(NULL, &ctx) != MHFA_SUCCESS) {
        fprintf(stderr, "context: %s\n", mhfa_last_create_error());
        return 1;
    }
    int failed = 0;
    for (int store = 0; store < 2 && !failed; store++) {
        mhfa_module *m = NULL;
        mhfa_config cfg;
        if (mhfa_module_create_from_file(ctx, weights_path, NULL, &m) != MHFA_SUCCESS ||
            mhfa_module_get_config(m, &cfg) != MHFA_SUCCESS) {
            fprintf(stderr, "module: %s\n", mhfa_context_error_message(ctx));
            mhfa_context_destroy(ctx);
            return 1;
        }
        if (store) { /* the manual path: the same weights in a module that stores them */
            mhfa_module *manual = NULL;
            const int widest = cfg.input_dim > cfg.embed_dim ? cfg.input_dim : cfg.embed_dim;
            float *w = malloc(sizeof(float) * (size_t)cfg.embed_dim * widest);
            float *b = malloc(sizeof(float) * (size_t)cfg.embed_dim);
            cfg.store_attn_weights = 1;
            failed = !w || !b || mhfa_module_create(ctx, &cfg, &manual) != MHFA_SUCCESS;
            for (int p = 0; p < 4 && !failed; p++)
                failed =
                    mhfa_module_get_projection(m, (mhfa_projection)p, w, cfg.bias ? b : NULL) ||
                    mhfa_module_set_projection(manual, (mhfa_projection)p, w, cfg.bias ? b : NULL);
            free(w);
            free(b);
            mhfa_module_destroy(m);
            m = manual;
        }
        float out[B * NK * 64];
        const mhfa_mask mask = {mask_data, 2, {B, NK, 0, 0}};
        failed = failed || cfg.embed_dim > 64 || cfg.input_dim > 64 ||
                 mhfa_forward(m, B, NQ, NK, q, h, &mask, out) != MHFA_SUCCESS ||
                 mhfa_forward(m, B, NK, NK, h, NULL, NULL, out) != MHFA_SUCCESS;
        for (int i = 0; i < B * NQ * cfg.embed_dim && !failed; i++)
            failed = !isfinite(out[i]);
        if (failed) fprintf(stderr, "forward: %s\n", mhfa_context_error_message(ctx));
        mhfa_module_destroy(m);
    }
    mhfa_context_destroy(ctx);
    return failed;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_soak WEIGHTS.safetensors [CYCLES [MAX_GROWTH_MIB]]\n");
        return 2;
    }
    const int cycles = argc > 2 ? atoi(argv[2]) : 1000;
    const double max_growth_mib = argc > 3 ? atof(argv[3]) : 8.0;
    /* Inputs for input_dim up to 64, fixed pseudo-random values. */
    static float q[B * NK * 64], h[B * NK * 64];
    static unsigned char mask[B * NK];
    unsigned state = 12345;
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        state = state * 1664525u + 1013904223u;
        q[i] = (float)((state >> 8) % 2001) / 1000.0f - 1.0f;
        h[i] = q[(i * 7) % (sizeof q / sizeof q[0])] * 0.5f;
    }
    for (int i = 0; i < B * NK; i++)
        mask[i] = i % 5 == 1;
    long after_warm_up = 0;
    for (int c = 1; c <= cycles; c++) {
        if (cycle(argv[1], q, h, mask)) {
            fprintf(stderr, "cycle %d failed\n", c);
            return 1;
        }
        if (c == WARM_UP || (c == cycles && cycles < WARM_UP)) after_warm_up = resident_kib();
        if (c % 100 == 0 || c == cycles) printf("cycle %d: resident %ld KiB\n", c, resident_kib());
    }
    const double growth_mib = (double)(resident_kib() - after_warm_up) / 1024.0;
    printf("resident growth after cycle %d: %.2f MiB (limit %.1f)\n",
           cycles < WARM_UP ? cycles : WARM_UP, growth_mib, max_growth_mib);
    return growth_mib > max_growth_mib;
}
