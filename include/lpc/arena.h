/* Parameter arenas (DESIGN.md "Conventions"): one parameter table — each tensor's name, shape, group
 * and initialisation — drives the offsets of the parameters, their gradients and both Adam moments
 * (four buffers with one layout), the checkpoint's tensor names and the parity tests. The decoder
 * (theta) comes first and the encoder (phi) after it, each contiguous, so the optimiser, gradient
 * clipping and scaling work on one flat segment per network. */
#ifndef LPC_ARENA_H
#define LPC_ARENA_H

#include <stddef.h>

#include "lpc/ops.h"

enum lpc_param_group { LPC_GROUP_DECODER, LPC_GROUP_ENCODER, LPC_N_GROUPS };

#define LPC_PARAM_NAME_MAX 64
#define LPC_MAX_PARAMS 64

struct lpc_param_info {
    char name[LPC_PARAM_NAME_MAX];
    int group;
    int ndim;
    int shape[4];
    size_t count;  /* elements */
    size_t offset; /* in floats from the arena's start */
    int fan_in;    /* weights and biases are initialised U(-1/sqrt(fan_in), 1/sqrt(fan_in)); 0: constant */
    float init_value; /* used when fan_in == 0 */
};

struct lpc_param_table {
    struct lpc_param_info params[LPC_MAX_PARAMS];
    int count;
    size_t total;                        /* floats, including alignment padding */
    size_t group_offset[LPC_N_GROUPS];   /* floats */
    size_t group_count[LPC_N_GROUPS];
};

/* Appends a tensor; tensors must be added group by group (all decoder tensors, then the encoder's).
 * Returns its index. */
int lpc_param_table_add(struct lpc_param_table *t, const char *name, int group, int ndim, const int *shape,
                        int fan_in, float init_value);
int lpc_param_table_find(const struct lpc_param_table *t, const char *name);

struct lpc_arena {
    const struct lpc_backend *be;
    struct lpc_param_table table;
    float *params, *grads, *adam_m, *adam_v; /* backend memory, table.total floats each */
};

void lpc_arena_create(struct lpc_arena *a, const struct lpc_backend *be, const struct lpc_param_table *t);
void lpc_arena_destroy(struct lpc_arena *a);
/* Initialises the parameters from the seed on the host (identical for every backend) and uploads them;
 * zeroes the gradients and moments. */
void lpc_arena_init_params(struct lpc_arena *a, unsigned long long seed);
float *lpc_arena_param(const struct lpc_arena *a, int index);
float *lpc_arena_grad(const struct lpc_arena *a, int index);
void lpc_arena_zero_grads(struct lpc_arena *a, int group);

#endif
