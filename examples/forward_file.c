/* forward_file: loads a layer from a safetensors weights file (one that mhfa_module_save or
 * tools/export_torch.py wrote, with n_heads in its metadata), runs one self-attention forward on
 * pseudo-random inputs with the last key of each batch element masked out, and prints a checksum
 * of the output.
 *
 *   forward_file WEIGHTS.safetensors [PREFIX]
 *
 * The device is MHFA_DEVICE's, else the first GPU, else the first device. */
#include <mhfa.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { BATCH = 2, N_QUERY = 7 };

/* Uniform in [-1, 1) from a 32-bit linear congruential generator: the same inputs everywhere. */
static float next_uniform(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / 8388608.0f - 1.0f;
}

static int fail(const char *what, mhfa_status s, const mhfa_context *ctx) {
    fprintf(stderr, "forward_file: %s: %s: %s\n", what, mhfa_status_string(s),
            ctx ? mhfa_context_error_message(ctx) : mhfa_last_create_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s WEIGHTS.safetensors [PREFIX]\n", argv[0]);
        return 2;
    }
    mhfa_context *ctx;
    mhfa_status s = mhfa_context_create(NULL, &ctx);
    if (s != MHFA_SUCCESS) return fail("mhfa_context_create", s, NULL);

    int rc = 1;
    mhfa_module *m = NULL;
    float *q = NULL, *out = NULL;
    mhfa_config cfg;
    s = mhfa_module_create_from_file(ctx, argv[1], argc > 2 ? argv[2] : NULL, &m);
    if (s != MHFA_SUCCESS) {
        rc = fail(argv[1], s, ctx);
        goto done;
    }
    mhfa_module_get_config(m, &cfg);

    size_t n_in = (size_t)BATCH * N_QUERY * cfg.input_dim;
    size_t n_out = (size_t)BATCH * N_QUERY * cfg.embed_dim;
    q = malloc(n_in * sizeof *q);
    out = malloc(n_out * sizeof *out);
    if (!q || !out) {
        fprintf(stderr, "forward_file: out of memory\n");
        goto done;
    }
    uint32_t state = 12345u;
    for (size_t i = 0; i < n_in; i++)
        q[i] = next_uniform(&state);
    unsigned char masked[BATCH][N_QUERY] = {{0}}; /* nonzero = that key is masked out */
    for (int b = 0; b < BATCH; b++)
        masked[b][N_QUERY - 1] = 1;
    mhfa_mask mask = {&masked[0][0], 2, {BATCH, N_QUERY}};

    s = mhfa_forward(m, BATCH, N_QUERY, N_QUERY, q, NULL, &mask, out);
    if (s != MHFA_SUCCESS) {
        rc = fail("mhfa_forward", s, ctx);
        goto done;
    }
    double sum = 0.0, sum_abs = 0.0;
    for (size_t i = 0; i < n_out; i++) {
        sum += out[i];
        sum_abs += out[i] < 0.0f ? -out[i] : out[i];
    }
    printf("mhfa %s on %s: n_heads %d input_dim %d embed_dim %d bias %d\n", mhfa_version_string(),
           mhfa_context_device_name(ctx), cfg.n_heads, cfg.input_dim, cfg.embed_dim, cfg.bias);
    printf("out [%d][%d][%d] sum %.9g sum_abs %.9g\n", BATCH, N_QUERY, cfg.embed_dim, sum, sum_abs);
    rc = 0;
done:
    free(q);
    free(out);
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);
    return rc;
}
