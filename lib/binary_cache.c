/* The disk cache of program binaries. A file per (device, driver, sources, options), named by a
 * hash of them and checked against a second hash on load, its binary against a third (a damaged
 * binary can load and run wrongly); written to a temporary name and renamed, so a reader never
 * sees half a file. Only regular files are read (a FIFO would block). Every failure here is silent:
 * the caller then compiles from source. MHFA_CACHE_DIR picks the folder ("off" disables the cache);
 * by default $XDG_CACHE_HOME/mhfa or ~/.cache/mhfa. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char magic[8] = {'M', 'H', 'F', 'A', 'B', 'I', 'N', '2'};

uint64_t mhfa_hash64(const void *data, size_t size, uint64_t seed) {
    /* FNV-1a, 64 bit, with the seed folded into the offset basis. */
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    const unsigned char *bytes = data;
    for (size_t i = 0; i < size; i++) {
        h ^= bytes[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int make_dirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return (mkdir(buf, 0755) == 0 || errno == EEXIST) ? 0 : -1;
}

int mhfa_cache_dir(char *dir, size_t size) {
    const char *env = getenv("MHFA_CACHE_DIR");
    if (env && strcmp(env, "off") == 0) return 0;
    int n;
    if (env && env[0]) {
        n = snprintf(dir, size, "%s", env);
    } else if ((env = getenv("XDG_CACHE_HOME")) && env[0]) {
        n = snprintf(dir, size, "%s/mhfa", env);
    } else if ((env = getenv("HOME")) && env[0]) {
        n = snprintf(dir, size, "%s/.cache/mhfa", env);
    } else {
        return 0;
    }
    return n > 0 && (size_t)n < size;
}

static int cache_path(const char *key_text, char *path, size_t size, uint64_t *check) {
    char dir[4000];
    if (!mhfa_cache_dir(dir, sizeof dir)) return 0;
    size_t len = strlen(key_text);
    uint64_t name = mhfa_hash64(key_text, len, 0);
    *check = mhfa_hash64(key_text, len, 0x9e3779b97f4a7c15ull);
    int n = snprintf(path, size, "%s/%016llx.bin", dir, (unsigned long long)name);
    return n > 0 && (size_t)n < size;
}

static FILE *open_regular(const char *path) {
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return NULL;
    struct stat info;
    FILE *f = fstat(fd, &info) == 0 && S_ISREG(info.st_mode) ? fdopen(fd, "rb") : NULL;
    if (!f) close(fd);
    return f;
}

cl_program mhfa_binary_cache_load(const mhfa_context *ctx, const char *key_text) {
    char path[4096];
    uint64_t check;
    if (!cache_path(key_text, path, sizeof path, &check)) return NULL;
    FILE *f = open_regular(path);
    if (!f) return NULL;
    char head[8];
    uint64_t stored_check = 0, size = 0, binary_check = 0;
    unsigned char *binary = NULL;
    if (fread(head, 1, 8, f) == 8 && memcmp(head, magic, 8) == 0 &&
        fread(&stored_check, sizeof stored_check, 1, f) == 1 && stored_check == check &&
        fread(&size, sizeof size, 1, f) == 1 && size > 0 && size < (1ull << 31) &&
        fread(&binary_check, sizeof binary_check, 1, f) == 1 && (binary = malloc((size_t)size)) &&
        (fread(binary, 1, (size_t)size, f) != (size_t)size ||
         mhfa_hash64(binary, (size_t)size, 0) != binary_check)) {
        free(binary);
        binary = NULL;
    }
    fclose(f);
    if (!binary) return NULL;
    size_t length = (size_t)size;
    const unsigned char *binaries[1] = {binary};
    cl_int binary_status, err;
    cl_program program = clCreateProgramWithBinary(ctx->cl_ctx, 1, &ctx->device, &length, binaries,
                                                   &binary_status, &err);
    free(binary);
    if (err != CL_SUCCESS || binary_status != CL_SUCCESS) {
        if (program) clReleaseProgram(program);
        return NULL;
    }
    if (clBuildProgram(program, 1, &ctx->device, NULL, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(program);
        return NULL;
    }
    return program;
}

void mhfa_binary_cache_store(const mhfa_context *ctx, const char *key_text, cl_program program) {
    char path[4096], tmp[4160];
    uint64_t check;
    if (!cache_path(key_text, path, sizeof path, &check)) return;
    size_t size = 0;
    if (clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) !=
            CL_SUCCESS ||
        size == 0)
        return;
    unsigned char *binary = malloc(size);
    if (!binary) return;
    unsigned char *binaries[1] = {binary};
    if (clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof binaries, binaries, NULL) !=
        CL_SUCCESS) {
        free(binary);
        return;
    }
    char *slash = strrchr(path, '/');
    *slash = '\0';
    int dir_ok = make_dirs(path) == 0;
    *slash = '/';
    snprintf(tmp, sizeof tmp, "%s.%ld.%p.tmp", path, (long)getpid(), (void *)program);
    FILE *f = dir_ok ? fopen(tmp, "wb") : NULL;
    if (f) {
        uint64_t size64 = size, binary_check = mhfa_hash64(binary, size, 0);
        int ok = fwrite(magic, 1, 8, f) == 8 && fwrite(&check, sizeof check, 1, f) == 1 &&
                 fwrite(&size64, sizeof size64, 1, f) == 1 &&
                 fwrite(&binary_check, sizeof binary_check, 1, f) == 1 &&
                 fwrite(binary, 1, size, f) == size;
        ok = (fclose(f) == 0) && ok;
        if (!ok || rename(tmp, path) != 0) remove(tmp);
    }
    free(binary);
    (void)ctx;
}
