/* The module's plan, choice by choice: what was built (read back from the kernels), what was
 * planned (m->plan), and where the plan came from. A built kernel unlike its plan line is the
 * fallback's. */
#include "info_plan.h"

#include "dtype_names.h"
#include "info_kernels.h"
#include "info_projection.h"
#include "info_words.h"

#include <stdio.h>
#include <string.h>

/* ---- attention ---- */

static void attention_line(const mhfa_attention_choice *a, char *text, size_t size) {
    const char *name = attention_variant_name(a->variant), *rows = a->rows ? " rows" : "";
    if (a->variant == MHFA_ATTEND_TILED)
        snprintf(text, size, "%d %d%s", a->block_q, a->block_k, rows);
    else if (a->variant == MHFA_ATTEND_VECTOR)
        snprintf(text, size, "%s %d%s", name, a->block_k, rows);
    else if (a->variant == MHFA_ATTEND_MMA)
        snprintf(text, size, "%s %d %d %d%s", name, a->warps, a->block_k, a->q_tiles, rows);
    else if (a->variant == MHFA_ATTEND_WIDE)
        snprintf(text, size, "%s %d %d%s", name, a->block_q, a->tile_keys, rows);
    else
        snprintf(text, size, "none");
}

/* Its sizes after the file's name: "attention_vector.cl (vector_attention): ...". */
static void describe_attention_sizes(const mhfa_attention_choice *a, int half, info_choice *c) {
    if (a->variant == MHFA_ATTEND_VECTOR) {
        choice_add_words(c, ": 16 queries as float16 lanes per work-item, %d keys a step",
                         a->block_k);
        choice_add_number(c, "block_k", a->block_k);
    } else if (a->variant == MHFA_ATTEND_MMA) {
        choice_add_words(c, ": %s tensor cores, %d warps of %d queries, %d keys a tile",
                         half ? "half-operand" : "3xTF32", a->warps, 16 * a->q_tiles, a->block_k);
        choice_add_number(c, "warps", a->warps);
        choice_add_number(c, "q_tiles", a->q_tiles);
        choice_add_number(c, "block_k", a->block_k);
    } else if (a->variant == MHFA_ATTEND_WIDE) {
        choice_add_words(c,
                         ": %d queries a group, tiles of %d keys in local memory, the mask as bits",
                         a->block_q, a->tile_keys);
        choice_add_number(c, "block_q", a->block_q);
        choice_add_number(c, "tile_keys", a->tile_keys);
    } else {
        choice_add_words(c,
                         ": one query per work-item, %d a group, K and V tiles of %d keys in local "
                         "memory",
                         a->block_q, a->block_k);
        choice_add_number(c, "block_q", a->block_q);
        choice_add_number(c, "block_k", a->block_k);
    }
}

/* A choice in words; function: the kernel built, NULL for a choice not built; half: for half
 * storage (the tensor-core kernel has its own file). */
static void describe_attention_choice(const mhfa_attention_choice *a, const char *function,
                                      int half, info_choice *c) {
    if (a->variant == MHFA_ATTEND_NONE) {
        choice_add_words(c, "none");
        return;
    }
    snprintf(c->kind, sizeof c->kind, "%s", attention_variant_name(a->variant));
    choice_add_words(c, "attention_%s%s.cl", c->kind,
                     half && a->variant == MHFA_ATTEND_MMA ? "_half" : "");
    if (function) {
        snprintf(c->function, sizeof c->function, "%s", function);
        choice_add_words(c, " (%s)", function);
    }
    describe_attention_sizes(a, half, c);
    choice_add_words(c, "; Q, K, V %s", a->rows ? "rows-major" : "per head");
    choice_add_number(c, "rows_layout", a->rows);
}

