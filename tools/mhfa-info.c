/* mhfa-info: every OpenCL platform and device, the MHFA_DEVICE spec that selects each, its limits
 * and features, which device the default picks, and the kernels the library's plan chooses there
 * for a layer (the routing encoder's by default), with where each choice came from and how
 * typical forwards run. --check also runs a second of forwards per device against the float64
 * reference (tests/reference.c); --json prints one JSON document instead of text.
 *
 * This file is the flow: options, the default device, then platform by platform and device by
 * device, each through the library. The parts: info_options (command line), info_devices (what
 * OpenCL says), info_plan, info_kernels, info_origin and info_routes (the plan), info_check
 * (--check), info_text and info_json (the output). */
#include "info_json.h"
#include "info_options.h"
#include "info_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run_state {
    info_options opt;
    cl_device_id default_device, only_device; /* only_device NULL: every device */
    cJSON *root, *platforms;                  /* JSON output, else NULL */
    int devices;
    int failures; /* checks that failed, and devices the tool could not inspect (out of memory) */
} run_state;

/* ---- one device, through the library ---- */

/* A context made by the device's index spec; NULL, with the reason in r->error, when that fails
 * or selects another device. */
static mhfa_context *context_by_spec(cl_device_id id, device_report *r) {
    mhfa_context *ctx = NULL;
    mhfa_status s = mhfa_context_create(r->spec, &ctx);
    if (s != MHFA_SUCCESS) {
        snprintf(r->error, sizeof r->error, "mhfa_context_create(\"%s\"): %s: %s", r->spec,
                 mhfa_status_string(s), mhfa_last_create_error());
        return NULL;
    }
    r->spec_selects_it = mhfa_context_device(ctx) == id;
    if (r->spec_selects_it) return ctx;
    snprintf(r->error, sizeof r->error, "spec \"%s\" selects another device (%s)", r->spec,
             mhfa_context_device_name(ctx));
    mhfa_context_destroy(ctx);
    return NULL;
}

static mhfa_module *module_of_options(mhfa_context *ctx, const info_options *opt,
                                      device_report *r) {
    mhfa_config cfg = mhfa_config_default(opt->heads, opt->input, opt->embed);
    cfg.store_attn_weights = opt->store;
    cfg.dtype = opt->dtype;
    mhfa_module *m = NULL;
    mhfa_status s = mhfa_module_create(ctx, &cfg, &m);
    if (s != MHFA_SUCCESS)
        snprintf(r->error, sizeof r->error, "building the kernels: %s: %s", mhfa_status_string(s),
                 mhfa_context_error_message(ctx));
    return m;
}

/* Builds the options' module on the device, describes its plan and runs the check where asked;
 * every failure lands in r->error or r->check. */
static void inspect_through_library(cl_device_id id, const info_options *opt, device_report *r) {
    mhfa_context *ctx = context_by_spec(id, r);
    mhfa_module *m = ctx ? module_of_options(ctx, opt, r) : NULL;
    trim_trailing_space(r->error);
    if (m) {
        r->has_plan = 1;
        describe_plan(m, opt->nodes, &r->plan);
    }
    if (opt->check) {
        r->checked = 1;
        if (m)
            run_check(ctx, m, &r->check);
        else
            snprintf(r->check.failure, sizeof r->check.failure, "no module on this device");
        trim_trailing_space(r->check.failure);
    }
    mhfa_module_destroy(m);
    mhfa_context_destroy(ctx);
}

static void inspect_device(run_state *st, cl_device_id id, cl_uint platform, cl_uint index,
                           cJSON *json_devices) {
    device_report *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "mhfa-info: out of memory\n");
        st->failures++;
        return;
    }
    snprintf(r->spec, sizeof r->spec, "%u:%u", platform, index);
    device_properties_read(id, &r->properties);
    r->is_default = id == st->default_device;
    if (!st->root) text_device_properties(r);
    inspect_through_library(id, &st->opt, r);
    if (st->root)
        json_device(json_devices, r);
    else
        text_library_view(r);
    st->devices++;
    st->failures += r->checked && !r->check.passed;
    free(r);
}

