/* The storage types by the names the tools' --dtype options and outputs use. */
#ifndef MHFA_TOOLS_DTYPE_NAMES_H
#define MHFA_TOOLS_DTYPE_NAMES_H

#include "mhfa.h"

/* "float32", "float16" or "bfloat16"; "unknown" for another value. */
const char *dtype_name(mhfa_dtype dtype);
/* The dtype so named into *dtype; 0, or -1 for a name that is none of the three. */
int dtype_of_name(const char *name, mhfa_dtype *dtype);

#endif
