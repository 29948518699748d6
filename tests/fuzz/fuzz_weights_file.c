/* Fuzz target: any bytes as a weights file, read as mhfa_module_load reads it for a fixed module
 * and as mhfa_module_create_from_file reads it, without a device. Every input must end in a status
 * (with a message) and no read outside the file, no leak, no undefined behaviour: built with
 * libFuzzer and sanitizers (-DMHFA_FUZZ=ON), or replayed over the corpus by replay.c in ctest. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A context that only holds messages: the reader touches nothing else of it. */
static void read_as_both(const char *path, const char *prefix) {
    mhfa_context ctx;
    memset(&ctx, 0, sizeof ctx);
    mhfa_host_weights w;
    mhfa_config cfg = mhfa_config_default(2, 3, 4);
    if (mhfa_weights_file_read(&ctx, path, prefix, 0, &cfg, &w) == MHFA_SUCCESS)
        mhfa_host_weights_free(&w);
    else if (!mhfa_context_error_message(&ctx)[0])
        abort(); /* a failure without a message */
    mhfa_config from_file;
    if (mhfa_weights_file_read(&ctx, path, prefix, 1, &from_file, &w) == MHFA_SUCCESS) {
        if (from_file.n_heads <= 0 || from_file.embed_dim % from_file.n_heads != 0) abort();
        mhfa_host_weights_free(&w);
    }
    mhfa_release_message(&ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/mhfa-fuzz-%ld.safetensors", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t written = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || written != size) return 0;
    read_as_both(path, "");
    read_as_both(path, "encoder.layers.1.attn.");
    remove(path);
    return 0;
}
