/* The text output: a block per platform, its devices indented under it. */
#include "info_text.h"

#include <stdio.h>
#include <string.h>

void text_default(const char *rule, const char *spec, const char *error) {
    printf("mhfa %s; default device (%s): ", mhfa_version_string(), rule);
    if (spec)
        printf("%s\n", spec);
    else
        printf("none: %s\n", error);
}

void text_platform(cl_uint index, const platform_properties *p, const char *error) {
    printf("\nplatform %u: %s (%s), %s%s%s\n", index, p->name, p->vendor, p->version,
           error[0] ? ": " : "", error);
}

static void format_bytes(cl_ulong bytes, char *text, size_t size) {
    static const char *const units[] = {"GiB", "MiB", "KiB"};
    for (int i = 0; i < 3; i++) {
        double unit = (double)(1ull << (10 * (3 - i)));
        if ((double)bytes >= unit) {
            snprintf(text, size, "%.1f %s", (double)bytes / unit, units[i]);
            return;
        }
    }
    snprintf(text, size, "%llu bytes", (unsigned long long)bytes);
}

static const char *yes_no(int value) {
    return value ? "yes" : "no";
}

void text_device_properties(const device_report *r) {
    const device_properties *p = &r->properties;
    char global[32], local[32], alloc[32];
    format_bytes(p->global_mem, global, sizeof global);
    format_bytes(p->local_mem, local, sizeof local);
    format_bytes(p->max_alloc, alloc, sizeof alloc);
    printf("  device %s: %s%s\n", r->spec, p->name, r->is_default ? "   [default]" : "");
    printf("    %-16s %s, %u compute units, work-groups up to %zu\n", "type", p->type,
           p->compute_units, p->max_work_group);
    printf("    %-16s global %s, local %s, largest allocation %s\n", "memory", global, local,
           alloc);
    printf("    %-16s %s; %s; driver %s\n", "OpenCL", p->device_version, p->c_version,
           p->driver_version);
    printf("    %-16s fp16 %s, fp64 %s, subgroups %s\n", "features", yes_no(p->fp16),
           yes_no(p->fp64), p->subgroups[0] ? p->subgroups : "no");
    fflush(stdout);
}

static void print_choice(const info_choice *c) {
    printf("      %-14s %s", c->label, c->words);
    if (c->from[0]) printf(" [%s]", c->from);
    printf("\n");
}

static void print_forward(const forward_route *f) {
    char shape[96];
    snprintf(shape, sizeof shape, "%s %dx%d%s", f->name, f->n_query, f->graph_size,
             f->masked ? ", masked" : "");
    printf("      %-28s %s\n      %-28s why: %s\n", shape, f->words, "", f->why);
}

static void print_plan(const plan_summary *plan) {
    char tuning[4400];
    tuning_file_words(&plan->tuning, tuning, sizeof tuning);
    printf("    plan for %d heads, input %d, embed %d (head_dim %d), %s path, %s storage:\n",
           plan->n_heads, plan->input_dim, plan->embed_dim, plan->head_dim,
           plan->manual_path ? "manual" : "flash", plan->dtype);
    printf("      %-14s %s\n", "tuning file", tuning);
    for (int i = 0; i < N_PLAN_ITEMS; i++)
        print_choice(&plan->items[i]);
    printf("    forwards of %d nodes (any batch):\n", plan->nodes);
    for (int i = 0; i < N_TYPICAL_FORWARDS; i++)
        print_forward(&plan->forwards[i]);
}

void text_library_view(const device_report *r) {
    if (r->spec_selects_it) printf("    %-16s MHFA_DEVICE=%s selects it\n", "spec", r->spec);
    if (r->error[0]) printf("    %-16s %s\n", "error", r->error);
    if (r->has_plan) print_plan(&r->plan);
    if (r->checked && r->check.passed)
        printf("    %-16s pass: error %.2e <= %.0e over %d forwards in %.2f s\n", "check",
               r->check.max_error, r->check.tolerance, r->check.forwards, r->check.seconds);
    else if (r->checked)
        printf("    %-16s FAIL: %s\n", "check", r->check.failure);
    fflush(stdout);
}

void text_check_totals(int devices, int failures) {
    printf("\n%d device(s) checked, %d failed\n", devices, failures);
}
