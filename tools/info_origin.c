/* The tuning file the plan reads, and where each of its choices came from (plan.c records it). */
#define _POSIX_C_SOURCE 200809L
#include "info_origin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tuning_file_find(tuning_file *t) {
    memset(t, 0, sizeof *t);
    if (!mhfa_plan_tuning_file(t->path, sizeof t->path)) return;
    const char *env = getenv("MHFA_TUNING_FILE");
    t->named_by = env && env[0] ? "MHFA_TUNING_FILE" : "the cache folder";
    FILE *f = fopen(t->path, "r");
    t->readable = f != NULL;
    if (f) fclose(f);
}

void tuning_file_words(const tuning_file *t, char *text, size_t size) {
    if (t->readable)
        snprintf(text, size, "%s (%s)", t->path, t->named_by);
    else if (t->path[0] && strcmp(t->named_by, "MHFA_TUNING_FILE") == 0)
        snprintf(text, size, "none: MHFA_TUNING_FILE=%s cannot be read", t->path);
    else if (t->path[0])
        snprintf(text, size, "none (no %s)", t->path);
    else
        snprintf(text, size, "none: MHFA_TUNING_FILE unset and the cache folder off");
}

static plan_origin origin_of(mhfa_plan_source source) {
    return source == MHFA_FROM_TUNING_FILE ? ORIGIN_TUNING_FILE : ORIGIN_TABLE;
}

void plan_origins_find(const mhfa_plan *plan, plan_origins *o) {
    o->projection = origin_of(plan->projection.source);
    o->flash = origin_of(plan->flash.source);
    o->flash_masked = origin_of(plan->flash_masked.source);
    o->manual = origin_of(plan->manual.source);
    o->decode = origin_of(plan->decode_source);
    o->absorbed = origin_of(plan->absorbed_source);
}

const char *plan_origin_name(plan_origin origin) {
    return origin == ORIGIN_TABLE         ? "built-in table"
           : origin == ORIGIN_TUNING_FILE ? "tuning file"
                                          : NULL;
}
