/* What a module built, read back from its kernels: the program's build options, the function
 * names, and the choices they amount to (to set beside the ones planned). */
#ifndef MHFA_TOOLS_INFO_KERNELS_H
#define MHFA_TOOLS_INFO_KERNELS_H

#include "internal.h"

/* The value of "-D NAME=value" in the options kernel was built with; -1 when not there. */
int kernel_define(const mhfa_context *ctx, cl_kernel kernel, const char *name);
/* The kernel's function name; "?" when there is none. */
void kernel_function_name(cl_kernel kernel, char *name, size_t size);

/* The projection and an attention kernel the module built, as the plan's choices would name
 * them. */
mhfa_projection_choice built_projection(const mhfa_module *m);
mhfa_attention_choice built_attention(const mhfa_module *m, const mhfa_attention_kernel *a);

const char *projection_variant_name(mhfa_projection_variant variant);
const char *attention_variant_name(mhfa_attention_variant variant);

#endif
