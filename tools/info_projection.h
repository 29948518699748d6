/* The plan's projection line: the kernels the module built for it. */
#ifndef MHFA_TOOLS_INFO_PROJECTION_H
#define MHFA_TOOLS_INFO_PROJECTION_H

#include "info_plan.h"

void describe_projection(const mhfa_module *m, const plan_origins *o, info_choice *c);

#endif
