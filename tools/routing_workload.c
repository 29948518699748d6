/* Routing instances, their fixed embedding, nearest-neighbour tours and the decoder's masks. */
#include "routing_workload.h"

#include "random_data.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N_FEATURES = 4 }; /* x, y, demand, is-depot */

/* The embedding's seed: fixed so that every run embeds the same way. */
#define EMBEDDING_SEED 0x726f757465ull

/* Capacities of the usual CVRP benchmarks (20, 50 and 100 customers). */
static float vehicle_capacity(int nodes) {
    return nodes <= 21 ? 30.0f : nodes <= 51 ? 40.0f : 50.0f;
}

int routing_instances_create(int batch, int nodes, uint64_t seed, routing_instances *inst) {
    size_t n = (size_t)batch * nodes;
    *inst =
        (routing_instances){batch, nodes, malloc(2 * n * sizeof(float)), malloc(n * sizeof(float))};
    if (!inst->coords || !inst->demand) {
        routing_instances_destroy(inst);
        return -1;
    }
    float capacity = vehicle_capacity(nodes);
    for (size_t i = 0; i < n; i++) {
        inst->coords[2 * i] = (float)uniform01(&seed);
        inst->coords[2 * i + 1] = (float)uniform01(&seed);
        int is_depot = i % (size_t)nodes == 0;
        inst->demand[i] = is_depot ? 0.0f : (float)(1 + (int)(uniform01(&seed) * 9)) / capacity;
    }
    return 0;
}

void routing_instances_destroy(routing_instances *inst) {
    free(inst->coords);
    free(inst->demand);
    inst->coords = NULL, inst->demand = NULL;
}

int routing_embed(const routing_instances *inst, int input_dim, float *embedded) {
    float *weight = malloc((size_t)input_dim * N_FEATURES * sizeof(float));
    float *bias = malloc((size_t)input_dim * sizeof(float));
    if (!weight || !bias) {
        free(weight), free(bias);
        return -1;
    }
    uint64_t state = EMBEDDING_SEED;
    fill_normal(&state, weight, (size_t)input_dim * N_FEATURES);
    fill_normal(&state, bias, (size_t)input_dim);
    for (int b = 0; b < inst->batch; b++)
        for (int n = 0; n < inst->nodes; n++) {
            size_t node = (size_t)b * inst->nodes + n;
            float features[N_FEATURES] = {inst->coords[2 * node], inst->coords[2 * node + 1],
                                          inst->demand[node], n == 0 ? 1.0f : 0.0f};
            float *row = embedded + node * input_dim;
            for (int o = 0; o < input_dim; o++) {
                float s = 0.1f * bias[o]; /* small, so that the features dominate */
                for (int f = 0; f < N_FEATURES; f++)
                    s += weight[(size_t)o * N_FEATURES + f] * features[f];
                row[o] = s;
            }
        }
    free(weight), free(bias);
    return 0;
}

static float squared_distance(const float *a, const float *b) {
    float dx = a[0] - b[0], dy = a[1] - b[1];
    return dx * dx + dy * dy;
}

/* The unvisited customer of instance b nearest to node `from`. */
static int nearest_unvisited(const routing_instances *inst, int b, int from,
                             const unsigned char *visited) {
    const float *coords = inst->coords + (size_t)b * inst->nodes * 2;
    int best = -1;
    float best_distance = FLT_MAX;
    for (int n = 1; n < inst->nodes; n++) {
        float d = squared_distance(coords + 2 * from, coords + 2 * n);
        if (!visited[n] && (best < 0 || d < best_distance)) best = n, best_distance = d;
    }
    return best;
}

int routing_plan_tours(const routing_instances *inst, int steps, int *tour) {
    unsigned char *visited = malloc((size_t)inst->nodes);
    if (!visited) return -1;
    for (int b = 0; b < inst->batch; b++) {
        int *t = tour + (size_t)b * steps;
        memset(visited, 0, (size_t)inst->nodes);
        t[0] = 0;
        for (int s = 1; s < steps; s++) {
            t[s] = nearest_unvisited(inst, b, t[s - 1], visited);
            visited[t[s]] = 1;
        }
    }
    free(visited);
    return 0;
}

void routing_visited_mask(const routing_instances *inst, const int *tour, int steps, int step,
                          unsigned char *mask) {
    memset(mask, 0, (size_t)inst->batch * inst->nodes);
    for (int b = 0; b < inst->batch; b++) {
        unsigned char *row = mask + (size_t)b * inst->nodes;
        row[0] = step == 0;
        for (int s = 1; s <= step; s++)
            row[tour[(size_t)b * steps + s]] = 1;
    }
}

void routing_graph_mean(const float *keys, int batch, int nodes, int dim, float *graph_mean) {
    for (int b = 0; b < batch; b++) {
        float *mean = graph_mean + (size_t)b * dim;
        memset(mean, 0, (size_t)dim * sizeof(float));
        for (int n = 0; n < nodes; n++)
            for (int c = 0; c < dim; c++)
                mean[c] += keys[((size_t)b * nodes + n) * dim + c];
        for (int c = 0; c < dim; c++)
            mean[c] /= (float)nodes;
    }
}

void routing_decoder_query(const float *keys, const float *graph_mean, int batch, int nodes,
                           int dim, const int *tour, int steps, int step, float *query) {
    for (int b = 0; b < batch; b++) {
        int current = tour[(size_t)b * steps + step];
        const float *key = keys + ((size_t)b * nodes + current) * dim;
        for (int c = 0; c < dim; c++)
            query[(size_t)b * dim + c] = graph_mean[(size_t)b * dim + c] + key[c];
    }
}