/* A kernel the module built for the plan's choice planned. */
static void describe_built_attention(const mhfa_module *m, const mhfa_attention_kernel *kernel,
                                     const mhfa_attention_choice *planned, plan_origin origin,
                                     info_choice *c) {
    char function[64], line[64];
    kernel_function_name(kernel->kernel, function, sizeof function);
    const mhfa_attention_choice built = built_attention(m, kernel);
    describe_attention_choice(&built, function, m->cfg.dtype != MHFA_FLOAT32, c);
    mhfa_attention_choice as_planned = *planned;
    as_planned.rows = built.rows;     /* the layout is the projection's to give */
    as_planned.source = built.source; /* where it came from is no size */
    attention_line(planned, line, sizeof line);
    if (memcmp(&built, &as_planned, sizeof built) != 0) {
        choice_set_fallback(c, origin, line, "did not fit");
        return;
    }
    choice_set_origin(c, origin);
    if (planned->rows && !built.rows)
        choice_add_words(c, " (rows-major asked: the %s projection cannot write it)",
                         projection_variant_name(m->kernels.projection));
}

static void describe_path_attention(const mhfa_module *m, const plan_origins *o, info_choice *c) {
    const mhfa_plan *p = &m->plan;
    if (m->cfg.store_attn_weights && p->manual.variant) {
        describe_built_attention(m, &m->kernels.attention, &p->manual, o->manual, c);
        return;
    }
    describe_built_attention(m, &m->kernels.attention, &p->flash, o->flash, c);
    if (m->cfg.store_attn_weights) choice_add_words(c, " (the flash line: no manual line)");
}

static void describe_masked(const mhfa_module *m, const plan_origins *o, info_choice *c) {
    const mhfa_attention_kernel *masked = &m->kernels.attention_masked;
    if (masked->kernel) {
        describe_built_attention(m, masked, &m->plan.flash_masked, o->flash_masked, c);
        return;
    }
    if (m->plan.flash_masked.variant) { /* planned, but the manual path builds one kernel */
        choice_add_words(c, "the unmasked kernel (the masked line is the flash path's)");
        choice_set_origin(c, o->flash_masked);
    } else { /* no masked line in the tuning file or the table: no origin to name */
        choice_add_words(c, "the unmasked kernel (no masked line)");
    }
}

/* The path not built: the manual choice on the flash path, the flash choice on the manual. */
static void describe_other_path(const mhfa_module *m, const plan_origins *o, info_choice *c) {
    const mhfa_plan *p = &m->plan;
    if (m->cfg.store_attn_weights) {
        c->label = c->key = "flash";
        describe_attention_choice(&p->flash, NULL, m->cfg.dtype != MHFA_FLOAT32, c);
        choice_add_words(c, "; not built: the manual path");
        choice_set_origin(c, o->flash);
        return;
    }
    c->label = c->key = "manual";
    if (p->manual.variant) {
        describe_attention_choice(&p->manual, NULL, m->cfg.dtype != MHFA_FLOAT32, c);
        choice_set_origin(c, o->manual);
    } else {
        choice_add_words(c, "the flash choice (no manual line)");
    }
    choice_add_words(c, "; not built: the flash path (--store builds it)");
}

static void describe_fallback(const mhfa_module *m, info_choice *c) {
    describe_attention_choice(&m->plan.fallback, NULL, m->cfg.dtype != MHFA_FLOAT32, c);
    choice_add_words(c, "; where a choice does not fit (its group halved until one does)");
    snprintf(c->from, sizeof c->from, "sized to the device");
}

/* ---- decode and absorbed ---- */

static void describe_decode(const mhfa_module *m, const plan_origins *o, info_choice *c) {
    int chunk = m->plan.decode_chunk;
    choice_add_number(c, "chunk", chunk);
    choice_add_number(c, "min_keys", MHFA_DECODE_MIN_CHUNKS * chunk);
    choice_set_origin(c, o->decode);
    if (!m->kernels.decode_partial) {
        choice_add_words(c, "not built: the manual path (chunks of %d keys planned)", chunk);
        return;
    }
    snprintf(c->kind, sizeof c->kind, "decode");
    choice_add_words(
        c,
        "attention_decode.cl: chunks of %d key%s in parallel, then a merge (for %d or fewer "
        "queries against %d keys or more)",
        chunk, chunk == 1 ? "" : "s", MHFA_DECODE_MAX_QUERIES, MHFA_DECODE_MIN_CHUNKS * chunk);
}

