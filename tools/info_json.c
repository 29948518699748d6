/* The JSON document: every field of the text output, with the sizes as numbers. */
#include "info_json.h"

#include <math.h>
#include <stdio.h>

static int json_failed; /* an allocation for the JSON document failed */

static cJSON *checked(cJSON *item) {
    if (!item) json_failed = 1;
    return item;
}

static void add_string(cJSON *o, const char *name, const char *text) {
    checked(text ? cJSON_AddStringToObject(o, name, text) : cJSON_AddNullToObject(o, name));
}

/* A string, or null where it is empty. */
static void add_optional_string(cJSON *o, const char *name, const char *text) {
    add_string(o, name, text && text[0] ? text : NULL);
}

static void add_number(cJSON *o, const char *name, double value) {
    checked(cJSON_AddNumberToObject(o, name, value));
}

static void add_bool(cJSON *o, const char *name, int value) {
    checked(cJSON_AddBoolToObject(o, name, value));
}

/* Adds item to array, or deletes it. */
static void append(cJSON *array, cJSON *item) {
    if (item && cJSON_AddItemToArray(array, item)) return;
    json_failed = 1;
    cJSON_Delete(item);
}

cJSON *json_root(void) {
    return checked(cJSON_CreateObject());
}

void json_default(cJSON *root, const char *rule, const char *spec, const char *error) {
    add_string(root, "mhfa_version", mhfa_version_string());
    add_string(root, "default_rule", rule);
    add_string(root, "default_device", spec);
    if (!spec) add_string(root, "default_error", error);
}

cJSON *json_platforms(cJSON *root) {
    return checked(cJSON_AddArrayToObject(root, "platforms"));
}

cJSON *json_platform(cJSON *platforms, cl_uint index, const platform_properties *p,
                     const char *error) {
    cJSON *o = checked(cJSON_CreateObject());
    if (!o) return NULL;
    add_number(o, "index", index);
    add_string(o, "name", p->name);
    add_string(o, "vendor", p->vendor);
    add_string(o, "version", p->version);
    if (error[0]) add_string(o, "error", error);
    cJSON *devices = checked(cJSON_AddArrayToObject(o, "devices"));
    append(platforms, o);
    return json_failed ? NULL : devices;
}

static void json_parameters(cJSON *parent, const info_choice *c) {
    cJSON *o = checked(cJSON_AddObjectToObject(parent, "parameters"));
    for (int i = 0; o && i < c->n_parameters; i++) {
        const info_parameter *p = &c->parameters[i];
        if (p->text)
            add_string(o, p->name, p->text);
        else
            add_number(o, p->name, (double)p->value);
    }
}

static void json_choice(cJSON *parent, const info_choice *c) {
    cJSON *o = checked(cJSON_AddObjectToObject(parent, c->key));
    if (!o) return;
    add_optional_string(o, "kind", c->kind);
    add_string(o, "description", c->words);
    add_optional_string(o, "function", c->function);
    add_optional_string(o, "from", c->from);
    json_parameters(o, c);
}

static void json_forward(cJSON *forwards, const forward_route *f) {
    cJSON *o = checked(cJSON_CreateObject());
    if (!o) return;
    add_string(o, "name", f->key);
    add_number(o, "n_query", f->n_query);
    add_number(o, "graph_size", f->graph_size);
    add_bool(o, "masked", f->masked);
    add_string(o, "route", f->route);
    add_string(o, "kernel", f->kernel);
    add_optional_string(o, "function", f->function);
    add_string(o, "layout", !f->kernel ? NULL : f->rows_layout ? "rows" : "heads");
    add_string(o, "mask", f->mask);
    add_bool(o, "clblast", f->clblast);
    add_string(o, "description", f->words);
    add_string(o, "why", f->why);
    append(forwards, o);
}

