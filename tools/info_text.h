/* mhfa-info's text output, printed as each part is found. */
#ifndef MHFA_TOOLS_INFO_TEXT_H
#define MHFA_TOOLS_INFO_TEXT_H

#include "info_report.h"

/* The first line: the version, the default rule and the device it picks (NULL spec: none, for
 * the reason in error). */
void text_default(const char *rule, const char *spec, const char *error);
void text_platform(cl_uint index, const platform_properties *p, const char *error);
void text_device_properties(const device_report *r);
/* The spec, the error, the plan and the check of a device. */
void text_library_view(const device_report *r);
void text_check_totals(int devices, int failures);

#endif
