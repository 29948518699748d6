/* The storage types' names for the tools (dtype_names.h). */
#include "dtype_names.h"

#include <string.h>

static const char *const names[3] = {"float32", "float16", "bfloat16"}; /* by mhfa_dtype */

const char *dtype_name(mhfa_dtype dtype) {
    return (int)dtype >= 0 && (int)dtype < 3 ? names[dtype] : "unknown";
}

int dtype_of_name(const char *name, mhfa_dtype *dtype) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *dtype = (mhfa_dtype)i;
            return 0;
        }
    return -1;
}
