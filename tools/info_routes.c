/* The typical forwards' routes. mhfa_plan_for_forward gives the route; the reasons are read from
 * the module's plan and kernels in the order plan.c tries the routes: absorbed, the application's
 * core, decode, a kernel. */
#include "info_routes.h"

#include "info_kernels.h"
#include "info_words.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name, *key;
    int decoder, masked;
} typical_forwards[N_TYPICAL_FORWARDS] = {{"encoder", "encoder", 0, 0},
                                          {"encoder", "encoder_masked", 0, 1},
                                          {"decoder step", "decoder_step", 1, 1}};

static const char *mask_kind_name(mhfa_mask_kind kind) {
    return kind == MHFA_MASK_GIVEN ? "given" : kind == MHFA_MASK_KEEP ? "keep" : "none";
}

/* Why a forward on the flash path did not take the absorbed route. */
static const char *not_absorbed_why(const mhfa_module *m) {
    if (m->plan.absorbed_mode == MHFA_ABSORBED_OFF) return "not absorbed (off)";
    if (!m->kernels.absorbed) return "not absorbed (not built)";
    return "not absorbed (its cost model: it saves too little)";
}

/* Why a forward took neither the absorbed nor the decode route. */
static void kernel_route_why(const mhfa_module *m, const forward_route *r, char *why, size_t size) {
    if (m->cfg.store_attn_weights) {
        snprintf(why, size, "the manual path has neither the absorbed nor the decode route");
        return;
    }
    snprintf(why, size, "%s", not_absorbed_why(m));
    if (!m->kernels.decode_partial)
        append_text(why, size, ", not decode (not built)");
    else if (r->n_query > MHFA_DECODE_MAX_QUERIES)
        append_text(why, size, ", not decode (%d queries, more than %d)", r->n_query,
                    MHFA_DECODE_MAX_QUERIES);
    else
        append_text(why, size, ", not decode (%d keys, fewer than %d)", r->graph_size,
                    MHFA_DECODE_MIN_CHUNKS * m->plan.decode_chunk);
}

static void describe_kernel_route(const mhfa_module *m, const mhfa_forward_plan *f,
                                  forward_route *r) {
    int masked_kernel = f->kernel == &m->kernels.attention_masked;
    r->route = "kernel";
    r->kernel = masked_kernel ? "attention_masked" : "attention";
    kernel_function_name(f->kernel->kernel, r->function, sizeof r->function);
    r->rows_layout = f->rows_layout;
    snprintf(r->words, sizeof r->words, "the %s kernel (%s), Q, K, V %s",
             masked_kernel ? "masked" : "attention", r->function,
             r->rows_layout ? "rows-major" : "per head");
    kernel_route_why(m, r, r->why, sizeof r->why);
}

static void describe_other_route(const mhfa_module *m, const mhfa_forward_plan *f,
                                 forward_route *r) {
    int chunk = m->plan.decode_chunk;
    if (f->route == MHFA_ROUTE_ABSORBED) {
        r->route = "absorbed";
        snprintf(r->words, sizeof r->words,
                 "absorbed: attention_absorbed.cl, the whole forward after the mask");
        snprintf(r->why, sizeof r->why, "%s",
                 m->plan.absorbed_mode == MHFA_ABSORBED_ALWAYS
                     ? "absorbed mode always"
                     : "its cost model: absorbed saves enough work");
    } else if (f->route == MHFA_ROUTE_DECODE) {
        r->route = "decode";
        snprintf(r->words, sizeof r->words,
                 "decode: attention_decode.cl, %d chunks of %d keys, then a merge",
                 (r->graph_size + chunk - 1) / chunk, chunk);
        snprintf(r->why, sizeof r->why, "%s, %d quer%s against %d keys (%d or more)",
                 not_absorbed_why(m), r->n_query, r->n_query == 1 ? "y" : "ies", r->graph_size,
                 MHFA_DECODE_MIN_CHUNKS * chunk);
    } else {
        r->route = "application";
        snprintf(r->words, sizeof r->words, "the application's attention_fn");
        snprintf(r->why, sizeof r->why, "an attention_fn is set");
    }
}

static void describe_forward(const mhfa_module *m, int n_query, int graph_size, int masked,
                             forward_route *r) {
    r->n_query = n_query, r->graph_size = graph_size, r->masked = masked;
    /* mhfa_forward stages host arrays in buffers of its own: its output aliases no input. */
    mhfa_forward_plan f = mhfa_plan_for_forward(m, n_query, graph_size, masked, 0);
    r->mask = mask_kind_name(f.mask_kind);
    if (f.route == MHFA_ROUTE_KERNEL)
        describe_kernel_route(m, &f, r);
    else
        describe_other_route(m, &f, r);
    /* The absorbed kernel does its own projections. */
    r->clblast = f.clblast && f.route != MHFA_ROUTE_ABSORBED;
    if (f.mask_kind == MHFA_MASK_GIVEN)
        append_text(r->words, sizeof r->words, ", the mask as given");
    if (f.mask_kind == MHFA_MASK_KEEP)
        append_text(r->words, sizeof r->words, ", the mask made a keep mask first (mask.cl)");
    if (r->clblast) append_text(r->words, sizeof r->words, ", projections through CLBlast");
}

void describe_forwards(const mhfa_module *m, int nodes, forward_route routes[N_TYPICAL_FORWARDS]) {
    for (int i = 0; i < N_TYPICAL_FORWARDS; i++) {
        memset(&routes[i], 0, sizeof routes[i]);
        routes[i].name = typical_forwards[i].name;
        routes[i].key = typical_forwards[i].key;
        describe_forward(m, typical_forwards[i].decoder ? 1 : nodes, nodes,
                         typical_forwards[i].masked, &routes[i]);
    }
}
