/* mhfa-info's view of OpenCL itself: platform and device properties, and the MHFA_DEVICE specs
 * that name a device. */
#ifndef MHFA_TOOLS_INFO_DEVICES_H
#define MHFA_TOOLS_INFO_DEVICES_H

#include "mhfa.h"

#include <stddef.h>

typedef struct platform_properties {
    char name[256], vendor[256], version[256];
} platform_properties;

typedef struct device_properties {
    char name[256], vendor[256], device_version[256], driver_version[256], c_version[256];
    char type[64], subgroups[64]; /* subgroups: how they are offered, "" when not */
    cl_uint compute_units;
    cl_ulong global_mem, local_mem, max_alloc;
    size_t max_work_group;
    int fp16, fp64;
} device_properties;

/* What OpenCL says; a text it cannot give reads "?", a number 0. */
void platform_properties_read(cl_platform_id id, platform_properties *p);
void device_properties_read(cl_device_id id, device_properties *p);

/* Every platform into ids (allocated); returns how many, 0 with the reason in error when there
 * is none. */
cl_uint platform_ids(cl_platform_id **ids, char *error, size_t size);
/* The platform's devices into ids (allocated, NULL when none); returns how many, with the reason
 * in error when there are none. */
cl_uint platform_device_ids(cl_platform_id platform, cl_device_id **ids, char *error, size_t size);

/* The device mhfa_context_create(spec) picks (NULL spec: the default rule); NULL on failure, with
 * the reason in error. */
cl_device_id device_chosen_by(const char *spec, char *error, size_t size);
/* The "PLATFORM:DEVICE" index spec of a device; 0 when it is on no platform's list. */
int index_spec_of(cl_device_id device, char *spec, size_t size);

/* Cuts newlines and spaces off the end (library messages end in one). */
void trim_trailing_space(char *text);

#endif