/* ---- platforms ---- */

static int platform_holds(const cl_device_id *ids, cl_uint n, cl_device_id device) {
    for (cl_uint i = 0; i < n; i++)
        if (ids[i] == device) return 1;
    return 0;
}

static void inspect_platform(run_state *st, cl_platform_id platform, cl_uint index) {
    platform_properties p;
    char error[128] = "";
    platform_properties_read(platform, &p);
    cl_device_id *ids;
    cl_uint n = platform_device_ids(platform, &ids, error, sizeof error);
    if (st->only_device && !platform_holds(ids, n, st->only_device)) {
        free(ids);
        return;
    }
    cJSON *devices = NULL;
    if (st->root)
        devices = json_platform(st->platforms, index, &p, error);
    else
        text_platform(index, &p, error);
    for (cl_uint d = 0; d < n; d++)
        if (!st->only_device || ids[d] == st->only_device)
            inspect_device(st, ids[d], index, d, devices);
    free(ids);
}

/* Every platform; the reason in error when there is none. */
static void inspect_platforms(run_state *st, char *error, size_t size) {
    cl_platform_id *platforms;
    cl_uint n = platform_ids(&platforms, error, size);
    for (cl_uint p = 0; p < n; p++)
        inspect_platform(st, platforms[p], p);
    free(platforms);
}

/* ---- the default device ---- */

/* The rule in words, as mhfa_context_create(NULL) applies it now. */
static void default_rule(char *text, size_t size) {
    const char *env = getenv("MHFA_DEVICE");
    if (env && env[0])
        snprintf(text, size, "MHFA_DEVICE=%s", env);
    else
        snprintf(text, size, "MHFA_DEVICE unset: the first GPU, else the first device");
}

/* Fills st's device choices (default and --device) and reports the default; 0 when --device
 * selects nothing (the reason in error). */
static int resolve_devices(run_state *st, char *error, size_t size) {
    char default_error[4096] = "", spec[32] = "?", rule[512];
    st->default_device = device_chosen_by(NULL, default_error, sizeof default_error);
    if (st->default_device && !index_spec_of(st->default_device, spec, sizeof spec))
        snprintf(spec, sizeof spec, "(not on any platform's list)");
    default_rule(rule, sizeof rule);
    const char *picked = st->default_device ? spec : NULL;
    if (st->root)
        json_default(st->root, rule, picked, default_error);
    else
        text_default(rule, picked, default_error);
    if (!st->opt.device_spec) return 1;
    char why[4096] = "";
    st->only_device = device_chosen_by(st->opt.device_spec, why, sizeof why);
    if (!st->only_device) snprintf(error, size, "--device %s: %s", st->opt.device_spec, why);
    return st->only_device != NULL;
}

/* ---- the end ---- */

/* Prints the JSON document or the closing text; returns the exit status. */
static int finish(run_state *st, const char *error) {
    int failed = error[0] || st->failures > 0;
    if (st->root) {
        json_summary(st->root, st->devices, st->opt.check, !failed, error);
        failed |= json_print(st->root);
        cJSON_Delete(st->root);
    } else if (error[0]) {
        fprintf(stderr, "mhfa-info: %s\n", error);
    } else if (st->opt.check) {
        text_check_totals(st->devices, st->failures);
    }
    return failed;
}

int main(int argc, char **argv) {
    run_state st;
    memset(&st, 0, sizeof st);
    int parsed = info_options_parse(argc, argv, &st.opt);
    if (parsed) return parsed < 0 ? 0 : parsed;
    if (st.opt.json && !(st.root = json_root())) {
        fprintf(stderr, "mhfa-info: out of memory\n");
        return 1;
    }
    char error[8192] = "";
    int resolved = resolve_devices(&st, error, sizeof error);
    if (st.root) st.platforms = json_platforms(st.root);
    if (resolved && json_complete()) inspect_platforms(&st, error, sizeof error);
    if (!error[0] && st.devices == 0) snprintf(error, sizeof error, "no OpenCL device found");
    return finish(&st, error);
}
