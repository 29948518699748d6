/* A module's plan in words and numbers: the kernels it built, the choices it did not build, where
 * each came from, and the routes of typical forwards. */
#ifndef MHFA_TOOLS_INFO_PLAN_H
#define MHFA_TOOLS_INFO_PLAN_H

#include "info_origin.h"
#include "info_routes.h"

enum { INFO_MAX_PARAMETERS = 8 };

typedef struct info_parameter { /* one size or setting of a choice, for JSON */
    const char *name;
    const char *text; /* NULL: the value is the number */
    long value;
} info_parameter;

typedef struct info_choice {
    const char *label, *key; /* the text output's label, the JSON key */
    char kind[16];           /* the variant; "" where there is none */
    char function[64];       /* the kernel function built; "" where none is */
    char words[512];         /* what it is and its sizes */
    char from[160];          /* where it came from; "" where not known */
    info_parameter parameters[INFO_MAX_PARAMETERS];
    int n_parameters;
} info_choice;

typedef enum plan_item {
    PLAN_PROJECTION,
    PLAN_ATTENTION,  /* the path's kernel: flash, or manual with --store */
    PLAN_MASKED,     /* the flash path's kernel for masked forwards */
    PLAN_OTHER_PATH, /* the other path's choice, not built */
    PLAN_FALLBACK,   /* where a choice does not fit */
    PLAN_DECODE,
    PLAN_ABSORBED,
    N_PLAN_ITEMS
} plan_item;

typedef struct plan_summary {
    int n_heads, input_dim, embed_dim, head_dim;
    int manual_path;   /* store_attn_weights */
    const char *dtype; /* the storage type's name */
    int nodes;         /* of the forwards */
    tuning_file tuning;
    info_choice items[N_PLAN_ITEMS];
    forward_route forwards[N_TYPICAL_FORWARDS];
} plan_summary;

/* Describes module m (its kernels built) and its forwards of the given nodes. */
void describe_plan(const mhfa_module *m, int nodes, plan_summary *plan);

#endif
