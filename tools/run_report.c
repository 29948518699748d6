/* Text and JSON forms of mhfa-run's results. */
#include "run_report.h"

#include "cJSON.h"

#include <stdio.h>
#include <stdlib.h>

static double instances_per_s(const run_result *r, const stage_result *s) {
    return s->median_ms > 0.0 ? r->batch / (s->median_ms * 1e-3) : 0.0;
}

static const char *plural(int n) {
    return n == 1 ? "" : "s";
}

static void print_stage(const run_result *r, const char *name, const stage_result *s,
                        const char *where) {
    printf("  %-13s %10.3f %9d %12.0f   %.2e %s  first %d instance%s%s\n", name, s->median_ms,
           s->forwards, instances_per_s(r, s), s->error.relative,
           s->error.within_bound ? "ok" : "TOO LARGE", s->error.sample, plural(s->error.sample),
           where);
}

static void print_workload(const run_result *r) {
    printf("mhfa %s on %s\n", mhfa_version_string(), r->device);
    printf("layer    %d head%s, input_dim %d, embed_dim %d (head_dim %d)\n", r->n_heads,
           plural(r->n_heads), r->input_dim, r->embed_dim, r->embed_dim / r->n_heads);
    printf("weights  %s\n", r->weights_source);
    printf("workload %d routing instance%s of %d nodes (depot + %d customer%s), coordinates and "
           "demands embedded to %d\n",
           r->batch, plural(r->batch), r->nodes, r->nodes - 1, plural(r->nodes - 1), r->input_dim);
    printf("encoder  self-attention: q [%d][%d][%d] -> out [%d][%d][%d], no mask\n", r->batch,
           r->nodes, r->input_dim, r->batch, r->nodes, r->embed_dim);
    printf("decoder  %d step%s: q [%d][1][%d] against %s [%d][%d][%d], visited nodes masked\n",
           r->decoder_steps, plural(r->decoder_steps), r->batch, r->input_dim,
           r->keys_are_encoder_output ? "the encoder output" : "the node embeddings", r->batch,
           r->nodes, r->input_dim);
}

void run_report_text(const run_result *r) {
    char where[32];
    print_workload(r);
    printf("\n  %-13s %10s %9s %12s   %s\n", "", "median ms", "forwards", "instances/s",
           "error vs float64");
    print_stage(r, "encoder", &r->encoder, "");
    snprintf(where, sizeof where, ", step %d", r->checked_step);
    print_stage(r, "decoder step", &r->decoder, where);
    printf("\nerror = max|out - ref| / max(1, max|ref|), bound %.0e\n", FLOAT64_CHECK_TOLERANCE);
    if (r->heatmap_path)
        printf("heatmap  %s (%d head%s, instance 0, %d nodes)\n", r->heatmap_path, r->n_heads,
               plural(r->n_heads), r->heatmap_nodes);
}

/* The put_* helpers clear *ok when cJSON runs out of memory (a NULL object counts as that). */
static void put_number(cJSON *o, const char *key, double value, int *ok) {
    if (!cJSON_AddNumberToObject(o, key, value)) *ok = 0;
}

static void put_string(cJSON *o, const char *key, const char *value, int *ok) {
    if (!cJSON_AddStringToObject(o, key, value)) *ok = 0;
}

static void put_bool(cJSON *o, const char *key, int value, int *ok) {
    if (!cJSON_AddBoolToObject(o, key, value)) *ok = 0;
}

static cJSON *put_object(cJSON *o, const char *key, int *ok) {
    cJSON *child = cJSON_AddObjectToObject(o, key);
    if (!child) *ok = 0;
    return child;
}

static void put_error(cJSON *o, const float64_error *e, int *ok) {
    cJSON *error = put_object(o, "error", ok);
    put_number(error, "sample_instances", e->sample, ok);
    put_number(error, "max_abs", e->max_abs, ok);
    put_number(error, "scale", e->scale, ok);
    put_number(error, "relative", e->relative, ok);
    put_bool(error, "ok", e->within_bound, ok);
}

static cJSON *put_stage(cJSON *o, const char *key, const run_result *r, const stage_result *s,
                        int *ok) {
    cJSON *stage = put_object(o, key, ok);
    put_number(stage, "n_query", s->n_query, ok);
    put_number(stage, "forwards", s->forwards, ok);
    put_number(stage, "median_ms", s->median_ms, ok);
    put_number(stage, "instances_per_s", instances_per_s(r, s), ok);
    put_error(stage, &s->error, ok);
    return stage;
}

static void put_result(cJSON *o, const run_result *r, int *ok) {
    put_string(o, "mhfa_version", mhfa_version_string(), ok);
    put_string(o, "device", r->device, ok);
    put_string(o, "weights", r->weights_source, ok);
    put_number(o, "batch", r->batch, ok);
    put_number(o, "nodes", r->nodes, ok);
    put_number(o, "n_heads", r->n_heads, ok);
    put_number(o, "input_dim", r->input_dim, ok);
    put_number(o, "embed_dim", r->embed_dim, ok);
    put_number(o, "error_bound", FLOAT64_CHECK_TOLERANCE, ok);
    put_stage(o, "encoder", r, &r->encoder, ok);
    cJSON *decoder = put_stage(o, "decoder_step", r, &r->decoder, ok);
    put_number(decoder, "steps", r->decoder_steps, ok);
    put_number(decoder, "checked_step", r->checked_step, ok);
    put_string(decoder, "keys", r->keys_are_encoder_output ? "encoder_output" : "node_embeddings",
               ok);
    if (r->heatmap_path) put_string(o, "heatmap", r->heatmap_path, ok);
    put_bool(o, "ok", r->encoder.error.within_bound && r->decoder.error.within_bound, ok);
}

int run_report_json(const run_result *r) {
    int ok = 1;
    cJSON *o = cJSON_CreateObject();
    put_result(o, r, &ok);
    char *text = ok ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) return -1;
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}
