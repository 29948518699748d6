/* How typical forwards run on a module, from mhfa_plan_for_forward: the route, the kernel and
 * its layout, and why. */
#ifndef MHFA_TOOLS_INFO_ROUTES_H
#define MHFA_TOOLS_INFO_ROUTES_H

#include "internal.h"

typedef struct forward_route {
    const char *name; /* "encoder", "decoder step" */
    const char *key;  /* for JSON: "encoder", "encoder_masked", "decoder_step" */
    int n_query, graph_size, masked;
    const char *route;  /* "kernel", "decode", "absorbed" or "application" */
    const char *kernel; /* the kernel route's: "attention" or "attention_masked"; else NULL */
    char function[64];  /* that kernel's function, "" on other routes */
    int rows_layout;    /* that kernel's layout: Q, K, V rows-major, else per head */
    int clblast;        /* the projections through CLBlast */
    const char *mask;   /* how the kernels read it: "none", "given" or "keep" */
    char words[256];    /* the route in words */
    char why[256];      /* why it is taken (and the earlier ones are not) */
} forward_route;

/* Encoder self-attention nodes x nodes without and with a mask, a decoder step 1 x nodes with a
 * mask. */
enum { N_TYPICAL_FORWARDS = 3 };
void describe_forwards(const mhfa_module *m, int nodes, forward_route routes[N_TYPICAL_FORWARDS]);

#endif
