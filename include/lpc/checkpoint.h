/* Checkpoints (SPEC.md section 7): a folder with model.safetensors (the weights, named by the parameter
 * table, readable by safetensors.torch.load_file; the resolved config and the step in __metadata__) and
 * state.safetensors (Adam moments, step, random-number offsets, data order). Each file is written
 * atomically; loading checks every tensor's name, dtype and shape and says which one differs. */
#ifndef LPC_CHECKPOINT_H
#define LPC_CHECKPOINT_H

#include <stdint.h>

#include "lpc/arena.h"
#include "lpc/config.h"

/* Everything besides the parameters that a bitwise-exact resume needs. */
struct lpc_train_state {
    long step;
    uint64_t rng_seed, rng_offset; /* the Philox noise stream */
    uint64_t data_rng;             /* splitmix64 state of shuffling and flips */
    long epoch, position;          /* position within the current epoch's order */
    int32_t *order;                /* permutation of the data set, n_order entries */
    long n_order;
};

int lpc_checkpoint_save(const char *dir, const struct lpc_arena *a, const struct lpc_config *cfg,
                        const struct lpc_train_state *st);
/* Reads the config stored in dir/model.safetensors into cfg (defaults first). */
int lpc_checkpoint_load_config(const char *dir, struct lpc_config *cfg);
/* Loads the weights (and, if st is not NULL, the training state; st->order must hold st->n_order
 * entries) into an arena built from the same config. */
int lpc_checkpoint_load(const char *dir, struct lpc_arena *a, struct lpc_train_state *st);

#endif