static void json_tuning_file(cJSON *parent, const tuning_file *t) {
    cJSON *o = checked(cJSON_AddObjectToObject(parent, "tuning_file"));
    if (!o) return;
    add_optional_string(o, "path", t->path);
    add_string(o, "named_by", t->named_by);
    add_bool(o, "read", t->readable);
}

static void json_plan(cJSON *parent, const plan_summary *plan) {
    cJSON *o = checked(cJSON_AddObjectToObject(parent, "plan"));
    if (!o) return;
    add_number(o, "n_heads", plan->n_heads);
    add_number(o, "input_dim", plan->input_dim);
    add_number(o, "embed_dim", plan->embed_dim);
    add_number(o, "head_dim", plan->head_dim);
    add_string(o, "path", plan->manual_path ? "manual" : "flash");
    add_string(o, "dtype", plan->dtype);
    json_tuning_file(o, &plan->tuning);
    for (int i = 0; i < N_PLAN_ITEMS; i++)
        json_choice(o, &plan->items[i]);
    add_number(o, "nodes", plan->nodes);
    cJSON *forwards = checked(cJSON_AddArrayToObject(o, "forwards"));
    for (int i = 0; forwards && i < N_TYPICAL_FORWARDS; i++)
        json_forward(forwards, &plan->forwards[i]);
}

static void json_check(cJSON *parent, const check_result *c) {
    cJSON *o = checked(cJSON_AddObjectToObject(parent, "check"));
    if (!o) return;
    add_bool(o, "passed", c->passed);
    if (isfinite(c->max_error))
        add_number(o, "max_error", c->max_error);
    else
        add_string(o, "max_error", NULL);
    add_number(o, "tolerance", c->tolerance);
    add_number(o, "forwards", c->forwards);
    add_number(o, "seconds", c->seconds);
    if (!c->passed) add_string(o, "failure", c->failure);
}

static void json_properties(cJSON *o, const device_properties *p) {
    add_string(o, "name", p->name);
    add_string(o, "vendor", p->vendor);
    add_string(o, "type", p->type);
}

static void json_limits(cJSON *o, const device_properties *p) {
    add_number(o, "compute_units", p->compute_units);
    add_number(o, "global_mem_bytes", (double)p->global_mem);
    add_number(o, "local_mem_bytes", (double)p->local_mem);
    add_number(o, "max_alloc_bytes", (double)p->max_alloc);
    add_number(o, "max_work_group_size", (double)p->max_work_group);
    add_string(o, "device_version", p->device_version);
    add_string(o, "opencl_c_version", p->c_version);
    add_string(o, "driver_version", p->driver_version);
    add_bool(o, "fp16", p->fp16);
    add_bool(o, "fp64", p->fp64);
    add_bool(o, "subgroups", p->subgroups[0] != '\0');
    if (p->subgroups[0]) add_string(o, "subgroups_by", p->subgroups);
}

void json_device(cJSON *devices, const device_report *r) {
    cJSON *o = checked(cJSON_CreateObject());
    if (!o) return;
    add_string(o, "spec", r->spec);
    add_bool(o, "spec_selects_it", r->spec_selects_it);
    json_properties(o, &r->properties);
    add_bool(o, "default", r->is_default);
    json_limits(o, &r->properties);
    if (r->error[0]) add_string(o, "error", r->error);
    if (r->has_plan) json_plan(o, &r->plan);
    if (r->checked) json_check(o, &r->check);
    append(devices, o);
}

void json_summary(cJSON *root, int devices, int checked_devices, int all_passed,
                  const char *error) {
    add_number(root, "devices_found", devices);
    if (checked_devices) add_bool(root, "all_passed", all_passed);
    if (error[0]) add_string(root, "error", error);
}

int json_complete(void) {
    return !json_failed;
}

int json_print(const cJSON *root) {
    char *text = json_failed ? NULL : cJSON_Print(root);
    if (!text) {
        fprintf(stderr, "mhfa-info: out of memory for the JSON document\n");
        return 1;
    }
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}
