/* mhfa-info --json: one cJSON document, built as the devices are found and printed at the end.
 * A failed allocation anywhere is remembered and makes json_print fail. */
#ifndef MHFA_TOOLS_INFO_JSON_H
#define MHFA_TOOLS_INFO_JSON_H

#include "info_report.h"

#include <cJSON.h>

/* The document's root object; NULL when out of memory. */
cJSON *json_root(void);
/* The version, the default rule and the device it picks (NULL spec: none, for the reason in
 * error). */
void json_default(cJSON *root, const char *rule, const char *spec, const char *error);
/* The root's "platforms" array; NULL after a failed allocation. */
cJSON *json_platforms(cJSON *root);
/* Adds a platform to platforms; returns its "devices" array (NULL after a failure). */
cJSON *json_platform(cJSON *platforms, cl_uint index, const platform_properties *p,
                     const char *error);
void json_device(cJSON *devices, const device_report *r);
/* The counts at the end; all_passed only where checked. */
void json_summary(cJSON *root, int devices, int checked, int all_passed, const char *error);
/* Whether every allocation so far succeeded. */
int json_complete(void);
/* Prints the document; returns 0, or 1 when it could not be made (message on stderr). */
int json_print(const cJSON *root);

#endif
