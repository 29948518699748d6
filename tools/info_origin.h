/* Where a module's plan came from: the tuning file mhfa_plan_lookup reads (MHFA_TUNING_FILE, else
 * tuning.txt in the cache folder), and the source plan.c records for each choice. */
#ifndef MHFA_TOOLS_INFO_ORIGIN_H
#define MHFA_TOOLS_INFO_ORIGIN_H

#include "internal.h"

typedef struct tuning_file {
    char path[4200];      /* "" where none is named (the cache folder off) */
    const char *named_by; /* "MHFA_TUNING_FILE" or "the cache folder"; NULL with no path */
    int readable;         /* the lookup reads it */
} tuning_file;

void tuning_file_find(tuning_file *t);
/* In words: the path and what names it, or why there is none. */
void tuning_file_words(const tuning_file *t, char *text, size_t size);

typedef enum plan_origin {
    ORIGIN_UNKNOWN = 0, /* not said (a choice that is not made) */
    ORIGIN_TABLE,       /* the built-in table */
    ORIGIN_TUNING_FILE  /* a line of the tuning file */
} plan_origin;

typedef struct plan_origins { /* one per kind of plan line */
    plan_origin projection, flash, flash_masked, manual, decode, absorbed;
} plan_origins;

/* Where each of plan's choices came from. */
void plan_origins_find(const mhfa_plan *plan, plan_origins *o);
/* "tuning file", "built-in table", or NULL when unknown. */
const char *plan_origin_name(plan_origin origin);

#endif