static const char *absorbed_mode_name(mhfa_absorbed_mode mode) {
    return mode == MHFA_ABSORBED_OFF      ? "off"
           : mode == MHFA_ABSORBED_ALWAYS ? "always"
                                          : "when_cheaper";
}

static void describe_built_absorbed(const mhfa_module *m, info_choice *c) {
    const mhfa_kernels *k = &m->kernels;
    const int always = m->plan.absorbed_mode == MHFA_ABSORBED_ALWAYS;
    snprintf(c->kind, sizeof c->kind, "%s", always ? "always" : "auto");
    choice_add_words(c, "attention_absorbed.cl: groups of %zu work-item%s, %d keys a step; %s",
                     k->absorbed_group, k->absorbed_group == 1 ? "" : "s",
                     kernel_define(m->ctx, k->absorbed, "KEYS"),
                     always ? "every forward (tuning: always)"
                            : "where it saves work (few queries, many keys)");
    if (k->absorbed_group < (size_t)m->plan.absorbed_group)
        choice_add_words(c, " (groups of %d planned, halved to fit)", m->plan.absorbed_group);
    choice_add_number(c, "built_group", (long)k->absorbed_group);
}

static void describe_absorbed(const mhfa_module *m, const plan_origins *o, info_choice *c) {
    const mhfa_plan *p = &m->plan;
    choice_add_parameter(c, "mode", absorbed_mode_name(p->absorbed_mode), 0);
    choice_add_number(c, "group", p->absorbed_group);
    choice_add_number(c, "keys", p->absorbed_keys);
    choice_set_origin(c, o->absorbed);
    if (m->kernels.absorbed)
        describe_built_absorbed(m, c);
    else if (p->absorbed_mode == MHFA_ABSORBED_OFF)
        choice_add_words(c, "not built: off");
    else
        choice_add_words(c, "not built: %s (groups of %d, %d keys planned)",
                         m->cfg.store_attn_weights
                             ? "the manual path"
                             : "it does not fit the device, or its build failed",
                         p->absorbed_group, p->absorbed_keys);
}

/* ---- the whole ---- */

static void label_items(info_choice items[N_PLAN_ITEMS]) {
    static const char *const labels[N_PLAN_ITEMS][2] = {
        {"projection", "projection"}, {"attention", "attention"}, {"masked", "attention_masked"},
        {"manual", "manual"},         {"fallback", "fallback"},   {"decode", "decode"},
        {"absorbed", "absorbed"}};
    for (int i = 0; i < N_PLAN_ITEMS; i++)
        items[i].label = labels[i][0], items[i].key = labels[i][1];
}

void describe_plan(const mhfa_module *m, int nodes, plan_summary *plan) {
    memset(plan, 0, sizeof *plan);
    plan->n_heads = m->cfg.n_heads;
    plan->input_dim = m->cfg.input_dim;
    plan->embed_dim = m->cfg.embed_dim;
    plan->head_dim = m->head_dim;
    plan->manual_path = m->cfg.store_attn_weights != 0;
    plan->dtype = dtype_name(m->cfg.dtype);
    plan->nodes = nodes;
    tuning_file_find(&plan->tuning);
    plan_origins o;
    plan_origins_find(&m->plan, &o);
    info_choice *items = plan->items;
    label_items(items);
    describe_projection(m, &o, &items[PLAN_PROJECTION]);
    describe_path_attention(m, &o, &items[PLAN_ATTENTION]);
    describe_masked(m, &o, &items[PLAN_MASKED]);
    describe_other_path(m, &o, &items[PLAN_OTHER_PATH]);
    describe_fallback(m, &items[PLAN_FALLBACK]);
    describe_decode(m, &o, &items[PLAN_DECODE]);
    describe_absorbed(m, &o, &items[PLAN_ABSORBED]);
    describe_forwards(m, nodes, plan->forwards);
}
