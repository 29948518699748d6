/* What mhfa-info finds about one device, for the text and the JSON output. */
#ifndef MHFA_TOOLS_INFO_REPORT_H
#define MHFA_TOOLS_INFO_REPORT_H

#include "info_check.h"
#include "info_devices.h"
#include "info_plan.h"

typedef struct device_report {
    char spec[32]; /* "PLATFORM:DEVICE" by index */
    device_properties properties;
    int is_default;
    int spec_selects_it; /* mhfa_context_create(spec) gave this very device */
    char error[2048];    /* why there is no plan ("" when there is one) */
    int has_plan, checked;
    plan_summary plan;
    check_result check;
} device_report;

#endif
