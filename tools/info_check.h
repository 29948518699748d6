/* mhfa-info --check: a second of masked self-attention forwards on a module, each against the
 * float64 reference (float64_check.c, as mhfa-run's). */
#ifndef MHFA_TOOLS_INFO_CHECK_H
#define MHFA_TOOLS_INFO_CHECK_H

#include "float64_check.h"

#define CHECK_SECONDS   1.0
#define CHECK_TOLERANCE FLOAT64_CHECK_TOLERANCE

typedef struct check_result {
    int passed;
    double max_error; /* max |out - ref| / max(1, max |ref|) over the forwards run */
    double tolerance; /* the bound it is held to (the layer's dtype's) */
    int forwards;
    double seconds;
    char failure[1024]; /* "" when passed */
} check_result;

/* Sets random weights on m (a module of ctx) and runs forwards through every check shape, then
 * on until CHECK_SECONDS have passed or one fails. */
void run_check(mhfa_context *ctx, mhfa_module *m, check_result *c);

#endif
