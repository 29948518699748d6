/* mhfa-run's workload: random capacitated-routing instances, as a routing model sees them.
 * Node 0 of each instance is the depot. A fixed linear map embeds each node's features
 * (x, y, demand, is-depot) to input_dim, the encoder's input. The decoder follows a
 * nearest-neighbour tour from the depot; at step t its query sits at tour[t] and the nodes
 * visited so far are masked out. */
#ifndef MHFA_TOOLS_ROUTING_WORKLOAD_H
#define MHFA_TOOLS_ROUTING_WORKLOAD_H

#include <stdint.h>

typedef struct routing_instances {
    int batch, nodes;
    float *coords; /* [batch][nodes][2], uniform in [0, 1) */
    float *demand; /* [batch][nodes], 0 at the depot, else 1..9 over the vehicle's capacity */
} routing_instances;

/* Draws the instances from seed. Returns 0, or -1 when out of memory (then nothing is held). */
int routing_instances_create(int batch, int nodes, uint64_t seed, routing_instances *inst);
void routing_instances_destroy(routing_instances *inst);

/* embedded [batch][nodes][input_dim] = features W^T + b, with W and b the same on every run.
 * Returns 0, or -1 when out of memory. */
int routing_embed(const routing_instances *inst, int input_dim, float *embedded);

/* tour [batch][steps]: tour[b][0] = 0 (the depot), then each next node the unvisited customer
 * nearest to the previous one. steps must be at most nodes. Returns 0, or -1 when out of memory. */
int routing_plan_tours(const routing_instances *inst, int steps, int *tour);

/* mask [batch][nodes], nonzero = masked out, for decoder step `step` (< steps): the customers
 * tour[b][1..step] are visited; the depot is masked only at step 0, where the vehicle stands on
 * it. Some node stays open whenever step < nodes - 1. */
void routing_visited_mask(const routing_instances *inst, const int *tour, int steps, int step,
                          unsigned char *mask);

/* graph_mean [batch][dim]: each instance's mean of keys [batch][nodes][dim]. */
void routing_graph_mean(const float *keys, int batch, int nodes, int dim, float *graph_mean);

/* query [batch][dim] for decoder step `step`: the graph mean plus the key of the current node
 * tour[b][step], the context a routing decoder builds. */
void routing_decoder_query(const float *keys, const float *graph_mean, int batch, int nodes,
                           int dim, const int *tour, int steps, int step, float *query);

#endif
