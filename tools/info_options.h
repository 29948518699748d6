/* mhfa-info's command line: the options, their defaults, --help. */
#ifndef MHFA_TOOLS_INFO_OPTIONS_H
#define MHFA_TOOLS_INFO_OPTIONS_H

#include "mhfa.h"

typedef struct info_options {
    int json, check;
    const char *device_spec;        /* NULL: every device */
    int heads, embed, input, nodes; /* the layer the plan is shown for, and its forwards */
    int store;                      /* the manual path (store_attn_weights) */
    mhfa_dtype dtype;               /* the module's storage type (--dtype) */
} info_options;

/* Fills opt from argv. Returns 0, or the exit status to leave with (-1: --help printed, exit 0;
 * 2: a usage error, its message on stderr). */
int info_options_parse(int argc, char **argv, info_options *opt);

#endif
